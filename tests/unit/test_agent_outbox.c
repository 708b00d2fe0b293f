/* test_agent_outbox.c - queued events are bounded, coalesced, and kept while the dispatcher is away. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "error.h"
#include "fsutil.h"
#include "outbox.h"
#include "protocol.h"
#include "store.h"

struct fixture {
	char *dir;
	store *st;
	outbox *ob;
};

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->dir, tmp && *tmp ? tmp : "/tmp", "outbox"), 0);
	assert_int_equal(store_open(&f->st, f->dir, 1000), 0);
	assert_int_equal(outbox_new(&f->ob, f->st), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	outbox_free(f->ob);
	store_free(f->st);
	fs_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void test_outbox__progress_is_coalesced(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(outbox_add(f->ob, "i-1", 1, proto_event_running(), NULL), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(outbox_add(f->ob, "i-1", 1, proto_event_progress(i / 100.0), NULL), 0);
	assert_int_equal(outbox_len(f->ob), 2);
	/* Another run's progress is its own. */
	assert_int_equal(outbox_add(f->ob, "i-1", 2, proto_event_progress(0.5), NULL), 0);
	assert_int_equal(outbox_add(f->ob, "i-2", 1, proto_event_progress(0.5), NULL), 0);
	assert_int_equal(outbox_len(f->ob), 4);
	outbox_forget(f->ob, "i-1", 1);
	assert_int_equal(outbox_len(f->ob), 2);
	assert_int_equal(outbox_add(f->ob, "i-1", 1, NULL, NULL), ERR_NOMEM);
}

static void test_outbox__bounded_but_exits_stay(void **state)
{
	struct fixture *f = *state;
	char text[1000];

	memset(text, 'x', sizeof(text));
	assert_int_equal(outbox_add(f->ob, "i-1", 1, proto_event_exit(0, 0, NULL, NULL), NULL), 0);
	for (int i = 0; i < OUTBOX_MAX_EVENTS + 100; i++)
		assert_int_equal(outbox_add(f->ob, "i-2", 1, proto_event_log(text, sizeof(text)), NULL), 0);
	assert_true(outbox_len(f->ob) <= OUTBOX_MAX_EVENTS);
	assert_true(outbox_len(f->ob) * sizeof(text) <= OUTBOX_MAX_BYTES + sizeof(text));
	/* Exits are never dropped, even beyond the bound. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(outbox_add(f->ob, "i-3", (uint64_t)i, proto_event_exit(1, 0, NULL, "exit 1"), NULL),
				 0);
	outbox_forget(f->ob, "i-2", 1);
	assert_int_equal(outbox_len(f->ob), 11);
}

/* The dispatcher is down: nothing is lost, the state blob stays pinned. */
static void test_outbox__kept_while_unreachable(void **state)
{
	struct fixture *f = *state;
	char *tmp = fs_join(store_tmpdir(f->st), "state"), *path;
	digest_hex d;
	conn *c = NULL;

	assert_int_equal(fs_write_atomic(tmp, "a state bundle", 14, 0644), 0);
	assert_int_equal(store_adopt(f->st, &d, tmp, NULL), 0);
	path = store_path(f->st, d.hex);
	assert_int_equal(outbox_add(f->ob, "i-1", 1, proto_event_checkpoint(d.hex), d.hex), 0);
	assert_int_equal(outbox_add(f->ob, "i-1", 1, proto_event_exit(85, 0, d.hex, NULL), d.hex), 0);
	assert_int_equal(conn_new(&c, "http://127.0.0.1:1", NULL), 0);
	assert_int_equal(conn_set_token(c, "0123456789abcdef"), 0);
	assert_int_equal(outbox_flush(f->ob, c, NULL, NULL), ERR_NET);
	assert_non_null(strstr(err_msg(), "127.0.0.1"));
	assert_int_equal(outbox_len(f->ob), 2);
	/* Pinned: a flood of other blobs does not evict it. */
	for (int i = 0; i < 20; i++) {
		char data[200];
		memset(data, 'a' + i, sizeof(data));
		assert_int_equal(fs_write_atomic(tmp, data, sizeof(data), 0644), 0);
		assert_int_equal(store_adopt(f->st, NULL, tmp, NULL), 0);
	}
	assert_true(fs_exists(path));
	/* Sent or forgotten: unpinned, and the least recently used blob goes first. */
	outbox_forget(f->ob, "i-1", 1);
	for (int i = 0; i < 2; i++) {
		char data[200];
		memset(data, 'A' + i, sizeof(data));
		assert_int_equal(fs_write_atomic(tmp, data, sizeof(data), 0644), 0);
		assert_int_equal(store_adopt(f->st, NULL, tmp, NULL), 0);
	}
	assert_false(fs_exists(path));
	conn_free(c);
	free(path);
	free(tmp);
}

/* Stopped while the dispatcher is away: the queue is saved and restored, blobs pinned again. */
static void test_outbox__saved_and_restored(void **state)
{
	struct fixture *f = *state;
	char *tmp = fs_join(store_tmpdir(f->st), "state"), *saved = fs_join(f->dir, "outbox.json");
	outbox *again = NULL;
	digest_hex d;

	assert_int_equal(fs_write_atomic(tmp, "a state bundle", 14, 0644), 0);
	assert_int_equal(store_adopt(f->st, &d, tmp, NULL), 0);
	assert_int_equal(outbox_save(f->ob, saved, NULL, 0), 0); /* empty: no file */
	assert_false(fs_exists(saved));
	assert_int_equal(outbox_add(f->ob, "i-1", 4, proto_event_log("bye\n", 4), NULL), 0);
	assert_int_equal(outbox_add(f->ob, "i-1", 4, proto_event_exit(85, 0, d.hex, NULL), d.hex), 0);
	assert_int_equal(outbox_save(f->ob, saved, NULL, 1), 0);
	assert_true(fs_exists(saved));
	assert_int_equal(outbox_new(&again, f->st), 0);
	assert_int_equal(outbox_load(again, saved, NULL), 0);
	assert_true(fs_exists(saved)); /* until the next save */
	assert_int_equal(outbox_len(again), 2);
	assert_true(outbox_has_exit(again, "i-1", 4));
	assert_false(outbox_has_exit(again, "i-1", 3));
	outbox_free(again);
	/* A bundle a crash tore (the cache fsyncs nothing) goes with its event: the log line stays. */
	{
		char *blob = store_path(f->st, d.hex);
		chmod(blob, 0644);
		assert_int_equal(fs_write_file(blob, "a state bund", 12, 0644), 0);
		free(blob);
	}
	assert_int_equal(outbox_new(&again, f->st), 0);
	assert_int_equal(outbox_load(again, saved, NULL), 0);
	assert_int_equal(outbox_len(again), 1);
	assert_false(outbox_has_exit(again, "i-1", 4));
	assert_false(store_has(f->st, d.hex)); /* dropped from the cache, too */
	outbox_free(again);
	/* Damaged files restore nothing and break nothing. */
	{
		const char *bad = "[{\"instance\": \"../x\", \"generation\": 1, \"event\": {\"kind\": \"exit\"}, "
				  "\"blob\": \"\"}, 3, {}]";
		assert_int_equal(fs_write_atomic(saved, bad, strlen(bad), 0600), 0);
	}
	assert_int_equal(outbox_new(&again, f->st), 0);
	assert_int_equal(outbox_load(again, saved, NULL), 0);
	assert_int_equal(outbox_len(again), 0);
	assert_int_equal(fs_write_atomic(saved, "not json", 8, 0600), 0);
	assert_int_equal(outbox_load(again, saved, NULL), 0);
	assert_int_equal(outbox_len(again), 0);
	unlink(saved);
	assert_int_equal(outbox_load(again, saved, NULL), 0); /* missing: fine */
	outbox_free(again);
	free(tmp);
	free(saved);
}

/* The agent's note on its runs travels with the events; checkpoints and exits ask for a save at once. */
static void test_outbox__saves_runs_and_says_when_to_save(void **state)
{
	struct fixture *f = *state;
	char *saved = fs_join(f->dir, "outbox.json");
	json_t *runs = json_pack("{s{sI}}", "i-1-4", "progress", (json_int_t)42), *back = NULL, *exits;
	outbox *again = NULL;

	assert_int_equal(outbox_changes(f->ob), 0);
	assert_int_equal(outbox_add(f->ob, "i-1", 4, proto_event_progress(0.5), NULL), 0);
	assert_int_equal(outbox_changes(f->ob), 0);
	assert_int_equal(outbox_add(f->ob, "i-1", 4, proto_event_exit(0, 0, NULL, NULL), NULL), 0);
	assert_int_equal(outbox_changes(f->ob), OUTBOX_URGENT);
	/* An empty queue with runs to remember still makes a file. */
	outbox_forget(f->ob, "i-1", 4);
	assert_int_equal(outbox_save(f->ob, saved, runs, 0), 0);
	assert_int_equal(outbox_changes(f->ob), 0);
	assert_true(fs_exists(saved));
	assert_int_equal(outbox_add(f->ob, "i-2", 1, proto_event_exit(3, 0, NULL, "exit 3"), NULL), 0);
	assert_int_equal(outbox_save(f->ob, saved, runs, 0), 0);
	assert_int_equal(outbox_new(&again, f->st), 0);
	assert_int_equal(outbox_load(again, saved, &back), 0);
	assert_true(json_equal(runs, back));
	assert_int_equal(outbox_changes(again), 0);
	exits = outbox_exits(again);
	assert_int_equal(json_array_size(exits), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(exits, 0), "instance")), "i-2");
	/* Version 1 files (an array of events) still load. */
	{
		const char *v1 = "[{\"instance\": \"i-3\", \"generation\": 2, \"event\": {\"kind\": \"exit\", "
				 "\"code\": 0}, \"blob\": \"\"}]";
		json_decref(back);
		assert_int_equal(fs_write_atomic(saved, v1, strlen(v1), 0600), 0);
		assert_int_equal(outbox_load(again, saved, &back), 0);
		assert_null(back);
		assert_true(outbox_has_exit(again, "i-3", 2));
	}
	json_decref(exits);
	json_decref(runs);
	outbox_free(again);
	free(saved);
}

/*
 * A dispatcher's events endpoint on loopback (libmicrohttpd): it records
 * each request's body and calls instance i-2 stale (409), the others fine.
 */
struct events_server {
	struct MHD_Daemon *d;
	pthread_mutex_t lock;
	json_t *requests; /* bodies, in order */
	size_t largest;	  /* bytes of the largest body */
	int old;	  /* answers as a dispatcher that predates batches */
	char url[64];
};

struct upload {
	char data[2 << 20];
	size_t len;
};

static json_t *answer_batch(const json_t *b, unsigned *status)
{
	const char *iid = json_string_value(json_object_get(b, "instance"));

	*status = iid && !strcmp(iid, "i-2") ? 409 : 200;
	return *status == 200 ? json_pack("{si}", "status", 200)
			      : json_pack("{siss}", "status", 409, "error", "stale generation 1 of 'i-2' (current: 2)");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
				  const char *version, const char *data, size_t *size, void **ctx)
{
	struct events_server *srv = cls;
	struct upload *up = *ctx;
	struct MHD_Response *resp;
	json_t *body, *reply, *b;
	unsigned status = 200;
	enum MHD_Result r;
	char *text;
	size_t i;

	(void)url, (void)method, (void)version;
	if (!up) {
		*ctx = calloc(1, sizeof(struct upload));
		return *ctx ? MHD_YES : MHD_NO;
	}
	if (*size) {
		size_t n = *size < sizeof(up->data) - 1 - up->len ? *size : sizeof(up->data) - 1 - up->len;
		memcpy(up->data + up->len, data, n);
		up->len += n;
		*size = 0;
		return MHD_YES;
	}
	body = json_loadb(up->data, up->len, 0, NULL);
	if (json_object_get(body, "batches") && srv->old) {
		reply = json_pack("{ss}", "error", "body: needs \"instance\" (i-N), \"generation\" and \"events\"");
		status = 400;
	} else if (json_object_get(body, "batches")) {
		reply = json_pack("{sbs[]}", "ok", 1, "results");
		json_array_foreach(json_object_get(body, "batches"), i, b)
			json_array_append_new(json_object_get(reply, "results"), answer_batch(b, &status));
		status = 200;
	} else {
		json_decref(answer_batch(body, &status));
		reply = status == 200 ? json_pack("{sb}", "ok", 1) : json_pack("{ss}", "error", "stale generation");
	}
	pthread_mutex_lock(&srv->lock);
	json_array_append_new(srv->requests, body ? body : json_null());
	if (up->len > srv->largest)
		srv->largest = up->len;
	pthread_mutex_unlock(&srv->lock);
	text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	r = MHD_queue_response(mc, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static void on_done(void *cls, struct MHD_Connection *mc, void **ctx, enum MHD_RequestTerminationCode code)
{
	(void)cls, (void)mc, (void)code;
	free(*ctx);
	*ctx = NULL;
}

static void server_start(struct events_server *srv)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	pthread_mutex_init(&srv->lock, NULL);
	srv->requests = json_array();
	srv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, srv,
				  MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
				  MHD_OPTION_END);
	assert_non_null(srv->d);
	info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%u", (unsigned)info->port);
}

static void server_stop(struct events_server *srv)
{
	MHD_stop_daemon(srv->d);
	json_decref(srv->requests);
	pthread_mutex_destroy(&srv->lock);
}

static int stale_calls;
static char stale_instance[PROTO_ID_MAX + 1];

static void on_stale(void *ud, const char *instance, uint64_t generation)
{
	(void)ud, (void)generation;
	stale_calls++;
	snprintf(stale_instance, sizeof(stale_instance), "%s", instance);
}

/* Queues what three runs report meanwhile: i-1 twice around i-2, and i-3. */
static void queue_three_runs(outbox *ob)
{
	assert_int_equal(outbox_add(ob, "i-1", 1, proto_event_running(), NULL), 0);
	assert_int_equal(outbox_add(ob, "i-2", 1, proto_event_running(), NULL), 0);
	assert_int_equal(outbox_add(ob, "i-2", 1, proto_event_exit(0, 0, NULL, NULL), NULL), 0);
	assert_int_equal(outbox_add(ob, "i-1", 1, proto_event_exit(0, 0, NULL, NULL), NULL), 0);
	assert_int_equal(outbox_add(ob, "i-3", 1, proto_event_progress(0.5), NULL), 0);
}

/* What several runs queued goes in one request, in order; a stale run's batch drops only its own events. */
static void test_outbox__runs_share_a_request(void **state)
{
	struct fixture *f = *state;
	struct events_server srv = { 0 };
	json_t *batches;
	conn *c = NULL;

	server_start(&srv);
	assert_int_equal(conn_new(&c, srv.url, NULL), 0);
	assert_int_equal(conn_set_token(c, "0123456789abcdef"), 0);
	outbox_set_batch_max(f->ob, 256);
	queue_three_runs(f->ob);
	stale_calls = 0;
	assert_int_equal(outbox_flush(f->ob, c, on_stale, NULL), 0);
	assert_int_equal(outbox_len(f->ob), 0);
	assert_int_equal(outbox_changes(f->ob), OUTBOX_SENT | OUTBOX_URGENT);
	assert_int_equal(stale_calls, 1);
	assert_string_equal(stale_instance, "i-2");
	assert_int_equal(json_array_size(srv.requests), 1);
	batches = json_object_get(json_array_get(srv.requests, 0), "batches");
	assert_int_equal(json_array_size(batches), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(batches, 0), "instance")), "i-1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(batches, 1), "instance")), "i-2");
	assert_int_equal(json_array_size(json_object_get(json_array_get(batches, 1), "events")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(batches, 2), "instance")), "i-1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(batches, 3), "instance")), "i-3");

	/* A dispatcher that did not offer batches gets one request per run, in the single form. */
	json_array_clear(srv.requests);
	outbox_set_batch_max(f->ob, 0);
	queue_three_runs(f->ob);
	stale_calls = 0;
	assert_int_equal(outbox_flush(f->ob, c, on_stale, NULL), 0);
	assert_int_equal(outbox_len(f->ob), 0);
	assert_int_equal(stale_calls, 1);
	assert_int_equal(json_array_size(srv.requests), 4);
	assert_null(json_object_get(json_array_get(srv.requests, 0), "batches"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(srv.requests, 3), "instance")), "i-3");
	conn_free(c);
	server_stop(&srv);
}

/*
 * Runs' events go in one request only while it stays within what the dispatcher takes (1 MiB): log text
 * is counted as JSON writes it (an ESC of coloured output is 6 bytes). A dispatcher that refuses the
 * batches form as a whole (older, or it found the request too large) loses nothing: the events go
 * again, one run per request.
 */
static void test_outbox__large_and_refused_requests_lose_nothing(void **state)
{
	struct fixture *f = *state;
	struct events_server srv = { 0 };
	static const char line[] = "\x1b[32mok\x1b[0m step done\n";
	char text[60000], iid[16];
	json_t *exits;
	conn *c = NULL;
	size_t n = 0;

	while (n + sizeof(line) < sizeof(text)) {
		memcpy(text + n, line, sizeof(line) - 1);
		n += sizeof(line) - 1;
	}
	text[n] = '\0';
	server_start(&srv);
	assert_int_equal(conn_new(&c, srv.url, NULL), 0);
	assert_int_equal(conn_set_token(c, "0123456789abcdef"), 0);
	conn_set_limits(c, 30, 1u << 20);
	outbox_set_batch_max(f->ob, 256);
	for (int i = 0; i < 20; i++) {
		snprintf(iid, sizeof(iid), "i-%d", 10 + i);
		assert_int_equal(outbox_add(f->ob, iid, 1, proto_event_log(text, n), NULL), 0);
		assert_int_equal(outbox_add(f->ob, iid, 1, proto_event_exit(0, 0, NULL, NULL), NULL), 0);
	}
	assert_int_equal(outbox_flush(f->ob, c, on_stale, NULL), 0);
	assert_int_equal(outbox_len(f->ob), 0);
	assert_true(json_array_size(srv.requests) > 1);
	assert_true(srv.largest <= 1u << 20);
	/* Every exit arrived. */
	n = 0;
	{
		size_t i, j, k;
		json_t *req, *b, *ev;
		json_array_foreach(srv.requests, i, req)
			json_array_foreach(json_object_get(req, "batches"), j, b)
				json_array_foreach(json_object_get(b, "events"), k, ev)
					n += !strcmp(json_string_value(json_object_get(ev, "kind")), "exit");
	}
	assert_int_equal(n, 20);

	/* An older dispatcher: 400 for the batches form; the events stay and go in the single form. */
	json_array_clear(srv.requests);
	srv.old = 1;
	queue_three_runs(f->ob);
	stale_calls = 0;
	assert_int_equal(outbox_flush(f->ob, c, on_stale, NULL), 0);
	assert_int_equal(outbox_len(f->ob), 0);
	assert_int_equal(json_array_size(srv.requests), 5); /* the refused one, then one per run */
	assert_non_null(json_object_get(json_array_get(srv.requests, 0), "batches"));
	assert_null(json_object_get(json_array_get(srv.requests, 1), "batches"));
	assert_int_equal(stale_calls, 1);
	exits = outbox_exits(f->ob);
	assert_int_equal(json_array_size(exits), 0);
	json_decref(exits);
	conn_free(c);
	server_stop(&srv);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_outbox__progress_is_coalesced),
		T(test_outbox__bounded_but_exits_stay),
		T(test_outbox__kept_while_unreachable),
		T(test_outbox__saved_and_restored),
		T(test_outbox__saves_runs_and_says_when_to_save),
		T(test_outbox__runs_share_a_request),
		T(test_outbox__large_and_refused_requests_lose_nothing),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
