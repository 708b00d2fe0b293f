/* conn.h - one HTTP connection to dispatchd: JSON requests, verified blob downloads, uploads. */
#ifndef DISPATCH_AGENT_CONN_H
#define DISPATCH_AGENT_CONN_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

/*
 * A conn is one libcurl easy handle, reused for every request so that the
 * connection (and TLS session) stays open between requests. A conn is used
 * by one thread at a time; the agent has three: one for the long poll in
 * the listener thread (listen.h), one for the events in the sender thread
 * (sender.h) and one for everything else. Every request carries
 * "Authorization: Bearer TOKEN"; redirects are not followed, so the token
 * never goes anywhere but the dispatcher's URL.
 *
 * Errors: ERR_NET when the dispatcher could not be reached or answered
 * 5xx (worth retrying later), ERR_AUTH for 401/403, ERR_NOTFOUND for 404,
 * ERR_CONFLICT for 409, ERR_INVALID for other 4xx, ERR_LIMIT when a
 * response is larger than allowed; the message quotes the request and the
 * dispatcher's "error".
 */
typedef struct conn conn;

/* url is the dispatcher's base URL ("http://127.0.0.1:7070"); ca_file may be NULL. *out is new. */
int conn_new(conn **out, const char *url, const char *ca_file);
void conn_free(conn *c);

/* Sets the bearer token (copied). Thread-safe. */
int conn_set_token(conn *c, const char *token);

/* Limits for JSON requests: whole-request timeout (default 60 s) and response size (default 1 MiB). */
void conn_set_limits(conn *c, unsigned timeout_s, size_t max_response);

/*
 * Makes transfers and conn_sleep() on this conn interruptible by
 * conn_interrupt() from another thread (for the listener).
 */
int conn_set_interruptible(conn *c);
/* Wakes the conn's thread: its current transfer fails (ERR_NET), and so do the following ones. Thread-safe.
 */
void conn_interrupt(conn *c);

/*
 * A JSON request: body (borrowed) may be NULL; *resp receives the parsed
 * response (new reference, or NULL when the response has no body). resp
 * may be NULL when the answer does not matter.
 */
int conn_request(conn *c, json_t **resp, const char *method, const char *path, json_t *body);

/* The same with a body already in JSON text (borrowed, may be NULL). */
int conn_request_text(conn *c, json_t **resp, const char *method, const char *path, const char *body);

/*
 * GET /v1/blobs/DIGEST into dest (created, mode 0600), at most max bytes,
 * hashing while writing: ERR_CORRUPT when the content does not match
 * digest. dest is removed on any failure.
 */
int conn_download(conn *c, const char *digest, const char *dest, uint64_t max);

/* PUT /v1/blobs/DIGEST with the content of path. */
int conn_upload(conn *c, const char *digest, const char *path);

/*
 * Starts the thread fn(arg) that owns c (the listener's, the sender's): c
 * is made interruptible (conn_interrupt() stops it), the thread gets a
 * small stack and blocks every signal (they are the main thread's, read
 * from its signalfd). what names it in the error.
 */
int conn_thread_start(conn *c, pthread_t *thread, void *(*fn)(void *), void *arg, const char *what);

/* Ends a conn_sleep() early; the next ones sleep as usual. Thread-safe. */
void conn_wakeup(conn *c);

/* Sleeps ms milliseconds, or until conn_interrupt() or conn_wakeup() (interruptible conns only). */
void conn_sleep(conn *c, unsigned ms);

/* Retry delays: 1 s doubling to 30 s, each with +-25 % jitter so that agents do not retry in step. */
struct conn_backoff {
	unsigned next_ms;
};
unsigned conn_backoff_next(struct conn_backoff *b);
void conn_backoff_reset(struct conn_backoff *b);

#endif
