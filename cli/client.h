/* client.h - the operator's side of the dispatchd HTTP API: libcurl, a bearer token, bounded JSON. */
#ifndef DISPATCH_CLI_CLIENT_H
#define DISPATCH_CLI_CLIENT_H

#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "digest.h"

#define CLIENT_JSON_MAX (64u << 20)    /* a JSON answer (a job of 100000 instances fits) */
#define CLIENT_ERROR_MAX (64u << 10)   /* the body of an error answer */
#define CLIENT_CONNECT_TIMEOUT_S 10L
#define CLIENT_STALL_TIMEOUT_S 60L     /* a transfer that moves nothing for this long fails */

/*
 * One connection to one dispatcher. The curl easy handle is kept across
 * requests, so they share the connection (HTTP keep-alive). Redirects are
 * not followed: the token is only ever sent to the configured URL.
 * Not thread-safe.
 */
typedef struct client client;

/*
 * Every request returns 0 or a negative code with a message that says
 * what went wrong where:
 *
 *   ERR_NET       cannot reach dispatcher at 'http://h:p': Connection refused
 *   ERR_AUTH      dispatcher answered 401: invalid token (token from DISPATCH_TOKEN)
 *   ERR_NOTFOUND  dispatcher answered 404: instance 'i-9' not found
 *   ERR_CONFLICT  409;  ERR_INVALID  400 and other 4xx;  ERR_LIMIT  413
 *                 or an answer past its size cap;  ERR_NET  5xx
 *   ERR_CORRUPT   the answer is not the JSON object it should be
 *
 * "dispatcher answered N: MESSAGE" carries the "error" of the answer's
 * JSON body, or the start of the body when it is not JSON.
 *
 * path is formatted with printf: "/v1/jobs/%s". Callers pass only
 * validated IDs and digests; a path with characters outside
 * [A-Za-z0-9/._~=&?-] is refused with ERR_INVALID.
 */

/* token_from (may be NULL) names where the token came from, for 401 messages. */
int client_new(client **out, const char *url, const char *token, const char *token_from);

/* config_load() with the flags (NULL: not given), then client_new(). */
int client_connect(client **out, const char *url_flag, const char *token_flag);

void client_free(client *c);

/* The dispatcher's URL (borrowed). */
const char *client_url(const client *c);

/* The HTTP status of the last answer, 0 when none came. */
long client_status(const client *c);

/* GET; the answer must be a JSON object. *out is a new reference. */
int client_get_json(json_t **out, client *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* POST with a JSON body (NULL: an empty body). *out is a new reference; body is borrowed. */
int client_post_json(json_t **out, client *c, const json_t *body, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* POST with the contents of file as the body. *out is a new reference. */
int client_post_file(json_t **out, client *c, const char *file, const char *content_type, const char *fmt,
		     ...) __attribute__((format(printf, 5, 6)));

/* GET a text answer, appended to out; out's cap bounds it (ERR_LIMIT). */
int client_get_text(struct buf *out, client *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * GET into the file dest (created with mode 0600, truncated), at most max
 * bytes, hashing on the way: *sha is the SHA-256 of what was written. On
 * error dest may hold part of the answer: the caller removes it.
 */
int client_download(digest_hex *sha, uint64_t *size, client *c, const char *dest, uint64_t max,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
