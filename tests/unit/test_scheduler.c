/* test_scheduler.c - placement, generations and lost nodes on a real SQLite store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "balance.h"
#include "cas.h"
#include "core.h"
#include "error.h"
#include "fsutil.h"
#include "scheduler.h"
#include "store.h"

struct fixture {
	struct core c;
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char *db;

	assert_int_equal(fs_mkdtemp(&f->dir, tmp ? tmp : "/tmp", "test-sched"), 0);
	db = fs_join(f->dir, "db");
	assert_int_equal(store_open(&f->c.db, db), 0);
	f->c.logs_dir = f->dir;
	f->c.ttl_s = 20;
	pthread_mutex_init(&f->c.lock, NULL);
	free(db);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_free(f->c.db);
	free(f->c.seen);
	free(f->c.acked);
	fs_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void add_node(struct core *c, const char *isa, const char *levels, int cores)
{
	char hash[32];
	static int n;

	snprintf(hash, sizeof(hash), "hash%d", ++n);
	assert_int_equal(store_run(c->db, NULL, "INSERT INTO nodes(name, token_hash, isa, levels, cores, memory, state, "
				   "last_seen, joined) VALUES(?, ?, ?, ?, ?, 0, 'up', ?, ?)", "ssssidd", isa, hash, isa,
				   levels, (int64_t)cores, core_now(), core_now()), 0);
}

/* A job with one object of n instances, built for the given targets ("isa:level" ...). */
static void add_job(struct core *c, int n, const char *const *targets)
{
	assert_int_equal(store_run(c->db, NULL, "INSERT INTO jobs(id, name, dir, state, created) VALUES(1, 'j', '/', "
				   "'running', 0)", NULL), 0);
	assert_int_equal(store_run(c->db, NULL, "INSERT INTO objects(job, name, entry, args) VALUES(1, 'o', 'o', '[]')",
				   NULL), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(store_run(c->db, NULL, "INSERT INTO instances(job, object, idx, state, created) "
					   "VALUES(1, 'o', ?, 'pending', 0)", "i", (int64_t)i), 0);
	for (; *targets; targets++) {
		char isa[32];
		const char *colon = strchr(*targets, ':');
		snprintf(isa, sizeof(isa), "%.*s", (int)(colon - *targets), *targets);
		assert_int_equal(store_run(c->db, NULL, "INSERT INTO builds(job, object, target, isa, level, status, digest) "
					   "VALUES(1, 'o', ?, ?, ?, 'ok', ?)", "ssss", *targets, isa, colon + 1,
					   "0000000000000000000000000000000000000000000000000000000000000000"), 0);
	}
}

static int64_t count(struct core *c, const char *sql)
{
	return store_int(c->db, -1, sql, NULL);
}

static void test_scheduler__spreads_over_idle_nodes_first(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", "x86_64:v3", "aarch64:armv8-a", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\",\"v2\",\"v3\"]", 2);
	add_node(&f->c, "aarch64", "[\"armv8-a\"]", 2);
	add_job(&f->c, 2, t);
	sched_pass(&f->c);
	/* Two instances, two idle nodes: one each, not both on the first. */
	assert_int_equal(count(&f->c, "SELECT COUNT(DISTINCT node) FROM instances WHERE state = 'starting'"), 2);
	/* The x86_64 node runs its best built level. */
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE isa = 'x86_64' AND level = 'v3'"), 1);
	assert_int_equal(count(&f->c, "SELECT MIN(generation) FROM instances"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 2);
}

static void test_scheduler__respects_slots_and_isas(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 2);
	add_node(&f->c, "s390x", "[\"z196\"]", 4); /* nothing built for it */
	add_job(&f->c, 5, t);
	sched_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 2);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE isa = 's390x'"), 0);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'pending'"), 3);
}

static void test_scheduler__stale_generation_is_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };
	char err[256];
	json_t *ev;

	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_job(&f->c, 1, t);
	sched_pass(&f->c);
	ev = json_pack("{sssis[{sssi}]}", "instance", "i-1", "generation", 0, "events", "kind", "exit", "code", 0);
	assert_int_equal(sched_events(&f->c, 1, ev, err, sizeof(err)), 409);
	assert_non_null(strstr(err, "stale generation"));
	json_decref(ev);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'done'"), 0);
	ev = json_pack("{sssis[{sssi}]}", "instance", "i-1", "generation", 1, "events", "kind", "exit", "code", 0);
	assert_int_equal(sched_events(&f->c, 1, ev, err, sizeof(err)), 200);
	json_decref(ev);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'done'"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 1);
}

/* Several instances' events in one request: each batch stands alone, and freed slots are filled once. */
static void test_scheduler__event_batches_stand_alone(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };
	json_t *body, *results = NULL;
	char err[256];

	add_node(&f->c, "x86_64", "[\"baseline\"]", 3);
	add_job(&f->c, 4, t);
	sched_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 3);
	/* i-1 ends, i-2's batch is stale, i-3 runs and then says something wrong, i-9 does not exist. */
	body = json_pack("[{sssis[{sssi}]}, {sssis[{sssi}]}, {sssis[{ss}{ssss}]}, {sssis[]}, i]",
			 "instance", "i-1", "generation", 1, "events", "kind", "exit", "code", 0,
			 "instance", "i-2", "generation", 7, "events", "kind", "exit", "code", 0,
			 "instance", "i-3", "generation", 1, "events", "kind", "running", "kind", "exit", "code", "zero",
			 "instance", "i-9", "generation", 1, "events", 17);
	assert_non_null(body);
	assert_int_equal(sched_events_batches(&f->c, 1, body, &results, err, sizeof(err)), 200);
	assert_int_equal(json_array_size(results), 5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 0), "status")), 200);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 1), "status")), 409);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(results, 1), "error")), "stale"));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 2), "status")), 400);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 3), "status")), 404);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 4), "status")), 400);
	json_decref(results);
	json_decref(body);
	/* i-1 is done; i-2 untouched; i-3's running was undone with its bad exit; i-4 took i-1's slot. */
	assert_int_equal(count(&f->c, "SELECT state = 'done' FROM instances WHERE id = 1"), 1);
	assert_int_equal(count(&f->c, "SELECT state = 'starting' FROM instances WHERE id = 2"), 1);
	assert_int_equal(count(&f->c, "SELECT state = 'starting' FROM instances WHERE id = 3"), 1);
	assert_int_equal(count(&f->c, "SELECT state = 'starting' FROM instances WHERE id = 4"), 1);

	/* The request as a whole: not an array, too many batches, too many events. */
	body = json_object();
	assert_int_equal(sched_events_batches(&f->c, 1, body, &results, err, sizeof(err)), 400);
	json_decref(body);
	body = json_array();
	for (int i = 0; i <= SCHED_BATCHES_MAX; i++)
		json_array_append_new(body, json_object());
	assert_int_equal(sched_events_batches(&f->c, 1, body, &results, err, sizeof(err)), 413);
	json_decref(body);
	body = json_pack("[{s[]}, {s[]}]", "events", "events");
	for (int i = 0; i < SCHED_EVENTS_MAX; i++)
		json_array_append_new(json_object_get(json_array_get(body, i % 2), "events"), json_object());
	assert_int_equal(sched_events_batches(&f->c, 1, body, &results, err, sizeof(err)), 200);
	json_decref(results);
	json_array_append_new(json_object_get(json_array_get(body, 0), "events"), json_object());
	assert_int_equal(sched_events_batches(&f->c, 1, body, &results, err, sizeof(err)), 413);
	assert_non_null(strstr(err, "at most"));
	json_decref(body);
}

/* A batch the store fails (not the events) undoes the whole request: the agent sends it all again, in order. */
static void test_scheduler__a_store_failure_undoes_every_batch(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };
	char *root = fs_join(f->dir, "cas"), err[256];
	json_t *body, *results = NULL;

	assert_int_equal(cas_open(&f->c.blobs, root), 0);
	add_node(&f->c, "x86_64", "[\"baseline\"]", 2);
	add_job(&f->c, 2, t);
	sched_pass(&f->c);
	/* The blob store is gone: storing i-2's inline bundle fails. */
	assert_int_equal(fs_rm_rf(root), 0);
	body = json_pack("[{sssis[{sssi}]}, {sssis[{sssissss}]}]", "instance", "i-1", "generation", 1, "events",
			 "kind", "exit", "code", 0, "instance", "i-2", "generation", 1, "events", "kind", "exit", "code", 85,
			 "state", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "bundle", "aGVsbG8=");
	assert_non_null(body);
	assert_int_equal(sched_events_batches(&f->c, 1, body, &results, err, sizeof(err)), 500);
	assert_non_null(strstr(err, "batches[1]: cannot store the bundle"));
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 2);
	json_decref(body);
	cas_free(f->c.blobs);
	f->c.blobs = NULL;
	free(root);
}

static unsigned send_event(struct core *c, const char *iid, json_t *ev)
{
	json_t *body = json_pack("{sssis[o]}", "instance", iid, "generation", 1, "events", ev);
	char err[256];
	unsigned st;

	assert_non_null(body);
	st = sched_events(c, 1, body, err, sizeof(err));
	json_decref(body);
	return st;
}

/* A report that arrives after a cancel or an end (the node's own, current generation) changes nothing. */
static void test_scheduler__late_reports_change_nothing(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 2);
	add_job(&f->c, 2, t);
	sched_pass(&f->c);
	assert_int_equal(send_event(&f->c, "i-1", json_pack("{ss}", "kind", "running")), 200);
	assert_int_equal(send_event(&f->c, "i-2", json_pack("{ss}", "kind", "running")), 200);
	assert_int_equal(send_event(&f->c, "i-2", json_pack("{sssi}", "kind", "exit", "code", 0)), 200);
	assert_int_equal(sched_cancel_job(&f->c, 1), 0);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 3); /* two starts, one kill */
	/* The cancelled run's exit 0 (it ended before the kill reached it) or 85 (a checkpoint request crossed
	 * the cancel): still cancelled, never started again. */
	assert_int_equal(send_event(&f->c, "i-1", json_pack("{sssi}", "kind", "exit", "code", 0)), 200);
	assert_int_equal(send_event(&f->c, "i-1", json_pack("{sssisn}", "kind", "exit", "code", 85, "state")), 200);
	assert_int_equal(send_event(&f->c, "i-1", json_pack("{sssf}", "kind", "progress", "value", 0.5)), 200);
	assert_int_equal(count(&f->c, "SELECT state = 'cancelled' FROM instances WHERE id = 1"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM history WHERE instance = 1 AND event = 'stopped'"), 2);
	assert_int_equal(count(&f->c, "SELECT generation FROM instances WHERE id = 1"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 3);
	/* A done instance keeps its progress and result. */
	assert_int_equal(send_event(&f->c, "i-2", json_pack("{sssf}", "kind", "progress", "value", 0.25)), 200);
	assert_int_equal(send_event(&f->c, "i-2", json_pack("{sssi}", "kind", "exit", "code", 3)), 200);
	assert_int_equal(count(&f->c, "SELECT progress = 1 AND state = 'done' FROM instances WHERE id = 2"), 1);
	/* A bad event is still a 400, whatever the state. */
	assert_int_equal(send_event(&f->c, "i-2", json_pack("{sssf}", "kind", "progress", "value", 7.0)), 400);
}

/* A start the node never took up (not listed by its heartbeat two TTLs on) is placed again, a generation on. */
static void test_scheduler__unstarted_placements_are_placed_again(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };
	json_t *none = json_array(),
	       *mine = json_pack("[{sssi}{sssi}]", "instance", "i-2", "generation", 1, "instance", "i-1", "generation", 0);

	add_node(&f->c, "x86_64", "[\"baseline\"]", 3);
	add_job(&f->c, 3, t);
	sched_pass(&f->c);
	assert_int_equal(send_event(&f->c, "i-3", json_pack("{ss}", "kind", "running")), 200);
	/* Placed a moment ago: not yet. */
	sched_reconcile(&f->c, 1, none, 0);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 2);
	store_run(f->c.db, NULL, "UPDATE instances SET placed_at = placed_at - 41", NULL);
	/* i-2 is listed (starting there, or its exit on the way); i-3 runs; i-1 was lost (only an older generation
	 * of it is listed). */
	sched_reconcile(&f->c, 1, mine, 0);
	assert_int_equal(count(&f->c, "SELECT state = 'starting' AND generation = 2 FROM instances WHERE id = 1"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM history WHERE instance = 1 AND event = 'lost'"), 1);
	assert_int_equal(count(&f->c, "SELECT state = 'starting' AND generation = 1 FROM instances WHERE id = 2"), 1);
	assert_int_equal(count(&f->c, "SELECT state = 'running' FROM instances WHERE id = 3"), 1);
	/* The old generation's late report is refused. */
	assert_int_equal(send_event(&f->c, "i-1", json_pack("{ss}", "kind", "running")), 409);
	json_decref(none);
	json_decref(mine);
}

static void test_scheduler__lost_node_continues_elsewhere(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };
	char err[256];
	json_t *ev;

	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_job(&f->c, 1, t);
	sched_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT node FROM instances"), 1);
	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	/* Node 1 goes quiet; node 2 keeps heartbeating. */
	store_run(f->c.db, NULL, "UPDATE nodes SET last_seen = 0 WHERE id = 1", NULL);
	sched_check_nodes(&f->c, core_now());
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM nodes WHERE state = 'lost'"), 1);
	assert_int_equal(count(&f->c, "SELECT node FROM instances"), 2);
	assert_int_equal(count(&f->c, "SELECT generation FROM instances"), 2);
	/* The old node comes back with the old generation's result: refused. */
	ev = json_pack("{sssis[{sssi}]}", "instance", "i-1", "generation", 1, "events", "kind", "exit", "code", 0);
	assert_int_equal(sched_events(&f->c, 1, ev, err, sizeof(err)), 409);
	json_decref(ev);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'done'"), 0);
}

static void test_store__transactions_nest(void **state)
{
	struct fixture *f = *state;
	store *db = f->c.db;

	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_run(db, NULL, "INSERT INTO meta(key, value) VALUES('a', '1')", NULL), 0);
	/* An inner level: a savepoint, not an error. */
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_run(db, NULL, "INSERT INTO meta(key, value) VALUES('b', '1')", NULL), 0);
	store_rollback(db); /* undoes 'b' only */
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_run(db, NULL, "INSERT INTO meta(key, value) VALUES('c', '1')", NULL), 0);
	assert_int_equal(store_commit(db), 0);
	assert_true(store_in_transaction(db));
	assert_int_equal(store_commit(db), 0);
	assert_false(store_in_transaction(db));
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM meta WHERE key IN ('a', 'c')"), 2);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM meta WHERE key = 'b'"), 0);
	/* The outer rollback undoes what inner levels committed. */
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_run(db, NULL, "INSERT INTO meta(key, value) VALUES('d', '1')", NULL), 0);
	assert_int_equal(store_commit(db), 0);
	store_rollback(db);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM meta WHERE key = 'd'"), 0);
	assert_true(store_commit(db) < 0); /* nothing open */
}

/* A statement is prepared once and reused: each use sees its own parameters, none left from the last. */
static void test_store__statements_are_reused_cleanly(void **state)
{
	struct fixture *f = *state;
	store *db = f->c.db;
	static const char ins[] = "INSERT INTO meta(key, value) VALUES(?, ?)";
	static const char get[] = "SELECT value FROM meta WHERE key = ?";
	json_t *row = NULL;

	for (int i = 0; i < 3; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(store_run(db, NULL, ins, "ss", key, i == 1 ? NULL : "v"), 0);
	}
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM meta WHERE value IS NULL"), 1);
	assert_int_equal(store_row(db, &row, get, "s", "k2"), 0);
	assert_string_equal(json_string_value(json_object_get(row, "value")), "v");
	json_decref(row);
	assert_int_equal(store_row(db, &row, get, "s", "k1"), 0);
	assert_true(json_is_null(json_object_get(row, "value")));
	json_decref(row);
	assert_int_equal(store_row(db, &row, get, "s", "none"), ERR_NOTFOUND);
	/* A failed statement leaves the next use of it working. */
	assert_true(store_run(db, NULL, ins, "ss", "k0", "dup") < 0);
	assert_int_equal(store_run(db, NULL, ins, "ss", "k3", "v"), 0);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM meta"), 4);
}

/* An exit event, the job's state and the start it makes room for: one transaction, one fsync. */
static void test_scheduler__event_and_its_placement_are_one_commit(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };
	char err[256];
	uint64_t before;
	json_t *ev;

	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_job(&f->c, 2, t);
	sched_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 1);
	before = store_commits(f->c.db);
	ev = json_pack("{sssis[{ss}{sssi}]}", "instance", "i-1", "generation", 1, "events", "kind", "running", "kind",
		       "exit", "code", 0);
	assert_int_equal(sched_events(&f->c, 1, ev, err, sizeof(err)), 200);
	json_decref(ev);
	assert_int_equal(store_commits(f->c.db) - before, 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE id = 1 AND state = 'done'"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE id = 2 AND state = 'starting'"), 1);
	/* The last exit also finishes the job, in the same single commit. */
	before = store_commits(f->c.db);
	ev = json_pack("{sssis[{sssi}]}", "instance", "i-2", "generation", 1, "events", "kind", "exit", "code", 0);
	assert_int_equal(sched_events(&f->c, 1, ev, err, sizeof(err)), 200);
	json_decref(ev);
	assert_int_equal(store_commits(f->c.db) - before, 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 1);
}

/* A pass reads the queue a batch at a time: instances that must wait do not hide those behind them. */
static void test_scheduler__pass_looks_past_instances_that_wait(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 2);
	add_job(&f->c, 200, t);
	/* The first 150 want a node that is not there. */
	store_run(f->c.db, NULL, "UPDATE instances SET want_node = 99 WHERE id <= 150", NULL);
	sched_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 2);
	assert_int_equal(count(&f->c, "SELECT MIN(id) FROM instances WHERE state = 'starting'"), 151);
	assert_int_equal(count(&f->c, "SELECT MAX(id) FROM instances WHERE state = 'starting'"), 152);
	/* No free slot: nothing changes, nothing is written. */
	uint64_t before = store_commits(f->c.db);
	sched_pass(&f->c);
	assert_int_equal(store_commits(f->c.db), before);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE state = 'starting'"), 2);
}

/* Acknowledged messages are deleted by the once-a-second flush, not by each poll. */
static void test_scheduler__acknowledged_messages_go_at_the_flush(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 2);
	add_job(&f->c, 2, t);
	sched_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 2);
	core_acked(&f->c, 1, count(&f->c, "SELECT MIN(seq) FROM messages"));
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 2);
	core_seen_flush(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 1);
}

/* Instance id runs on node with progress p at rate r (per second), observed for 10 s. */
static void set_running(struct core *c, int64_t id, int64_t node, double p, double r)
{
	assert_int_equal(store_run(c->db, NULL, "UPDATE instances SET state = 'running', node = ?, isa = 'x86_64', "
				   "level = 'baseline', generation = 1, progress = ?, rate = ?, last_progress_time = ?, "
				   "placed_at = ? WHERE id = ?", "iddddi", node, p, r > 0 ? r : 0, core_now(),
				   core_now() - 10, id), 0);
}

static void set_speed(struct core *c, int64_t node, double rate)
{
	assert_int_equal(store_run(c->db, NULL, "INSERT INTO speeds(node, job, object, rate, samples) "
				   "VALUES(?, 1, 'o', ?, 5)", "id", node, rate), 0);
}

static void test_balance__moves_to_a_much_faster_idle_node(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_job(&f->c, 1, t);
	set_running(&f->c, 1, 1, 0.2, 0.01); /* 80 s to go on node 1 */
	set_speed(&f->c, 1, 0.01);
	set_speed(&f->c, 2, 0.1); /* 8 s on node 2 */
	balance_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT want_node FROM instances WHERE stop_requested IS NOT NULL"), 2);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages WHERE node = 1 AND body LIKE '%\"checkpoint\"%'"),
			 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM history WHERE event = 'balance' AND detail LIKE "
				       "'predicted 80.0 s more on n-1%'"), 1);
}

static void test_balance__stays_when_the_gain_is_small(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_job(&f->c, 1, t);
	set_running(&f->c, 1, 1, 0.2, 0.01);
	set_speed(&f->c, 1, 0.01);
	set_speed(&f->c, 2, 0.011); /* 72.7 s + the move: less than 15 % better */
	balance_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE stop_requested IS NOT NULL"), 0);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM messages"), 0);
}

/* A node that joined again with fewer CPUs sheds what it runs beyond them, rates known or not. */
static void test_balance__an_overloaded_node_sheds_its_excess(void **state)
{
	struct fixture *f = *state;
	static const char *const t[] = { "x86_64:baseline", NULL };

	add_node(&f->c, "x86_64", "[\"baseline\"]", 1);
	add_node(&f->c, "x86_64", "[\"baseline\"]", 2);
	add_job(&f->c, 2, t);
	set_running(&f->c, 1, 1, 0.5, 0);
	set_running(&f->c, 2, 1, 0.5, 0);
	balance_pass(&f->c);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE want_node = 2"), 1);
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM history WHERE event = 'balance' AND detail LIKE "
				       "'node runs more than its cores;%'"), 1);
	balance_pass(&f->c); /* the move is under way: nothing more to do */
	assert_int_equal(count(&f->c, "SELECT COUNT(*) FROM instances WHERE want_node = 2"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scheduler__spreads_over_idle_nodes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__respects_slots_and_isas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__stale_generation_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__event_batches_stand_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__late_reports_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__a_store_failure_undoes_every_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__unstarted_placements_are_placed_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__lost_node_continues_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__transactions_nest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__statements_are_reused_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__event_and_its_placement_are_one_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__pass_looks_past_instances_that_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler__acknowledged_messages_go_at_the_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balance__moves_to_a_much_faster_idle_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balance__stays_when_the_gain_is_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balance__an_overloaded_node_sheds_its_excess, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
