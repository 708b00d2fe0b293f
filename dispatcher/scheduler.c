/* scheduler.c - placement, messages, instance events and node liveness. */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"

#define LOG_MAX (1u << 20)
#define EXIT_CHECKPOINTED 85
#define MOVE_COST_SAMPLE_MAX_S 60.0 /* one move's cost as the balancer learns it */

int sched_send(struct core *c, int64_t node, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	int r;

	if (!text)
		return err_set(ERR_NOMEM, "out of memory");
	r = store_run(c->db, NULL, "INSERT INTO messages(node, body, created) VALUES(?, ?, ?)", "isd", node, text,
		      core_now());
	free(text);
	if (r == 0)
		http_resume_node(c, node);
	return r;
}

const char *sched_best_level(const char *levels_json, json_t *built)
{
	json_t *levels = json_loads(levels_json, 0, NULL);
	const char *best = NULL;
	size_t i;
	json_t *l;

	/* The node lists its levels best last; take the best one that was built. */
	json_array_foreach(levels, i, l) {
		size_t j;
		json_t *b;
		json_array_foreach(built, j, b)
			if (json_is_string(l) && !strcmp(json_string_value(l), json_string_value(json_object_get(b, "level"))))
				best = json_string_value(json_object_get(b, "level"));
	}
	json_decref(levels);
	return best; /* borrowed from built */
}

/* A small state bundle rides in the start message: the agent has it without a download. */
static void inline_state(struct core *c, json_t *msg, const char *digest)
{
	struct buf blob = BUF_INIT(SCHED_INLINE_MAX), text = BUF_INIT(SCHED_INLINE_MAX / 3 * 4 + 8);
	char *path = digest ? cas_path(c->blobs, digest) : NULL;

	/* Anything that goes wrong (a larger one among it) leaves the download to the agent, which verifies it. */
	if (path && fs_read_file(&blob, path, SCHED_INLINE_MAX) == 0 && buf_append_base64(&text, blob.data, blob.len) == 0)
		json_object_set_new(msg, "state_bundle", json_stringn(buf_str(&text), text.len));
	buf_release(&blob);
	buf_release(&text);
	free(path);
}

/* Stores the bundle an event carries (base64) under the digest it names; 0 or a status with err. */
static unsigned store_inline_bundle(struct core *c, const json_t *ev, const char *digest, char *err, size_t errlen)
{
	json_t *b = json_object_get(ev, "bundle");
	struct buf bytes = BUF_INIT(SCHED_INLINE_MAX);
	digest_hex got;
	unsigned status = 0;

	if (!b)
		return 0;
	if (!json_is_string(b) || !digest || !digest_is_valid(digest)) {
		snprintf(err, errlen, "events[]: \"bundle\" must be a string, with \"state\" its sha256");
		return 400;
	}
	if (buf_append_unbase64(&bytes, json_string_value(b), json_string_length(b)) < 0) {
		snprintf(err, errlen, "events[]: \"bundle\" (base64 of at most %u bytes): %s", SCHED_INLINE_MAX, err_msg());
		status = 400;
	} else if (digest_bytes(&got, bytes.data ? bytes.data : "", bytes.len), strcmp(got.hex, digest) != 0) {
		snprintf(err, errlen, "events[]: the bundle's sha256 is %s, not %s", got.hex, digest);
		status = 400;
	} else if (!cas_has(c->blobs, digest) && cas_put_buf(c->blobs, &got, bytes.data ? bytes.data : "", bytes.len) < 0) {
		snprintf(err, errlen, "cannot store the bundle: %s", err_msg());
		status = 500;
	}
	buf_release(&bytes);
	return status;
}

/* Sends the start message of an instance placed on node (inside a transaction). */
static int start_instance(struct core *c, json_t *inst, json_t *node, const char *level, const char *artifact)
{
	int64_t id = json_integer_value(json_object_get(inst, "id"));
	int64_t nid = json_integer_value(json_object_get(node, "id"));
	int64_t gen = json_integer_value(json_object_get(inst, "generation")) + 1;
	const char *isa = json_string_value(json_object_get(node, "isa"));
	json_t *obj_args = json_object_get(inst, "args");
	char iid[32], detail[160];
	json_t *msg;
	int r;

	snprintf(iid, sizeof(iid), "i-%lld", (long long)id);
	msg = json_pack("{sssssIsssssosOsI}", "type", "start", "instance", iid, "generation", (json_int_t)gen,
			"artifact", artifact, "entry", json_string_value(json_object_get(inst, "entry")),
			"args", obj_args ? json_incref(obj_args) : json_array(), "state", json_object_get(inst, "state_digest"),
			"fork_index", json_integer_value(json_object_get(inst, "fork_index")));
	if (!msg)
		return err_set(ERR_NOMEM, "out of memory");
	json_object_set_new(msg, "limits", json_pack("{sisisi}", "cpu_s", 0, "memory", 0, "wall_s", 0));
	inline_state(c, msg, json_string_value(json_object_get(inst, "state_digest")));
	json_object_set_new(msg, "checkpoint_s", json_integer(json_integer_value(json_object_get(inst, "checkpoint_s"))));
	/* A wish to run somewhere is fulfilled once; speed is learned afresh on the new node. */
	if ((r = store_run(c->db, NULL,
			   "UPDATE instances SET state = 'starting', node = ?, isa = ?, level = ?, generation = ?, "
			   "hold = 0, want_node = NULL, want_isa = NULL, rate = NULL, last_progress = NULL, "
			   "last_progress_time = NULL, placed_at = ? WHERE id = ?",
			   "issidi", nid, isa, level, gen, core_now(), id)) < 0 ||
	    (r = sched_send(c, nid, msg)) < 0)
		goto out;
	/* The state it starts from: the manifest's, or the checkpoint it continues. */
	snprintf(detail, sizeof(detail), "generation %lld, %s:%s, state %.12s", (long long)gen, isa, level,
		 json_string_value(json_object_get(inst, "state_digest")) ?: "none");
	core_history(c, id, "placed", nid, isa, detail);
out:
	json_decref(msg);
	return r;
}

/* The nodes that can take work, least loaded (running per core) first. */
static json_t *free_nodes(struct core *c)
{
	json_t *nodes = NULL;

	store_rows(c->db, &nodes,
		   "SELECT n.id, n.isa, n.levels, n.cores, "
		   " (SELECT COUNT(*) FROM instances i WHERE i.node = n.id AND i.state IN ('starting', 'running')) "
		   "   AS running "
		   "FROM nodes n WHERE n.state = 'up' "
		   "ORDER BY CAST(running AS REAL) / MAX(n.cores, 1), n.load, n.id", NULL);
	return nodes;
}

#define PENDING_BATCH 32 /* pending instances read at a time, beyond the free slots */

/* Tries to place one pending instance; 1 when it was started on a node (whose "running" then counts it). */
static int place(struct core *c, json_t *inst, json_t *nodes)
{
	int64_t job = json_integer_value(json_object_get(inst, "job"));
	const char *object = json_string_value(json_object_get(inst, "object"));
	int64_t want_node = json_integer_value(json_object_get(inst, "want_node"));
	const char *want_isa = json_string_value(json_object_get(inst, "want_isa"));
	json_t *chosen = NULL, *built = NULL, *meta = NULL, *node;
	const char *level = NULL;
	double best_ratio = 1e300;
	int placed = 0;
	size_t j;

	/* The least loaded eligible node (running per core), first in id order on ties. */
	json_array_foreach(nodes, j, node) {
		const char *isa = json_string_value(json_object_get(node, "isa"));
		int64_t running = json_integer_value(json_object_get(node, "running"));
		int64_t cores = json_integer_value(json_object_get(node, "cores"));
		double ratio = (double)running / (double)(cores > 0 ? cores : 1);
		json_t *nb = NULL;
		const char *lv;
		if (running >= cores || ratio >= best_ratio)
			continue;
		if (want_node && json_integer_value(json_object_get(node, "id")) != want_node)
			continue;
		if (want_isa && strcmp(want_isa, isa))
			continue;
		store_rows(c->db, &nb,
			   "SELECT level, digest FROM builds WHERE job = ? AND object = ? AND isa = ? "
			   "AND status = 'ok'", "iss", job, object, isa);
		lv = sched_best_level(json_string_value(json_object_get(node, "levels")), nb);
		if (!lv) {
			json_decref(nb);
			continue;
		}
		json_decref(built);
		built = nb;
		level = lv;
		chosen = node;
		best_ratio = ratio;
	}
	if (chosen) {
		const char *artifact = NULL;
		size_t k;
		json_t *b;
		json_array_foreach(built, k, b)
			if (!strcmp(json_string_value(json_object_get(b, "level")), level))
				artifact = json_string_value(json_object_get(b, "digest"));
		store_row(c->db, &meta, "SELECT entry, args, checkpoint_s FROM objects WHERE job = ? AND name = ?",
			  "is", job, object);
		if (meta) {
			json_object_set(inst, "checkpoint_s", json_object_get(meta, "checkpoint_s"));
			json_object_set_new(inst, "entry", json_incref(json_object_get(meta, "entry")));
			json_object_set_new(inst, "args", json_loads(json_string_value(json_object_get(meta, "args")), 0, NULL));
		}
		if (!artifact || start_instance(c, inst, chosen, level, artifact) < 0) {
			log_warn("cannot start instance i-%lld: %s", (long long)json_integer_value(json_object_get(inst, "id")),
				 artifact ? err_msg() : "no artifact");
		} else {
			json_object_set_new(chosen, "running",
					    json_integer(json_integer_value(json_object_get(chosen, "running")) + 1));
			placed = 1;
		}
	}
	json_decref(meta);
	json_decref(built);
	return placed;
}

/*
 * Pending instances are read in id order, a batch at a time, only while
 * some node has a free slot: a pass costs what it places (plus the
 * instances it has to pass over), not the length of the queue, so the
 * events of a job of n instances do not add up to n^2 work.
 */
void sched_pass(struct core *c)
{
	json_t *pending = NULL, *nodes = NULL, *inst, *node;
	int64_t free_slots = 0, last = 0;
	int tx = 0;
	size_t i;

	/* Most calls (a join, a progress event) find nothing waiting: then no node list is read. */
	if (!store_int(c->db, 0, "SELECT EXISTS(SELECT 1 FROM instances WHERE state = 'pending' AND hold = 0)", NULL))
		return;
	if (!(nodes = free_nodes(c)))
		return;
	json_array_foreach(nodes, i, node) {
		int64_t room = json_integer_value(json_object_get(node, "cores")) -
			       json_integer_value(json_object_get(node, "running"));
		free_slots += room > 0 ? room : 0;
	}
	if (free_slots == 0 || store_begin(c->db) < 0)
		goto out;
	tx = 1;
	while (free_slots > 0) {
		json_decref(pending);
		pending = NULL;
		if (store_rows(c->db, &pending,
			       "SELECT i.id, i.job, i.object, i.generation, i.fork_index, i.state_digest, i.want_node, "
			       "       i.want_isa FROM instances i JOIN jobs j ON j.id = i.job "
			       "WHERE i.state = 'pending' AND i.hold = 0 AND j.state != 'cancelled' AND i.id > ? "
			       "ORDER BY i.id LIMIT ?", "ii",
			       last, free_slots + PENDING_BATCH) < 0 ||
		    json_array_size(pending) == 0)
			break;
		json_array_foreach(pending, i, inst) {
			last = json_integer_value(json_object_get(inst, "id"));
			if (place(c, inst, nodes) && --free_slots == 0)
				break;
		}
	}
out:
	if (tx && store_commit(c->db) < 0)
		store_rollback(c->db);
	json_decref(pending);
	json_decref(nodes);
}

static void append_log(struct core *c, int64_t id, const char *text)
{
	char name[64];
	char *path;
	FILE *f;
	long size;

	snprintf(name, sizeof(name), "i-%lld.log", (long long)id);
	path = fs_join(c->logs_dir, name);
	f = path ? fopen(path, "ae") : NULL;
	free(path);
	if (!f)
		return;
	size = ftell(f);
	if (size >= 0 && (unsigned long)size < LOG_MAX) {
		size_t n = strlen(text);
		if (n > LOG_MAX - (unsigned long)size) {
			n = LOG_MAX - (unsigned long)size;
			fwrite(text, 1, n, f);
			fputs("\n[log truncated at 1 MiB]\n", f);
		} else {
			fwrite(text, 1, n, f);
		}
	}
	fclose(f);
}

static int parse_id(const char *s, char prefix, int64_t *out)
{
	char *end;
	long long v;

	if (!s || s[0] != prefix || s[1] != '-')
		return -1;
	v = strtoll(s + 2, &end, 10);
	if (*end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/*
 * Progress teaches speed: the instance's rate (fraction per second, smoothed)
 * and the node's rate for this object, which the balancer compares.
 */
static void learn_rate(struct core *c, json_t *inst, double progress, double now)
{
	int64_t id = json_integer_value(json_object_get(inst, "id"));
	json_t *lp = json_object_get(inst, "last_progress"), *lt = json_object_get(inst, "last_progress_time");
	json_t *old = json_object_get(inst, "rate");
	double rate;

	if (!json_is_number(lp) || !json_is_number(lt) || now - json_number_value(lt) < 0.5 ||
	    progress < json_number_value(lp)) {
		if (!json_is_number(lp) || progress < json_number_value(lp))
			store_run(c->db, NULL, "UPDATE instances SET last_progress = ?, last_progress_time = ? WHERE id = ?",
				  "ddi", progress, now, id);
		return;
	}
	rate = (progress - json_number_value(lp)) / (now - json_number_value(lt));
	if (json_is_number(old))
		rate = 0.5 * json_number_value(old) + 0.5 * rate;
	store_run(c->db, NULL, "UPDATE instances SET rate = ?, last_progress = ?, last_progress_time = ? WHERE id = ?",
		  "dddi", rate, progress, now, id);
	store_run(c->db, NULL, "INSERT INTO speeds(node, job, object, rate, samples) VALUES(?, ?, ?, ?, 1) "
		  "ON CONFLICT(node, job, object) DO UPDATE SET rate = 0.8 * rate + 0.2 * excluded.rate, "
		  "samples = samples + 1", "iisd", json_integer_value(json_object_get(inst, "node")),
		  json_integer_value(json_object_get(inst, "job")), json_string_value(json_object_get(inst, "object")),
		  rate);
}

/* One event; returns 0 or an HTTP status for a bad event. */
static unsigned apply_event(struct core *c, json_t *inst, const json_t *ev, char *err, size_t errlen)
{
	int64_t id = json_integer_value(json_object_get(inst, "id"));
	int64_t node = json_integer_value(json_object_get(inst, "node"));
	const char *isa = json_string_value(json_object_get(inst, "isa"));
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	const char *state = json_string_value(json_object_get(inst, "state"));
	/* Only a run under way changes: a report that comes after a cancel or an end is heard, not acted on. */
	int live = !strcmp(state, "starting") || !strcmp(state, "running");
	double now = core_now();

	if (!kind) {
		snprintf(err, errlen, "events[]: \"kind\" must be a string");
		return 400;
	}
	if (!strcmp(kind, "running")) {
		if (!strcmp(state, "starting")) {
			json_t *asked = json_object_get(inst, "stop_requested");
			char detail[96] = "";
			store_run(c->db, NULL, "UPDATE instances SET state = 'running', started = COALESCE(started, ?) "
				  "WHERE id = ?", "di", now, id);
			if (json_is_number(asked)) {
				/* A move finished: what it cost, stop request to running again, teaches the balancer. */
				/* Bounded: a node slow to say so must not stop all balancing. */
				double cost = now - json_number_value(asked);
				cost = cost < 0 ? 0 : cost > MOVE_COST_SAMPLE_MAX_S ? MOVE_COST_SAMPLE_MAX_S : cost;
				double old = (double)store_int(c->db, -1, "SELECT CAST(value AS REAL) * 1000 FROM meta "
							       "WHERE key = 'move_cost'", NULL) / 1000.0;
				char v[32];
				snprintf(v, sizeof(v), "%.4f", old < 0 ? cost : 0.7 * old + 0.3 * cost);
				store_run(c->db, NULL, "INSERT OR REPLACE INTO meta(key, value) VALUES('move_cost', ?)", "s", v);
				store_run(c->db, NULL, "UPDATE instances SET stop_requested = NULL, moves = moves + 1 "
					  "WHERE id = ?", "i", id);
				snprintf(detail, sizeof(detail), "moved: %.0f ms from the stop request", cost * 1000);
			}
			core_history(c, id, "running", node, isa, detail[0] ? detail : NULL);
		}
	} else if (!strcmp(kind, "progress")) {
		json_t *v = json_object_get(ev, "value");
		if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
			snprintf(err, errlen, "events[]: progress \"value\" must be a number from 0 to 1");
			return 400;
		}
		if (!live)
			return 0;
		store_run(c->db, NULL, "UPDATE instances SET progress = ?, state = CASE state WHEN 'starting' "
			  "THEN 'running' ELSE state END WHERE id = ?", "di", json_number_value(v), id);
		learn_rate(c, inst, json_number_value(v), now);
	} else if (!strcmp(kind, "log")) {
		const char *text = json_string_value(json_object_get(ev, "text"));
		if (!text) {
			snprintf(err, errlen, "events[]: log \"text\" must be a string");
			return 400;
		}
		append_log(c, id, text);
	} else if (!strcmp(kind, "checkpoint") || !strcmp(kind, "exit")) {
		json_t *sd = json_object_get(ev, "state");
		const char *digest = json_string_value(sd);
		unsigned st;
		if (!live) {
			/* Recorded already (an agent repeating its last report after a restart), or cancelled. */
			if (!strcmp(kind, "exit") && !strcmp(state, "cancelled"))
				core_history(c, id, "stopped", node, isa, "cancelled");
			return 0;
		}
		if ((st = store_inline_bundle(c, ev, digest, err, errlen)))
			return st;
		if (sd && !json_is_null(sd) && (!digest_is_valid(digest) || !cas_has(c->blobs, digest))) {
			snprintf(err, errlen, "events[]: state '%.70s' is not an uploaded blob", digest ? digest : "?");
			return 400;
		}
		if (!strcmp(kind, "checkpoint")) {
			if (!digest) {
				snprintf(err, errlen, "events[]: checkpoint needs \"state\"");
				return 400;
			}
			store_run(c->db, NULL, "UPDATE instances SET state_digest = ? WHERE id = ?", "si", digest, id);
			core_history(c, id, "checkpoint", node, isa, digest);
			return 0;
		}
		json_t *codev = json_object_get(ev, "code");
		int64_t code = json_integer_value(codev);
		int64_t sig = json_integer_value(json_object_get(ev, "signal"));
		const char *why = json_string_value(json_object_get(ev, "error"));
		char detail[200];
		if (!json_is_integer(codev)) {
			snprintf(err, errlen, "events[]: exit \"code\" must be an integer");
			return 400;
		}
		/* An exit 0 with an error is one whose result the agent could not pack or upload: not done. */
		if (code == 0 && !sig && !why) {
			store_run(c->db, NULL, "UPDATE instances SET state = 'done', progress = 1, exit_code = 0, "
				  "result_digest = ?, finished = ? WHERE id = ?", "sdi", digest, now, id);
			core_history(c, id, "done", node, isa, digest);
		} else if (code == EXIT_CHECKPOINTED && !sig && digest) {
			int64_t hold = json_integer_value(json_object_get(inst, "hold"));
			store_run(c->db, NULL, "UPDATE instances SET state = ?, state_digest = ?, node = NULL "
				  "WHERE id = ?", "ssi", hold ? "checkpointed" : "pending", digest, id);
			core_history(c, id, "checkpointed", node, isa, digest);
		} else {
			if (sig)
				snprintf(detail, sizeof(detail), "killed by signal %lld%s%s", (long long)sig,
					 why ? ": " : "", why ? why : "");
			else
				snprintf(detail, sizeof(detail), "exit %lld%s%s", (long long)code, why ? ": " : "",
					 why ? why : "");
			store_run(c->db, NULL, "UPDATE instances SET state = 'failed', exit_code = ?, error = ?, "
				  "finished = ? WHERE id = ?", "isdi", code, detail, now, id);
			core_history(c, id, "failed", node, isa, detail);
		}
	} else {
		snprintf(err, errlen, "events[]: unknown kind '%.40s'", kind);
		return 400;
	}
	return 0;
}

/* Applies the events of one instance generation in a savepoint of their own; no placement. */
static unsigned apply_batch(struct core *c, int64_t node, const json_t *body, char *err, size_t errlen)
{
	const char *iid = json_string_value(json_object_get(body, "instance"));
	json_t *gen = json_object_get(body, "generation"), *events = json_object_get(body, "events");
	json_t *inst = NULL, *ev;
	unsigned status = 200;
	int64_t id = 0, job;
	size_t i;

	if (parse_id(iid, 'i', &id) < 0 || !json_is_integer(gen) || !json_is_array(events)) {
		snprintf(err, errlen, "body: needs \"instance\" (i-N), \"generation\" (integer) and \"events\" (array)");
		return 400;
	}
	if (json_array_size(events) > SCHED_EVENTS_MAX) {
		snprintf(err, errlen, "events: at most %d in one request", SCHED_EVENTS_MAX);
		return 413;
	}
	if (store_row(c->db, &inst, "SELECT * FROM instances WHERE id = ?", "i", id) < 0) {
		snprintf(err, errlen, "instance '%s' not found", iid);
		return 404;
	}
	/* Only the node running the current generation may report on it. */
	if (json_integer_value(json_object_get(inst, "generation")) != json_integer_value(gen) ||
	    json_integer_value(json_object_get(inst, "node")) != node) {
		snprintf(err, errlen, "stale generation %lld of '%s' (current: %lld)", (long long)json_integer_value(gen),
			 iid, (long long)json_integer_value(json_object_get(inst, "generation")));
		json_decref(inst);
		return 409;
	}
	if (store_begin(c->db) < 0) {
		json_decref(inst);
		snprintf(err, errlen, "store unavailable");
		return 500;
	}
	job = json_integer_value(json_object_get(inst, "job"));
	json_array_foreach(events, i, ev) {
		if (!json_is_object(ev)) {
			snprintf(err, errlen, "events[%zu]: expected an object", i);
			status = 400;
			break;
		}
		if ((status = apply_event(c, inst, ev, err, errlen)) != 0)
			break;
		status = 200;
		/* Later events in the batch see the state the earlier ones made. */
		json_decref(inst);
		inst = NULL;
		store_row(c->db, &inst, "SELECT * FROM instances WHERE id = ?", "i", id);
		if (!inst)
			break;
	}
	if (status == 200) {
		sched_job_state(c, job);
		if (store_commit(c->db) < 0) {
			snprintf(err, errlen, "%s", err_msg());
			status = 500;
		}
	}
	if (status != 200)
		store_rollback(c->db);
	json_decref(inst);
	return status;
}

/* Opens the level the events, their jobs' states and the placements they allow share: one fsync. */
static unsigned events_begin(struct core *c, char *err, size_t errlen)
{
	if (store_begin(c->db) == 0)
		return 200;
	snprintf(err, errlen, "store unavailable: %s", err_msg());
	return 500;
}

static unsigned events_end(struct core *c, int applied, char *err, size_t errlen)
{
	if (applied)
		sched_pass(c);
	if (store_commit(c->db) == 0)
		return 200;
	snprintf(err, errlen, "%s", err_msg());
	store_rollback(c->db);
	return 500;
}

unsigned sched_events(struct core *c, int64_t node, const json_t *body, char *err, size_t errlen)
{
	unsigned status = events_begin(c, err, errlen);

	if (status != 200)
		return status;
	status = apply_batch(c, node, body, err, errlen);
	if (events_end(c, status == 200, err, errlen) != 200)
		return 500;
	return status;
}

unsigned sched_events_batches(struct core *c, int64_t node, const json_t *batches, json_t **results, char *err,
			      size_t errlen)
{
	json_t *out, *b;
	size_t i, total = 0;
	int applied = 0;

	if (!json_is_array(batches)) {
		snprintf(err, errlen, "body: \"batches\" must be an array");
		return 400;
	}
	if (json_array_size(batches) > SCHED_BATCHES_MAX) {
		snprintf(err, errlen, "batches: at most %d in one request", SCHED_BATCHES_MAX);
		return 413;
	}
	json_array_foreach(batches, i, b)
		total += json_array_size(json_object_get(b, "events"));
	if (total > SCHED_EVENTS_MAX) {
		snprintf(err, errlen, "events: at most %d in one request", SCHED_EVENTS_MAX);
		return 413;
	}
	if (!(out = json_array())) {
		snprintf(err, errlen, "out of memory");
		return 500;
	}
	if (events_begin(c, err, errlen) != 200) {
		json_decref(out);
		return 500;
	}
	/* Each batch stands alone: a stale or refused one undoes only its own events. */
	json_array_foreach(batches, i, b) {
		char why[300] = "";
		unsigned status;
		json_t *r;

		if (!json_is_object(b)) {
			snprintf(why, sizeof(why), "batches[%zu]: expected an object", i);
			status = 400;
		} else {
			status = apply_batch(c, node, b, why, sizeof(why));
		}
		if (status >= 500) {
			/* The store failed, not the events: all of them again later, in order. */
			store_rollback(c->db);
			json_decref(out);
			snprintf(err, errlen, "batches[%zu]: %s", i, why);
			return status;
		}
		applied |= status == 200;
		http_utf8_clean(why); /* it may quote what the node sent, cut mid-character */
		r = status == 200 ? json_pack("{si}", "status", (int)status)
				  : json_pack("{siss}", "status", (int)status, "error", why);
		if (!r || json_array_append_new(out, r) < 0) {
			store_rollback(c->db);
			json_decref(out);
			snprintf(err, errlen, "out of memory");
			return 500;
		}
	}
	if (events_end(c, applied, err, errlen) != 200) {
		json_decref(out);
		return 500;
	}
	*results = out;
	return 200;
}

/* Puts an instance ({"id", "isa"} row) that node no longer runs back to pending, saying why (inside a transaction). */
static void requeue(struct core *c, const json_t *inst, int64_t node, const char *why)
{
	int64_t id = json_integer_value(json_object_get(inst, "id"));

	store_run(c->db, NULL, "UPDATE instances SET state = 'pending', node = NULL WHERE id = ?", "i", id);
	core_history(c, id, "lost", node, json_string_value(json_object_get(inst, "isa")), why);
}

/* Whether the agent's list of runs ([{"instance", "generation"}]) names iid (of generation gen, unless gen < 0). */
static int listed(const json_t *running, const char *iid, int64_t gen)
{
	const json_t *r;
	size_t i;

	json_array_foreach(running, i, r)
		if (!strcmp(json_string_value(json_object_get(r, "instance")) ?: "", iid) &&
		    (gen < 0 || json_integer_value(json_object_get(r, "generation")) == gen))
			return 1;
	return 0;
}

/*
 * Starts a node never took up: placed more than two TTLs ago, still
 * "starting", and not among the runs (and queued exits) its heartbeat
 * lists. They continue elsewhere, a generation on, so that a late report
 * of the old one is refused.
 */
static void requeue_unstarted(struct core *c, int64_t node, const json_t *running)
{
	json_t *stuck = NULL, *m;
	char iid[32], why[96];
	int moved = 0;
	size_t i;

	if (store_rows(c->db, &stuck, "SELECT id, generation, isa FROM instances WHERE node = ? AND state = 'starting' "
		       "AND placed_at < ?", "id", node, core_now() - 2.0 * c->ttl_s) < 0 ||
	    json_array_size(stuck) == 0 || store_begin(c->db) < 0) {
		json_decref(stuck);
		return;
	}
	json_array_foreach(stuck, i, m) {
		int64_t id = json_integer_value(json_object_get(m, "id"));
		snprintf(iid, sizeof(iid), "i-%lld", (long long)id);
		if (listed(running, iid, json_integer_value(json_object_get(m, "generation"))))
			continue;
		snprintf(why, sizeof(why), "n-%lld did not start it within %.0f s", (long long)node, 2.0 * c->ttl_s);
		requeue(c, m, node, why);
		log_warn("%s: %s: placing it again", iid, why);
		moved = 1;
	}
	if (moved)
		sched_pass(c);
	if (store_commit(c->db) < 0)
		store_rollback(c->db);
	json_decref(stuck);
}

void sched_reconcile(struct core *c, int64_t node, const json_t *running, int joined)
{
	json_t *mine = NULL, *r, *m;
	size_t i;

	/* Stop what the agent runs that the store says it should not. */
	json_array_foreach(running, i, r) {
		int64_t id = 0, gen = json_integer_value(json_object_get(r, "generation"));
		const char *iid = json_string_value(json_object_get(r, "instance"));
		int64_t cur_node, cur_gen;
		if (parse_id(iid, 'i', &id) < 0)
			continue;
		cur_node = store_int(c->db, 0, "SELECT node FROM instances WHERE id = ? AND state IN "
				     "('starting', 'running')", "i", id);
		cur_gen = store_int(c->db, -1, "SELECT generation FROM instances WHERE id = ?", "i", id);
		if (cur_node != node || cur_gen != gen) {
			json_t *msg = json_pack("{sssssIss}", "type", "stop", "instance", iid, "generation",
						(json_int_t)gen, "mode", "kill");
			sched_send(c, node, msg);
			json_decref(msg);
		}
	}
	if (!joined) {
		requeue_unstarted(c, node, running);
		return;
	}
	/* After a (re)join, what the agent no longer runs continues elsewhere. */
	if (store_rows(c->db, &mine, "SELECT id, generation, isa FROM instances WHERE node = ? AND state = "
		       "'running'", "i", node) < 0)
		return;
	if (store_begin(c->db) < 0) {
		json_decref(mine);
		return;
	}
	json_array_foreach(mine, i, m) {
		int64_t id = json_integer_value(json_object_get(m, "id"));
		char iid[32];
		snprintf(iid, sizeof(iid), "i-%lld", (long long)id);
		if (!listed(running, iid, -1))
			requeue(c, m, node, "the agent restarted without it; continuing from the last checkpoint");
	}
	if (store_commit(c->db) < 0)
		store_rollback(c->db);
	json_decref(mine);
}

void sched_check_nodes(struct core *c, double now)
{
	json_t *lost = NULL, *n, *insts = NULL, *in;
	size_t i, j;

	core_seen_flush(c);
	if (store_rows(c->db, &lost, "SELECT id, name FROM nodes WHERE state = 'up' AND last_seen < ?", "d",
		       now - c->ttl_s) < 0 || json_array_size(lost) == 0)
		goto out;
	if (store_begin(c->db) < 0)
		goto out;
	json_array_foreach(lost, i, n) {
		int64_t id = json_integer_value(json_object_get(n, "id"));
		log_warn("node n-%lld ('%s') sent no heartbeat for %.0f s: declared lost", (long long)id,
			 json_string_value(json_object_get(n, "name")), c->ttl_s);
		store_run(c->db, NULL, "UPDATE nodes SET state = 'lost' WHERE id = ?", "i", id);
		json_decref(insts);
		insts = NULL;
		store_rows(c->db, &insts, "SELECT id, isa FROM instances WHERE node = ? AND state IN ('starting', "
			   "'running')", "i", id);
		json_array_foreach(insts, j, in)
			requeue(c, in, id, "node lost; continuing from the last checkpoint");
	}
	if (store_commit(c->db) < 0)
		store_rollback(c->db);
	sched_pass(c);
out:
	json_decref(insts);
	json_decref(lost);
}

void sched_job_state(struct core *c, int64_t job)
{
	json_t *n = NULL;
	int64_t total, done, failed, active;
	const char *state = NULL;

	if (store_row(c->db, &n, "SELECT COUNT(*) AS total, SUM(state = 'done') AS done, SUM(state = 'failed') "
		      "AS failed, SUM(state IN ('pending', 'starting', 'running', 'checkpointed')) AS active "
		      "FROM instances WHERE job = ?", "i", job) < 0)
		return;
	total = json_integer_value(json_object_get(n, "total"));
	done = json_integer_value(json_object_get(n, "done"));
	failed = json_integer_value(json_object_get(n, "failed"));
	active = json_integer_value(json_object_get(n, "active"));
	json_decref(n);
	if (total > 0 && done == total)
		state = "done";
	else if (failed > 0 && active == 0)
		state = "failed";
	if (state)
		store_run(c->db, NULL, "UPDATE jobs SET state = ? WHERE id = ? AND state NOT IN ('cancelled', ?)", "sis",
			  state, job, state);
}

int sched_cancel_job(struct core *c, int64_t job)
{
	json_t *active = NULL, *in;
	size_t i;
	int r;

	if ((r = store_rows(c->db, &active, "SELECT id, node, generation, isa, state FROM instances WHERE job = ? "
			    "AND state IN ('pending', 'starting', 'running', 'checkpointed')", "i", job)) < 0)
		return r;
	if ((r = store_begin(c->db)) < 0) {
		json_decref(active);
		return r;
	}
	json_array_foreach(active, i, in) {
		int64_t id = json_integer_value(json_object_get(in, "id"));
		int64_t node = json_integer_value(json_object_get(in, "node"));
		const char *st = json_string_value(json_object_get(in, "state"));
		char iid[32];
		snprintf(iid, sizeof(iid), "i-%lld", (long long)id);
		if (node && (!strcmp(st, "starting") || !strcmp(st, "running"))) {
			json_t *msg = json_pack("{sssssIss}", "type", "stop", "instance", iid, "generation",
						json_integer_value(json_object_get(in, "generation")), "mode", "kill");
			sched_send(c, node, msg);
			json_decref(msg);
		}
		store_run(c->db, NULL, "UPDATE instances SET state = 'cancelled', finished = ? WHERE id = ?", "di",
			  core_now(), id);
		core_history(c, id, "cancelled", node, json_string_value(json_object_get(in, "isa")), NULL);
	}
	store_run(c->db, NULL, "UPDATE jobs SET state = 'cancelled' WHERE id = ?", "i", job);
	if ((r = store_commit(c->db)) < 0)
		store_rollback(c->db);
	json_decref(active);
	return r;
}
