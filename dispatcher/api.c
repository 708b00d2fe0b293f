/* api.c - the handlers of the /v1 API; each runs with the core lock held. */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "bundle.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "jobs.h"
#include "log.h"
#include "scheduler.h"

#define LONG_POLL_MAX_S 60
#define MESSAGES_PER_POLL 100
#define RESULT_STATE_MAX (4u << 20) /* a result's state.json shown by GET .../result */
#define RUNNING_MAX 4096	    /* runs an agent lists when it joins or heartbeats */
#define HISTORY_MAX 500		    /* history entries GET /v1/instances/ID shows, the latest */

static int parse_id(const char *s, char prefix, int64_t *out)
{
	char *end;
	long long v;

	if (!s || s[0] != prefix || s[1] != '-' || !s[2])
		return -1;
	v = strtoll(s + 2, &end, 10);
	if (*end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* Replaces an integer id field with its "x-N" name (or null). */
static void name_field(json_t *o, const char *key, char prefix)
{
	json_t *v = json_object_get(o, key);
	char name[32];

	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	snprintf(name, sizeof(name), "%c-%lld", prefix, (long long)json_integer_value(v));
	json_object_set_new(o, key, json_string(name));
}

static json_t *instance_json(struct core *c, json_t *row, int with_history)
{
	json_t *hist = NULL, *h;
	int64_t id = json_integer_value(json_object_get(row, "id"));
	size_t i;

	json_object_del(row, "hold");
	json_object_set_new(row, "index", json_incref(json_object_get(row, "idx")));
	json_object_del(row, "idx");
	name_field(row, "want_node", 'n');
	name_field(row, "id", 'i');
	name_field(row, "job", 'j');
	name_field(row, "node", 'n');
	/* The latest entries, bounded: periodic checkpoints add one each. */
	if (with_history && store_rows(c->db, &hist, "SELECT time, event, node, isa, detail FROM (SELECT id, time, "
				       "event, node, isa, detail FROM history WHERE instance = ? ORDER BY id DESC "
				       "LIMIT ?) ORDER BY id", "ii", id, (int64_t)HISTORY_MAX) == 0) {
		json_array_foreach(hist, i, h)
			name_field(h, "node", 'n');
		json_object_set_new(row, "history", hist);
		if (json_array_size(hist) == HISTORY_MAX)
			json_object_set_new(row, "history_omitted",
					    json_integer(store_int(c->db, 0, "SELECT COUNT(*) FROM history WHERE instance = ?",
								   "i", id) - HISTORY_MAX));
	}
	return row;
}

static int want_id(struct http_req *req, char prefix, const char *what, int64_t *id)
{
	if (parse_id(req->args[0], prefix, id) < 0) {
		http_reply_error(req, 404, "%s '%.64s' not found", what, req->args[0]);
		return -1;
	}
	return 0;
}

/* ---- operator ---- */

static void post_job(struct core *c, struct http_req *req)
{
	const char *balance = http_query(req, "balance");
	json_t *out = NULL;
	int r;

	if (balance && strcmp(balance, "0") && strcmp(balance, "1")) {
		http_reply_error(req, 400, "query: \"balance\" must be 0 or 1");
		return;
	}
	r = jobs_submit(c, req->file, &out);
	if (r == 0 && balance && !strcmp(balance, "0"))
		store_run(c->db, NULL, "UPDATE jobs SET balance = 0 WHERE id = ?", "i",
			  (int64_t)strtoll(json_string_value(json_object_get(out, "job")) + 2, NULL, 10));
	if (r == 0)
		http_reply_json(req, 201, out);
	else if (r == ERR_INVALID || r == ERR_LIMIT || r == ERR_NOTFOUND || r == ERR_CORRUPT)
		http_reply_error(req, r == ERR_LIMIT ? 413 : 400, "%s", err_msg());
	else
		http_reply_error(req, 500, "%s", err_msg());
}

static void list_jobs(struct core *c, struct http_req *req)
{
	json_t *rows = NULL, *j;
	size_t i;

	if (store_rows(c->db, &rows, "SELECT id, name, state, created, "
		       "(SELECT COUNT(*) FROM instances i WHERE i.job = jobs.id) AS instances, "
		       "(SELECT COUNT(*) FROM instances i WHERE i.job = jobs.id AND i.state = 'done') AS done, "
		       "(SELECT COUNT(*) FROM instances i WHERE i.job = jobs.id AND i.state = 'failed') AS failed "
		       "FROM jobs ORDER BY id", NULL) < 0) {
		http_reply_error(req, 500, "%s", err_msg());
		return;
	}
	json_array_foreach(rows, i, j)
		name_field(j, "id", 'j');
	http_reply_json(req, 200, json_pack("{so}", "jobs", rows));
}

static void get_job(struct core *c, struct http_req *req)
{
	json_t *job = NULL, *builds = NULL, *insts = NULL, *in;
	int64_t id;
	size_t i;

	if (want_id(req, 'j', "job", &id) < 0)
		return;
	if (store_row(c->db, &job, "SELECT id, name, state, created, balance FROM jobs WHERE id = ?", "i", id) < 0) {
		http_reply_error(req, 404, "job '%s' not found", req->args[0]);
		return;
	}
	name_field(job, "id", 'j');
	store_rows(c->db, &builds, "SELECT object, target, isa, level, status, digest, cached, error FROM builds "
		   "WHERE job = ? AND status != 'skipped' ORDER BY object, target", "i", id);
	store_rows(c->db, &insts, "SELECT * FROM instances WHERE job = ? ORDER BY id", "i", id);
	json_array_foreach(insts, i, in)
		instance_json(c, in, 0);
	json_object_set_new(job, "builds", builds ? builds : json_array());
	json_object_set_new(job, "instances", insts ? insts : json_array());
	http_reply_json(req, 200, job);
}

static void cancel_job(struct core *c, struct http_req *req)
{
	int64_t id;

	if (want_id(req, 'j', "job", &id) < 0)
		return;
	if (!store_int(c->db, 0, "SELECT COUNT(*) FROM jobs WHERE id = ?", "i", id)) {
		http_reply_error(req, 404, "job '%s' not found", req->args[0]);
		return;
	}
	if (sched_cancel_job(c, id) < 0) {
		http_reply_error(req, 500, "%s", err_msg());
		return;
	}
	http_reply_json(req, 200, json_pack("{ssss}", "job", req->args[0], "state", "cancelled"));
}

static json_t *load_instance(struct core *c, struct http_req *req, int64_t *id)
{
	json_t *row = NULL;

	if (want_id(req, 'i', "instance", id) < 0)
		return NULL;
	if (store_row(c->db, &row, "SELECT * FROM instances WHERE id = ?", "i", *id) < 0) {
		http_reply_error(req, 404, "instance '%s' not found", req->args[0]);
		return NULL;
	}
	return row;
}

static void get_instance(struct core *c, struct http_req *req)
{
	int64_t id;
	json_t *row = load_instance(c, req, &id);

	if (row)
		http_reply_json(req, 200, instance_json(c, row, 1));
}

/* The log from byte ?offset=N on (0: all of it; past its end: nothing), at most LOG_REPLY_MAX of it. */
#define LOG_REPLY_MAX (2u << 20)

static void get_logs(struct core *c, struct http_req *req)
{
	const char *offset_s = http_query(req, "offset");
	unsigned long long offset = 0;
	char name[64], *end = NULL, *text = NULL;
	ssize_t n = 0;
	struct stat st;
	int64_t id;
	json_t *row;
	char *path;
	int fd;

	if (offset_s) {
		errno = 0;
		offset = strtoull(offset_s, &end, 10);
		if (*offset_s < '0' || *offset_s > '9' || *end || errno) {
			http_reply_error(req, 400, "query: \"offset\" must be a number of bytes");
			return;
		}
	}
	if (!(row = load_instance(c, req, &id)))
		return;
	json_decref(row);
	snprintf(name, sizeof(name), "i-%lld.log", (long long)id);
	path = fs_join(c->logs_dir, name);
	/* The file only grows: read what lies past the offset, not all of it at each poll. */
	fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd >= 0 && fstat(fd, &st) == 0 && (unsigned long long)st.st_size > offset) {
		size_t want = (unsigned long long)st.st_size - offset < LOG_REPLY_MAX ?
				      (size_t)((unsigned long long)st.st_size - offset) : LOG_REPLY_MAX;
		if ((text = malloc(want)) != NULL && (n = pread(fd, text, want, (off_t)offset)) < 0)
			n = 0;
	}
	if (fd >= 0)
		close(fd);
	http_reply_text(req, 200, text ? text : "", (size_t)n);
	free(text);
	free(path);
}

static void get_result(struct core *c, struct http_req *req)
{
	int64_t id;
	json_t *row = load_instance(c, req, &id), *state = NULL;
	const char *digest;
	char note[96] = "";

	if (!row)
		return;
	digest = json_string_value(json_object_get(row, "result_digest"));
	if (strcmp(json_string_value(json_object_get(row, "state")), "done") != 0) {
		http_reply_error(req, 409, "instance '%s' has not finished (state %s)", req->args[0],
				 json_string_value(json_object_get(row, "state")));
		json_decref(row);
		return;
	}
	/*
	 * The bundle's state.json alone, read in memory and bounded: a node wrote it, and a few KiB of
	 * zstd can hold gigabytes. An object may finish without a result; a larger state.json is named,
	 * not shown (`dispatch result --out` downloads the bundle).
	 */
	if (digest) {
		struct buf text = BUF_INIT(RESULT_STATE_MAX);
		char *blob = cas_path(c->blobs, digest);
		json_error_t jerr;
		int r = !blob ? err_set(ERR_NOMEM, "out of memory") : bundle_read_entry(&text, blob, "state.json");
		if (r == ERR_LIMIT)
			snprintf(note, sizeof(note), "state.json is larger than %u MiB: download the bundle",
				 RESULT_STATE_MAX >> 20);
		else if (r == 0 && !(state = json_loadb(text.data ? text.data : "", text.len, 0, &jerr)))
			r = err_set(ERR_INVALID, "state.json: %s", jerr.text);
		buf_release(&text);
		free(blob);
		/* A result that exists but cannot be read is an error, not an empty result. */
		if (r < 0 && r != ERR_LIMIT) {
			log_warn("result of '%s' (%.12s): %s", req->args[0], digest, err_msg());
			http_reply_error(req, 500, "cannot read the result of '%s': %s", req->args[0], err_msg());
			json_decref(row);
			return;
		}
	}
	http_reply_json(req, 200, json_pack("{sssosOso*}", "instance", req->args[0], "digest",
					    digest ? json_string(digest) : json_null(), "state", state ? state : json_null(),
					    "note", note[0] ? json_string(note) : NULL));
	json_decref(state);
	json_decref(row);
}

static void list_nodes(struct core *c, struct http_req *req)
{
	json_t *rows = NULL, *n;
	size_t i;

	if (store_rows(c->db, &rows, "SELECT id, name, isa, levels, cores, memory, load, state, last_seen, "
		       "(SELECT COUNT(*) FROM instances i WHERE i.node = nodes.id AND i.state IN ('starting', 'running')) "
		       "AS running FROM nodes ORDER BY id", NULL) < 0) {
		http_reply_error(req, 500, "%s", err_msg());
		return;
	}
	json_array_foreach(rows, i, n) {
		json_t *levels = json_loads(json_string_value(json_object_get(n, "levels")), 0, NULL);
		name_field(n, "id", 'n');
		json_object_set_new(n, "level", json_incref(json_array_get(levels, json_array_size(levels) - 1)));
		json_object_set_new(n, "levels", levels ? levels : json_array());
	}
	http_reply_json(req, 200, json_pack("{so}", "nodes", rows));
}

/* ---- agents ---- */

static int valid_word(const char *s, size_t max)
{
	return s && *s && strlen(s) <= max &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") == strlen(s);
}

static void agent_join(struct core *c, struct http_req *req)
{
	json_t *b = req->json, *levels = json_object_get(b, "levels"), *l, *running = json_object_get(b, "running");
	const char *name = json_string_value(json_object_get(b, "name"));
	const char *isa = json_string_value(json_object_get(b, "isa"));
	json_t *cores = json_object_get(b, "cores"), *mem = json_object_get(b, "memory");
	double load = json_number_value(json_object_get(b, "load"));
	char token[65], id_name[32], *levels_text;
	digest_hex th;
	int64_t id = req->node;
	size_t i;

	if (!valid_word(name, 64) || !valid_word(isa, 16)) {
		http_reply_error(req, 400, "body: \"name\" and \"isa\" must be words of letters, digits, '.', '_', '+', '-'");
		return;
	}
	if (!json_is_array(levels) || json_array_size(levels) == 0 || json_array_size(levels) > 16) {
		http_reply_error(req, 400, "body: \"levels\" must be an array of 1 to 16 level names");
		return;
	}
	json_array_foreach(levels, i, l)
		if (!valid_word(json_string_value(l), 32)) {
			http_reply_error(req, 400, "body: levels[%zu] is not a level name", i);
			return;
		}
	if (!json_is_integer(cores) || json_integer_value(cores) < 1 || json_integer_value(cores) > 4096 ||
	    !json_is_integer(mem) || json_integer_value(mem) < 0) {
		http_reply_error(req, 400, "body: \"cores\" (1..4096) and \"memory\" (bytes) must be integers");
		return;
	}
	if (running && !json_is_array(running)) {
		http_reply_error(req, 400, "body: \"running\" must be an array");
		return;
	}
	if (json_array_size(running) > RUNNING_MAX) {
		http_reply_error(req, 413, "body: \"running\" lists at most %d runs", RUNNING_MAX);
		return;
	}
	/* The placement prefers the least loaded node: a node cannot bid below idle. */
	if (load < 0 || load != load) {
		http_reply_error(req, 400, "body: \"load\" must be a number, at least 0");
		return;
	}
	levels_text = json_dumps(levels, JSON_COMPACT);
	if (req->who == AUTH_NODE) {
		/* A known node joining again (agent restart): same id, same token. */
		store_run(c->db, NULL, "UPDATE nodes SET name = ?, isa = ?, levels = ?, cores = ?, memory = ?, load = ?, "
			  "state = CASE state WHEN 'drained' THEN 'drained' ELSE 'up' END, last_seen = ? WHERE id = ?",
			  "sssiiddi", name, isa, levels_text, json_integer_value(cores), json_integer_value(mem), load,
			  core_now(), id);
		snprintf(id_name, sizeof(id_name), "n-%lld", (long long)id);
		sched_reconcile(c, id, running, 1);
		http_reply_json(req, 200, json_pack("{sssnsfsfsisi}", "node", id_name, "token", "heartbeat_s",
						    c->heartbeat_s, "ttl_s", c->ttl_s, "inline_max", (int)SCHED_INLINE_MAX,
						    "batch_max", SCHED_BATCHES_MAX));
		log_info("node %s ('%s', %s) joined again", id_name, name, isa);
	} else {
		if (core_token(token) < 0) {
			free(levels_text);
			http_reply_error(req, 500, "cannot make a token");
			return;
		}
		digest_bytes(&th, token, strlen(token));
		if (store_run(c->db, &id, "INSERT INTO nodes(name, token_hash, isa, levels, cores, memory, load, state, "
			      "last_seen, joined) VALUES(?, ?, ?, ?, ?, ?, ?, 'up', ?, ?)", "ssssiiddd", name, th.hex, isa,
			      levels_text, json_integer_value(cores), json_integer_value(mem), load, core_now(),
			      core_now()) < 0) {
			free(levels_text);
			http_reply_error(req, 500, "%s", err_msg());
			return;
		}
		snprintf(id_name, sizeof(id_name), "n-%lld", (long long)id);
		http_reply_json(req, 200, json_pack("{sssssfsfsisi}", "node", id_name, "token", token, "heartbeat_s",
						    c->heartbeat_s, "ttl_s", c->ttl_s, "inline_max", (int)SCHED_INLINE_MAX,
						    "batch_max", SCHED_BATCHES_MAX));
		log_info("node %s ('%s', %s, %s) joined", id_name, name, isa, levels_text);
	}
	free(levels_text);
	/* A new ISA or level may need builds; free slots may take work. */
	c->build_wanted = 1;
	pthread_cond_signal(&c->build_cond);
	sched_pass(c);
}

static void node_seen(struct core *c, int64_t node)
{
	core_seen(c, node, core_now());
	/* A lost node that speaks again is up again: rare, so the write is no burden. */
	if (store_int(c->db, 0, "SELECT COUNT(*) FROM nodes WHERE id = ? AND state = 'lost'", "i", node))
		store_run(c->db, NULL, "UPDATE nodes SET last_seen = ?, state = 'up' WHERE id = ?", "di", core_now(), node);
}

/* A long poll's answer, at most: far below what an agent accepts (8 MiB), at least one message. */
#define MESSAGES_REPLY_MAX (2u << 20)

static void agent_messages(struct core *c, struct http_req *req)
{
	const char *after_s = http_query(req, "after"), *wait_s = http_query(req, "wait");
	long long after = after_s ? strtoll(after_s, NULL, 10) : 0;
	double wait = wait_s ? strtod(wait_s, NULL) : 0;
	json_t *rows = NULL, *out, *r;
	int64_t last = after;
	size_t i, bytes = 0;

	if (after < 0 || wait < 0 || wait != wait) {
		http_reply_error(req, 400, "query: \"after\" and \"wait\" must not be negative");
		return;
	}
	if (wait > LONG_POLL_MAX_S)
		wait = LONG_POLL_MAX_S;
	node_seen(c, req->node);
	core_acked(c, req->node, (int64_t)after);
	store_rows(c->db, &rows, "SELECT seq, body FROM messages WHERE node = ? AND seq > ? ORDER BY seq LIMIT 100",
		   "ii", req->node, (int64_t)after);
	if (json_array_size(rows) == 0 && wait > 0 && !req->resumed) {
		json_decref(rows);
		http_suspend(c, req, req->node, core_now() + wait);
		return;
	}
	out = json_array();
	json_array_foreach(rows, i, r) {
		const char *body = json_string_value(json_object_get(r, "body"));
		json_t *msg;
		/* Bounded in bytes too (start messages may carry a state): the rest comes with the next poll. */
		bytes += body ? strlen(body) : 0;
		if (i > 0 && bytes > MESSAGES_REPLY_MAX)
			break;
		msg = json_loads(body ? body : "", 0, NULL);
		last = json_integer_value(json_object_get(r, "seq"));
		if (msg) {
			json_object_set_new(msg, "seq", json_integer(last));
			json_array_append_new(out, msg);
		}
	}
	json_decref(rows);
	http_reply_json(req, 200, json_pack("{sIso}", "seq", (json_int_t)last, "messages", out));
}

static void agent_heartbeat(struct core *c, struct http_req *req)
{
	json_t *running = json_object_get(req->json, "running");
	json_t *load = json_object_get(req->json, "load");

	if ((running && !json_is_array(running)) || (load && !json_is_number(load)) ||
	    json_number_value(load) < 0) {
		http_reply_error(req, 400, "body: \"running\" must be an array and \"load\" a number, at least 0");
		return;
	}
	if (json_array_size(running) > RUNNING_MAX) {
		http_reply_error(req, 413, "body: \"running\" lists at most %d runs", RUNNING_MAX);
		return;
	}
	node_seen(c, req->node);
	if (load)
		store_run(c->db, NULL, "UPDATE nodes SET load = ? WHERE id = ?", "di", json_number_value(load), req->node);
	if (running)
		sched_reconcile(c, req->node, running, 0);
	http_reply_json(req, 200, json_pack("{sb}", "ok", 1));
}

static void agent_events(struct core *c, struct http_req *req)
{
	char err[300] = "";
	unsigned status;

	json_t *batches = json_object_get(req->json, "batches"), *results = NULL;

	node_seen(c, req->node);
	if (batches) {
		status = sched_events_batches(c, req->node, batches, &results, err, sizeof(err));
		if (status == 200)
			http_reply_json(req, 200, json_pack("{sbso}", "ok", 1, "results", results));
		else
			http_reply_error(req, status, "%s", err);
		return;
	}
	status = sched_events(c, req->node, req->json, err, sizeof(err));
	if (status == 200)
		http_reply_json(req, 200, json_pack("{sb}", "ok", 1));
	else
		http_reply_error(req, status, "%s", err);
}


/* ---- moving work: stop, continue, migrate, fork, drain ---- */

static int node_by_name(struct core *c, const char *name, int64_t *id)
{
	return parse_id(name, 'n', id) == 0 &&
	       store_int(c->db, 0, "SELECT COUNT(*) FROM nodes WHERE id = ? AND state = 'up'", "i", *id) == 1 ? 0 : -1;
}

/* Reads {"node": "n-2"} / {"isa": "s390x"} (both optional) from the body. */
static int placement_wish(struct core *c, struct http_req *req, int64_t *node, const char **isa)
{
	const char *n = json_string_value(json_object_get(req->json, "node"));
	json_t *i = json_object_get(req->json, "isa");

	*node = 0;
	*isa = NULL;
	if (json_object_get(req->json, "node") && (!n || node_by_name(c, n, node) < 0)) {
		http_reply_error(req, 400, "node '%.40s' is not a node that is up", n ? n : "?");
		return -1;
	}
	if (i && (!json_is_string(i) || !valid_word(json_string_value(i), 16))) {
		http_reply_error(req, 400, "body: \"isa\" must be an ISA name");
		return -1;
	}
	*isa = json_string_value(i);
	if (*node && *isa) {
		http_reply_error(req, 400, "body: give \"node\" or \"isa\", not both");
		return -1;
	}
	if (*isa && !store_int(c->db, 0, "SELECT COUNT(*) FROM nodes WHERE isa = ? AND state = 'up'", "s", *isa)) {
		http_reply_error(req, 409, "no node of ISA '%s' is up", *isa);
		return -1;
	}
	return 0;
}

static void send_stop(struct core *c, json_t *inst, const char *iid, const char *mode)
{
	json_t *msg = json_pack("{sssssIss}", "type", "stop", "instance", iid, "generation",
				json_integer_value(json_object_get(inst, "generation")), "mode", mode);

	sched_send(c, json_integer_value(json_object_get(inst, "node")), msg);
	json_decref(msg);
}

static int is_state(json_t *inst, const char *a, const char *b)
{
	const char *st = json_string_value(json_object_get(inst, "state"));

	return !strcmp(st, a) || (b && !strcmp(st, b));
}

static void stop_instance(struct core *c, struct http_req *req)
{
	int64_t id;
	json_t *inst = load_instance(c, req, &id);

	if (!inst)
		return;
	if (is_state(inst, "starting", "running")) {
		store_run(c->db, NULL, "UPDATE instances SET hold = 1, want_node = NULL, want_isa = NULL WHERE id = ?",
			  "i", id);
		core_history(c, id, "stop requested", json_integer_value(json_object_get(inst, "node")),
			     json_string_value(json_object_get(inst, "isa")), "checkpoint and hold");
		send_stop(c, inst, req->args[0], "checkpoint");
		http_reply_json(req, 202, json_pack("{ssss}", "instance", req->args[0], "state", "stopping"));
	} else if (is_state(inst, "pending", NULL)) {
		store_run(c->db, NULL, "UPDATE instances SET hold = 1, state = 'checkpointed' WHERE id = ?", "i", id);
		core_history(c, id, "stopped", 0, NULL, "held before it started");
		http_reply_json(req, 200, json_pack("{ssss}", "instance", req->args[0], "state", "checkpointed"));
	} else {
		http_reply_error(req, 409, "instance '%s' is %s: only a running or pending instance can be stopped",
				 req->args[0], json_string_value(json_object_get(inst, "state")));
	}
	json_decref(inst);
}

static void continue_instance(struct core *c, struct http_req *req)
{
	int64_t id, node;
	const char *isa;
	json_t *inst = load_instance(c, req, &id);
	char detail[96];

	if (!inst)
		return;
	if (placement_wish(c, req, &node, &isa) == 0) {
		if (!is_state(inst, "checkpointed", NULL)) {
			http_reply_error(req, 409, "instance '%s' is %s: only a stopped (checkpointed) instance can be "
					 "continued", req->args[0], json_string_value(json_object_get(inst, "state")));
		} else {
			store_run(c->db, NULL, "UPDATE instances SET state = 'pending', hold = 0, want_node = ?, "
				  "want_isa = ? WHERE id = ?", "isi", node ? node : (int64_t)0, isa, id);
			store_run(c->db, NULL, "UPDATE instances SET want_node = NULL WHERE id = ? AND want_node = 0", "i", id);
			snprintf(detail, sizeof(detail), "%s%s", node || isa ? "on " : "anywhere",
				 node ? json_string_value(json_object_get(req->json, "node")) : isa ? isa : "");
			core_history(c, id, "continue requested", 0, NULL, detail);
			sched_pass(c);
			http_reply_json(req, 202, json_pack("{ssss}", "instance", req->args[0], "state", "pending"));
		}
	}
	json_decref(inst);
}

static void migrate_instance(struct core *c, struct http_req *req)
{
	int64_t id, node;
	const char *isa;
	json_t *inst = load_instance(c, req, &id);
	char detail[96];

	if (!inst)
		return;
	if (placement_wish(c, req, &node, &isa) < 0)
		goto out;
	if (!node && !isa) {
		http_reply_error(req, 400, "body: \"node\" or \"isa\" says where to migrate to");
		goto out;
	}
	if (node && node == json_integer_value(json_object_get(inst, "node"))) {
		http_reply_error(req, 409, "instance '%s' already runs on %s", req->args[0],
				 json_string_value(json_object_get(req->json, "node")));
		goto out;
	}
	snprintf(detail, sizeof(detail), "to %s", node ? json_string_value(json_object_get(req->json, "node")) : isa);
	if (is_state(inst, "starting", "running")) {
		store_run(c->db, NULL, "UPDATE instances SET hold = 0, want_node = ?, want_isa = ?, "
			  "stop_requested = ? WHERE id = ?", "isdi", node, isa, core_now(), id);
		store_run(c->db, NULL, "UPDATE instances SET want_node = NULL WHERE id = ? AND want_node = 0", "i", id);
		core_history(c, id, "migrate requested", json_integer_value(json_object_get(inst, "node")),
			     json_string_value(json_object_get(inst, "isa")), detail);
		send_stop(c, inst, req->args[0], "checkpoint");
	} else if (is_state(inst, "checkpointed", "pending")) {
		store_run(c->db, NULL, "UPDATE instances SET state = 'pending', hold = 0, want_node = ?, want_isa = ? "
			  "WHERE id = ?", "isi", node, isa, id);
		store_run(c->db, NULL, "UPDATE instances SET want_node = NULL WHERE id = ? AND want_node = 0", "i", id);
		core_history(c, id, "migrate requested", 0, NULL, detail);
		sched_pass(c);
	} else {
		http_reply_error(req, 409, "instance '%s' is %s and cannot move", req->args[0],
				 json_string_value(json_object_get(inst, "state")));
		goto out;
	}
	http_reply_json(req, 202, json_pack("{ssss}", "instance", req->args[0], "state", "migrating"));
out:
	json_decref(inst);
}

static void fork_instance(struct core *c, struct http_req *req)
{
	json_t *countv = json_object_get(req->json, "count"), *ids = NULL;
	int64_t id, first, n;
	json_t *inst = load_instance(c, req, &id);
	char detail[64];

	if (!inst)
		return;
	n = json_integer_value(countv);
	if (!json_is_integer(countv) || n < 1 || n > 1000) {
		http_reply_error(req, 400, "body: \"count\" must be an integer from 1 to 1000");
		goto out;
	}
	if (is_state(inst, "cancelled", "failed")) {
		http_reply_error(req, 409, "instance '%s' is %s: nothing to fork", req->args[0],
				 json_string_value(json_object_get(inst, "state")));
		goto out;
	}
	/* Forks continue the latest checkpoint (or the initial state) with fork indices after the job's last. */
	first = store_int(c->db, 0, "SELECT MAX(fork_index) FROM instances WHERE job = ? AND object = ?", "is",
			  json_integer_value(json_object_get(inst, "job")), json_string_value(json_object_get(inst, "object"))) + 1;
	ids = json_array();
	if (store_begin(c->db) < 0) {
		http_reply_error(req, 500, "%s", err_msg());
		goto out;
	}
	snprintf(detail, sizeof(detail), "forked from %s", req->args[0]);
	for (int64_t k = 0; k < n; k++) {
		int64_t nid = 0;
		char name[32];
		store_run(c->db, &nid, "INSERT INTO instances(job, object, idx, fork_index, state, state_digest, created) "
			  "VALUES(?, ?, (SELECT MAX(idx) + 1 FROM instances WHERE job = ?), ?, 'pending', ?, ?)", "isiisd",
			  json_integer_value(json_object_get(inst, "job")), json_string_value(json_object_get(inst, "object")),
			  json_integer_value(json_object_get(inst, "job")), first + k,
			  json_string_value(json_object_get(inst, "state_digest")), core_now());
		core_history(c, nid, "forked", 0, NULL, detail);
		snprintf(name, sizeof(name), "i-%lld", (long long)nid);
		json_array_append_new(ids, json_string(name));
	}
	store_run(c->db, NULL, "UPDATE jobs SET state = 'running' WHERE id = ? AND state IN ('done', 'failed')", "i",
		  json_integer_value(json_object_get(inst, "job")));
	if (store_commit(c->db) < 0) {
		store_rollback(c->db);
		http_reply_error(req, 500, "%s", err_msg());
		goto out;
	}
	{
		char *list = json_dumps(ids, JSON_COMPACT);
		core_history(c, id, "forked", 0, NULL, list);
		free(list);
	}
	sched_pass(c);
	http_reply_json(req, 201, json_pack("{sssO}", "instance", req->args[0], "forks", ids));
out:
	json_decref(ids);
	json_decref(inst);
}

static void drain_node(struct core *c, struct http_req *req, int drain)
{
	json_t *insts = NULL, *in;
	int64_t id;
	size_t i;

	if (parse_id(req->args[0], 'n', &id) < 0 ||
	    !store_int(c->db, 0, "SELECT COUNT(*) FROM nodes WHERE id = ?", "i", id)) {
		http_reply_error(req, 404, "node '%.40s' not found", req->args[0]);
		return;
	}
	if (store_int(c->db, 0, "SELECT COUNT(*) FROM nodes WHERE id = ? AND state = 'lost'", "i", id)) {
		http_reply_error(req, 409, "node '%s' is lost: it can be drained when it is back", req->args[0]);
		return;
	}
	store_run(c->db, NULL, "UPDATE nodes SET state = ? WHERE id = ? AND state != 'lost'", "si",
		  drain ? "drained" : "up", id);
	if (drain) {
		/* Its work moves: each instance checkpoints and continues elsewhere. */
		store_rows(c->db, &insts, "SELECT * FROM instances WHERE node = ? AND state IN ('starting', 'running')",
			   "i", id);
		json_array_foreach(insts, i, in) {
			char iid[32];
			int64_t inst = json_integer_value(json_object_get(in, "id"));
			snprintf(iid, sizeof(iid), "i-%lld", (long long)inst);
			store_run(c->db, NULL, "UPDATE instances SET hold = 0, stop_requested = ? WHERE id = ?", "di",
				  core_now(), inst);
			core_history(c, inst, "migrate requested", id, json_string_value(json_object_get(in, "isa")),
				     "node drained");
			send_stop(c, in, iid, "checkpoint");
		}
		log_info("node %s drained: %zu instances move", req->args[0], json_array_size(insts));
	} else {
		c->build_wanted = 1; /* in case nothing was built for it while it was drained */
		pthread_cond_signal(&c->build_cond);
		sched_pass(c);
	}
	http_reply_json(req, 200, json_pack("{ssss}", "node", req->args[0], "state", drain ? "drained" : "up"));
	json_decref(insts);
}

static void post_drain(struct core *c, struct http_req *req)
{
	drain_node(c, req, 1);
}

static void post_undrain(struct core *c, struct http_req *req)
{
	drain_node(c, req, 0);
}

/* ---- blobs ---- */

static void get_blob(struct core *c, struct http_req *req)
{
	char *path;

	if (!digest_is_valid(req->args[0]) || !cas_has(c->blobs, req->args[0])) {
		http_reply_error(req, 404, "blob '%.70s' not found", req->args[0]);
		return;
	}
	path = cas_path(c->blobs, req->args[0]);
	http_reply_file(req, path, "application/octet-stream");
	free(path);
}

static void put_blob(struct core *c, struct http_req *req)
{
	digest_hex d;

	if (!digest_is_valid(req->args[0])) {
		http_reply_error(req, 400, "'%.70s' is not a sha256 digest", req->args[0]);
		return;
	}
	if (strcmp(req->file_digest, req->args[0]) != 0) {
		http_reply_error(req, 400, "the body's sha256 is %s, not %s", req->file_digest, req->args[0]);
		return;
	}
	if (cas_has(c->blobs, req->args[0])) {
		http_reply_json(req, 200, json_pack("{ss}", "digest", req->args[0]));
		return;
	}
	if (cas_adopt(c->blobs, &d, req->file) < 0) {
		http_reply_error(req, 500, "%s", err_msg());
		return;
	}
	http_reply_json(req, 201, json_pack("{ss}", "digest", d.hex));
}

const struct http_route api_routes[] = {
	{ "POST", "/v1/jobs", AUTH_OPERATOR, BODY_FILE, HTTP_BUNDLE_MAX, post_job },
	{ "GET", "/v1/jobs", AUTH_OPERATOR, BODY_NONE, 0, list_jobs },
	{ "GET", "/v1/jobs/*", AUTH_OPERATOR, BODY_NONE, 0, get_job },
	{ "POST", "/v1/jobs/*/cancel", AUTH_OPERATOR, BODY_NONE, 0, cancel_job },
	{ "GET", "/v1/instances/*", AUTH_OPERATOR, BODY_NONE, 0, get_instance },
	{ "GET", "/v1/instances/*/logs", AUTH_OPERATOR, BODY_NONE, 0, get_logs },
	{ "GET", "/v1/instances/*/result", AUTH_OPERATOR, BODY_NONE, 0, get_result },
	{ "POST", "/v1/instances/*/stop", AUTH_OPERATOR, BODY_NONE, 0, stop_instance },
	{ "POST", "/v1/instances/*/continue", AUTH_OPERATOR, BODY_JSON, HTTP_JSON_MAX, continue_instance },
	{ "POST", "/v1/instances/*/migrate", AUTH_OPERATOR, BODY_JSON, HTTP_JSON_MAX, migrate_instance },
	{ "POST", "/v1/instances/*/fork", AUTH_OPERATOR, BODY_JSON, HTTP_JSON_MAX, fork_instance },
	{ "GET", "/v1/nodes", AUTH_OPERATOR, BODY_NONE, 0, list_nodes },
	{ "POST", "/v1/nodes/*/drain", AUTH_OPERATOR, BODY_NONE, 0, post_drain },
	{ "POST", "/v1/nodes/*/undrain", AUTH_OPERATOR, BODY_NONE, 0, post_undrain },
	{ "POST", "/v1/agent/join", AUTH_JOIN_OR_NODE, BODY_JSON, HTTP_JSON_MAX, agent_join },
	{ "GET", "/v1/agent/messages", AUTH_NODE, BODY_NONE, 0, agent_messages },
	{ "POST", "/v1/agent/heartbeat", AUTH_NODE, BODY_JSON, HTTP_JSON_MAX, agent_heartbeat },
	{ "POST", "/v1/agent/events", AUTH_NODE, BODY_JSON, HTTP_JSON_MAX, agent_events },
	{ "GET", "/v1/blobs/*", AUTH_NODE_OR_OPERATOR, BODY_NONE, 0, get_blob },
	{ "PUT", "/v1/blobs/*", AUTH_NODE_OR_OPERATOR, BODY_FILE, HTTP_BLOB_MAX, put_blob },
	{ NULL, NULL, AUTH_NONE, BODY_NONE, 0, NULL },
};
