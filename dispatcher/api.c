/* api.c - the handlers of the /v1 API; each runs with the core lock held. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "jobs.h"
#include "log.h"
#include "scheduler.h"

#define LONG_POLL_MAX_S 60
#define MESSAGES_PER_POLL 100

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
	json_object_del(row, "want_isa");
	name_field(row, "want_node", 'n');
	name_field(row, "id", 'i');
	name_field(row, "job", 'j');
	name_field(row, "node", 'n');
	if (with_history && store_rows(c->db, &hist, "SELECT time, event, node, isa, detail FROM history "
				       "WHERE instance = ? ORDER BY id", "i", id) == 0) {
		json_array_foreach(hist, i, h)
			name_field(h, "node", 'n');
		json_object_set_new(row, "history", hist);
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
	json_t *out = NULL;
	int r = jobs_submit(c, req->file, &out);

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

static void get_logs(struct core *c, struct http_req *req)
{
	struct buf b = BUF_INIT(2u << 20);
	char name[64];
	int64_t id;
	json_t *row = load_instance(c, req, &id);
	char *path;

	if (!row)
		return;
	json_decref(row);
	snprintf(name, sizeof(name), "i-%lld.log", (long long)id);
	path = fs_join(c->logs_dir, name);
	if (path)
		fs_read_file(&b, path, 2u << 20);
	http_reply_text(req, 200, buf_str(&b), b.len);
	buf_release(&b);
	free(path);
}

static void get_result(struct core *c, struct http_req *req)
{
	int64_t id;
	json_t *row = load_instance(c, req, &id), *state = NULL;
	const char *digest;

	if (!row)
		return;
	digest = json_string_value(json_object_get(row, "result_digest"));
	if (strcmp(json_string_value(json_object_get(row, "state")), "done") != 0) {
		http_reply_error(req, 409, "instance '%s' has not finished (state %s)", req->args[0],
				 json_string_value(json_object_get(row, "state")));
		json_decref(row);
		return;
	}
	/* The bundle's state.json, read through the safe extractor; an object may finish without one. */
	if (digest) {
		char *dir = NULL, *blob = cas_path(c->blobs, digest), *file = NULL;
		if (blob && fs_mkdtemp(&dir, cas_tmpdir(c->blobs), "result") == 0 &&
		    bundle_extract_file(blob, dir, 0, NULL) == 0 && (file = fs_join(dir, "state.json")))
			state = json_load_file(file, 0, NULL);
		if (dir)
			fs_rm_rf(dir);
		free(dir);
		free(blob);
		free(file);
	}
	http_reply_json(req, 200, json_pack("{sssosO}", "instance", req->args[0], "digest",
					    digest ? json_string(digest) : json_null(), "state", state ? state : json_null()));
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
	levels_text = json_dumps(levels, JSON_COMPACT);
	if (req->who == AUTH_NODE) {
		/* A known node joining again (agent restart): same id, same token. */
		store_run(c->db, NULL, "UPDATE nodes SET name = ?, isa = ?, levels = ?, cores = ?, memory = ?, load = ?, "
			  "state = CASE state WHEN 'drained' THEN 'drained' ELSE 'up' END, last_seen = ? WHERE id = ?",
			  "sssiiddi", name, isa, levels_text, json_integer_value(cores), json_integer_value(mem), load,
			  core_now(), id);
		snprintf(id_name, sizeof(id_name), "n-%lld", (long long)id);
		sched_reconcile(c, id, running, 1);
		http_reply_json(req, 200, json_pack("{sssnsfsf}", "node", id_name, "token", "heartbeat_s",
						    c->heartbeat_s, "ttl_s", c->ttl_s));
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
		http_reply_json(req, 200, json_pack("{sssssfsf}", "node", id_name, "token", token, "heartbeat_s",
						    c->heartbeat_s, "ttl_s", c->ttl_s));
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
	store_run(c->db, NULL, "UPDATE nodes SET last_seen = ?, state = CASE state WHEN 'lost' THEN 'up' ELSE state "
		  "END WHERE id = ?", "di", core_now(), node);
}

static void agent_messages(struct core *c, struct http_req *req)
{
	const char *after_s = http_query(req, "after"), *wait_s = http_query(req, "wait");
	long long after = after_s ? strtoll(after_s, NULL, 10) : 0;
	double wait = wait_s ? strtod(wait_s, NULL) : 0;
	json_t *rows = NULL, *out, *r;
	int64_t last = after;
	size_t i;

	if (after < 0 || wait < 0 || wait != wait) {
		http_reply_error(req, 400, "query: \"after\" and \"wait\" must not be negative");
		return;
	}
	if (wait > LONG_POLL_MAX_S)
		wait = LONG_POLL_MAX_S;
	node_seen(c, req->node);
	store_run(c->db, NULL, "DELETE FROM messages WHERE node = ? AND seq <= ?", "ii", req->node, (int64_t)after);
	store_rows(c->db, &rows, "SELECT seq, body FROM messages WHERE node = ? AND seq > ? ORDER BY seq LIMIT 100",
		   "ii", req->node, (int64_t)after);
	if (json_array_size(rows) == 0 && wait > 0 && !req->resumed) {
		json_decref(rows);
		http_suspend(c, req, req->node, core_now() + wait);
		return;
	}
	out = json_array();
	json_array_foreach(rows, i, r) {
		json_t *msg = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
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

	if ((running && !json_is_array(running)) || (load && !json_is_number(load))) {
		http_reply_error(req, 400, "body: \"running\" must be an array and \"load\" a number");
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

	node_seen(c, req->node);
	status = sched_events(c, req->node, req->json, err, sizeof(err));
	if (status == 200)
		http_reply_json(req, 200, json_pack("{sb}", "ok", 1));
	else
		http_reply_error(req, status, "%s", err);
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
	{ "GET", "/v1/nodes", AUTH_OPERATOR, BODY_NONE, 0, list_nodes },
	{ "POST", "/v1/agent/join", AUTH_JOIN_OR_NODE, BODY_JSON, HTTP_JSON_MAX, agent_join },
	{ "GET", "/v1/agent/messages", AUTH_NODE, BODY_NONE, 0, agent_messages },
	{ "POST", "/v1/agent/heartbeat", AUTH_NODE, BODY_JSON, HTTP_JSON_MAX, agent_heartbeat },
	{ "POST", "/v1/agent/events", AUTH_NODE, BODY_JSON, HTTP_JSON_MAX, agent_events },
	{ "GET", "/v1/blobs/*", AUTH_NODE_OR_OPERATOR, BODY_NONE, 0, get_blob },
	{ "PUT", "/v1/blobs/*", AUTH_NODE_OR_OPERATOR, BODY_FILE, HTTP_BLOB_MAX, put_blob },
	{ NULL, NULL, AUTH_NONE, BODY_NONE, 0, NULL },
};
