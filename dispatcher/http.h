/* http.h - the dispatcher's HTTP layer on libmicrohttpd: bodies, auth, routes, replies. */
#ifndef DISPATCH_HTTP_H
#define DISPATCH_HTTP_H

#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "core.h"

#define HTTP_JSON_MAX (1u << 20)
#define HTTP_BUNDLE_MAX (256ull << 20)
#define HTTP_BLOB_MAX (1ull << 30)

enum http_auth { AUTH_NONE, AUTH_OPERATOR, AUTH_JOIN, AUTH_NODE, AUTH_NODE_OR_OPERATOR, AUTH_JOIN_OR_NODE };
enum http_body { BODY_NONE, BODY_JSON, BODY_FILE };

struct http_req;
typedef void (*http_handler)(struct core *c, struct http_req *req);

struct http_route {
	const char *method;
	const char *pattern;   /* "/v1/jobs/ * /cancel": '*' matches one segment */
	enum http_auth auth;
	enum http_body body;
	uint64_t body_max;
	http_handler fn;
};

/* What a handler sees. */
struct http_req {
	const char *method;
	const char *url;
	const char *args[3];    /* the segments the pattern's '*' matched */
	enum http_auth who;     /* AUTH_OPERATOR, AUTH_JOIN or AUTH_NODE */
	int64_t node;           /* with AUTH_NODE */
	json_t *json;           /* BODY_JSON: the parsed body (borrowed) */
	const char *file;       /* BODY_FILE: the body, written to this file */
	uint64_t file_size;
	char file_digest[65];   /* its SHA-256 */
	void *conn;             /* the MHD connection */
	int replied;
	int resumed;            /* called again after http_suspend() */
	void *priv;             /* internal */
};

struct http_server;

/* Starts serving on addr ("host:port"). TLS when cert and key are given. */
int http_start(struct http_server **out, struct core *c, const char *addr, const struct http_route *routes,
	       const char *tls_cert, const char *tls_key);
void http_stop(struct http_server *s);

/* The port actually bound (useful with port 0). */
int http_port(struct http_server *s);

/* Replies; each steals or copies what it is given. */
void http_reply_json(struct http_req *req, unsigned status, json_t *body);   /* steals body */
void http_reply_error(struct http_req *req, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void http_reply_text(struct http_req *req, unsigned status, const char *text, size_t len);
void http_reply_file(struct http_req *req, const char *path, const char *type);

/* Replaces each byte that does not start valid UTF-8 with '?', in place: text quoting a client fits in JSON. */
void http_utf8_clean(char *s);

/* A query parameter (borrowed), or NULL. */
const char *http_query(struct http_req *req, const char *key);

/*
 * Long poll: suspends the connection until http_resume() or the deadline;
 * then the handler runs again with req->resumed set. Call with the core
 * lock held; the request joins the waiters of node.
 */
void http_suspend(struct core *c, struct http_req *req, int64_t node, double deadline);

/* Wakes the long polls of node (all nodes if node is 0). Core lock held. */
void http_resume_node(struct core *c, int64_t node);

/* Wakes the long polls whose deadline has passed. Core lock held. */
void http_resume_expired(struct core *c, double now);

/* The number of suspended long polls. */
int http_waiting(struct core *c);

#endif
