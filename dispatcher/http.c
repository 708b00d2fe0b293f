/* http.c - libmicrohttpd glue: routing, authentication, bounded bodies, long polls. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"

struct waiter {
	struct waiter *next, *prev;
	int64_t node;
	double deadline;
	struct MHD_Connection *conn;
	int linked;
};

#define HTTP_ARG_MAX 128 /* longest segment a pattern's '*' matches */

struct ctx {
	const struct http_route *route;
	struct http_req req;
	char args[3][HTTP_ARG_MAX]; /* what req.args point to: the request's own, for all of its calls */
	struct buf body;
	int fd;
	char *tmp;
	digest_ctx *hash;
	uint64_t size;
	int too_large;
	int suspended;
	struct waiter w;
	int defer;		     /* replies wait in resp until the request's transaction commits */
	struct MHD_Response *resp;
	unsigned status;
};

struct http_server {
	struct MHD_Daemon *d;
	struct core *c;
	const struct http_route *routes;
	char *cert, *key;
};

static void waiter_unlink(struct core *c, struct waiter *w)
{
	if (!w->linked)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		c->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->linked = 0;
}

void http_suspend(struct core *c, struct http_req *req, int64_t node, double deadline)
{
	struct ctx *x = req->priv;

	x->suspended = 1;
	x->w.node = node;
	x->w.deadline = deadline;
	x->w.conn = req->conn;
	x->w.prev = NULL;
	x->w.next = c->waiters;
	if (c->waiters)
		c->waiters->prev = &x->w;
	c->waiters = &x->w;
	x->w.linked = 1;
	MHD_suspend_connection(req->conn);
}

static void wake(struct core *c, struct waiter *w)
{
	struct MHD_Connection *conn = w->conn;

	waiter_unlink(c, w);
	MHD_resume_connection(conn);
}

void http_resume_node(struct core *c, int64_t node)
{
	struct waiter *w = c->waiters, *next;

	for (; w; w = next) {
		next = w->next;
		if (node == 0 || w->node == node)
			wake(c, w);
	}
}

void http_resume_expired(struct core *c, double now)
{
	struct waiter *w = c->waiters, *next;

	for (; w; w = next) {
		next = w->next;
		if (w->deadline <= now)
			wake(c, w);
	}
}

int http_waiting(struct core *c)
{
	int n = 0;

	for (struct waiter *w = c->waiters; w; w = w->next)
		n++;
	return n;
}

static void queue(struct http_req *req, unsigned status, struct MHD_Response *resp, const char *type)
{
	struct ctx *x = req->priv;

	if (!resp)
		return;
	if (type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (x->defer && !x->resp) {
		x->resp = resp;
		x->status = status;
	} else {
		MHD_queue_response(req->conn, status, resp);
		MHD_destroy_response(resp);
	}
	req->replied = 1;
}

/*
 * Runs the route's handler in one transaction: everything a request
 * changes costs one fsync, and its reply goes out only once that is
 * durable (a reply that says a job was accepted or an event recorded
 * must not be taken back by a crash). A failed commit turns the reply
 * into a 500.
 */
static void run_handler(struct http_server *s, struct ctx *x)
{
	struct core *c = s->c;
	int tx;

	core_lock(c);
	tx = store_begin(c->db) == 0;
	x->defer = 1;
	x->route->fn(c, &x->req);
	x->defer = 0;
	/* A level the handler left open would keep every later request from committing. */
	while (tx && store_depth(c->db) > 1) {
		log_error("%s %s: a transaction was left open: rolled back", x->req.method, x->req.url);
		store_rollback(c->db);
	}
	if (tx && store_commit(c->db) < 0) {
		log_error("%s %s: %s", x->req.method, x->req.url, err_msg());
		store_rollback(c->db);
		if (x->resp) {
			MHD_destroy_response(x->resp);
			x->resp = NULL;
			x->req.replied = 0;
			http_reply_error(&x->req, 500, "the store cannot commit: %s", err_msg());
		}
	}
	if (x->resp) {
		MHD_queue_response(x->req.conn, x->status, x->resp);
		MHD_destroy_response(x->resp);
		x->resp = NULL;
	}
	core_unlock(c);
}

void http_reply_json(struct http_req *req, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp;

	json_decref(body);
	if (!text) {
		/* A reply that could not be built is the server's fault, whatever was meant. */
		text = strdup("{\"error\": \"internal error: cannot build the reply\"}");
		status = 500;
	}
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	queue(req, status, resp, "application/json");
}

/* The length of the valid UTF-8 sequence at s (as jansson checks it), 0 when there is none. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n = s[0] < 0x80		? 1
		   : (s[0] & 0xe0) == 0xc0 ? 2
		   : (s[0] & 0xf0) == 0xe0 ? 3
		   : (s[0] & 0xf8) == 0xf0 ? 4
					   : 0;
	uint32_t cp;

	if (n <= 1)
		return n;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void http_utf8_clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p;) {
		size_t n = utf8_seq(p);
		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

void http_reply_error(struct http_req *req, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages quote what the client sent, maybe cut mid-character: keep the reply valid JSON. */
	http_utf8_clean(msg);
	http_reply_json(req, status, json_pack("{ss}", "error", msg));
}

void http_reply_text(struct http_req *req, unsigned status, const char *text, size_t len)
{
	queue(req, status, MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY),
	      "text/plain; charset=utf-8");
}

void http_reply_file(struct http_req *req, const char *path, const char *type)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		http_reply_error(req, 404, "'%s' not found", req->url);
		return;
	}
	queue(req, 200, MHD_create_response_from_fd((uint64_t)st.st_size, fd), type);
}

const char *http_query(struct http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/*
 * Matches "/v1/jobs/j-1/cancel" against "/v1/jobs/ * /cancel", capturing the
 * stars into the request's own buffers: one thread serves many connections,
 * and an upload's handler runs calls after its routing.
 */
static int match(const char *pattern, const char *url, struct ctx *x)
{
	char (*segs)[HTTP_ARG_MAX] = x->args;
	int n = 0;

	while (*pattern && *url) {
		if (*pattern == '*') {
			size_t len = strcspn(url, "/");
			if (len == 0 || len >= HTTP_ARG_MAX || n == 3)
				return 0;
			memcpy(segs[n], url, len);
			segs[n][len] = '\0';
			x->req.args[n] = segs[n];
			n++;
			url += len;
			pattern++;
			continue;
		}
		if (*pattern++ != *url++)
			return 0;
	}
	return *pattern == '\0' && *url == '\0';
}

static int token_matches(const char *token, const char *hash)
{
	digest_hex d;
	unsigned char diff = 0;

	digest_bytes(&d, token, strlen(token));
	for (int i = 0; i < DIGEST_HEX_LEN; i++)
		diff |= (unsigned char)(d.hex[i] ^ hash[i]);
	return diff == 0;
}

/* Who is calling: fills req->who and req->node; 0 when the route allows it. */
static int authenticate(struct core *c, struct ctx *x)
{
	const char *h = MHD_lookup_connection_value(x->req.conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	enum http_auth need = x->route->auth;
	const char *token;
	digest_hex d;

	if (need == AUTH_NONE)
		return 0;
	if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < 16 || strlen(h + 7) > 256)
		return -1;
	token = h + 7;
	if (token_matches(token, c->operator_hash)) {
		x->req.who = AUTH_OPERATOR;
		return need == AUTH_OPERATOR || need == AUTH_NODE_OR_OPERATOR ? 0 : -1;
	}
	if (token_matches(token, c->join_hash)) {
		x->req.who = AUTH_JOIN;
		return need == AUTH_JOIN || need == AUTH_JOIN_OR_NODE ? 0 : -1;
	}
	if (need != AUTH_NODE && need != AUTH_NODE_OR_OPERATOR && need != AUTH_JOIN_OR_NODE)
		return -1;
	digest_bytes(&d, token, strlen(token));
	core_lock(c);
	x->req.node = store_int(c->db, 0, "SELECT id FROM nodes WHERE token_hash = ?", "s", d.hex);
	core_unlock(c);
	if (x->req.node <= 0)
		return -1;
	x->req.who = AUTH_NODE;
	return 0;
}

static int open_body_file(struct core *c, struct ctx *x)
{
	x->tmp = fs_join(cas_tmpdir(c->blobs), "upload-XXXXXX");
	if (!x->tmp)
		return -1;
	x->fd = mkostemp(x->tmp, O_CLOEXEC);
	if (x->fd < 0) {
		free(x->tmp);
		x->tmp = NULL;
		return -1;
	}
	x->hash = digest_new();
	return x->hash ? 0 : -1;
}

static void consume(struct ctx *x, const char *data, size_t len)
{
	uint64_t max = x->route->body == BODY_NONE ? 65536 : x->route->body_max; /* ignored, but bounded */

	if (x->too_large)
		return;
	if ((uint64_t)len > max - x->size) {
		x->too_large = 1;
		return;
	}
	x->size += len;
	if (x->route->body == BODY_JSON) {
		if (buf_append(&x->body, data, len) < 0)
			x->too_large = 1;
	} else if (x->route->body == BODY_FILE && x->fd >= 0) {
		digest_update(x->hash, data, len);
		while (len > 0) {
			ssize_t n = write(x->fd, data, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				x->too_large = 1; /* disk full: the reply says so */
				break;
			}
			data += n;
			len -= (size_t)n;
		}
	}
}

static enum MHD_Result first_call(struct http_server *s, struct ctx *x, const char *url, const char *method)
{
	int path_known = 0;

	for (const struct http_route *r = s->routes; r->pattern; r++) {
		if (!match(r->pattern, url, x))
			continue;
		path_known = 1;
		if (!strcmp(r->method, method)) {
			x->route = r;
			break;
		}
	}
	if (!x->route) {
		if (path_known)
			http_reply_error(&x->req, 405, "method %s is not allowed on '%s'", method, url);
		else
			http_reply_error(&x->req, 404, "no such endpoint '%s'", url);
		return MHD_YES;
	}
	if (authenticate(s->c, x) < 0) {
		http_reply_error(&x->req, 401, "missing or invalid credentials for '%s'", url);
		return MHD_YES;
	}
	buf_init(&x->body, x->route->body_max);
	if (x->route->body == BODY_FILE && open_body_file(s->c, x) < 0)
		http_reply_error(&x->req, 500, "cannot store the request body");
	return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct ctx *x = *con_cls;
	json_error_t jerr;
	json_t *doc = NULL;

	(void)version;
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			return MHD_NO;
		x->fd = -1;
		x->req.conn = conn;
		x->req.url = url;
		x->req.method = method;
		x->req.priv = x;
		*con_cls = x;
		return first_call(s, x, url, method);
	}
	if (x->req.replied) {
		*upload_size = 0; /* an early error: drop the body */
		return MHD_YES;
	}
	if (*upload_size) {
		consume(x, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (x->suspended) {
		x->suspended = 0;
		x->req.resumed = 1;
	} else if (x->too_large) {
		http_reply_error(&x->req, 413, "request body larger than %llu bytes",
				 (unsigned long long)(x->route->body == BODY_NONE ? 65536 : x->route->body_max));
		return MHD_YES;
	} else if (x->route->body == BODY_JSON) {
		doc = json_loadb(buf_str(&x->body), x->body.len, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc) {
			http_reply_error(&x->req, 400, "body: invalid JSON at line %d column %d: %s", jerr.line,
					 jerr.column, jerr.text);
			return MHD_YES;
		}
		if (!json_is_object(doc)) {
			json_decref(doc);
			http_reply_error(&x->req, 400, "body: expected a JSON object");
			return MHD_YES;
		}
		x->req.json = doc;
	} else if (x->route->body == BODY_FILE) {
		digest_hex d;
		digest_final(x->hash, &d);
		x->hash = NULL;
		memcpy(x->req.file_digest, d.hex, sizeof(d.hex));
		close(x->fd);
		x->fd = -1;
		x->req.file = x->tmp;
		x->req.file_size = x->size;
	}
	run_handler(s, x);
	if (!x->req.replied && !x->suspended)
		http_reply_error(&x->req, 500, "internal error: no reply");
	return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct ctx *x = *con_cls;

	(void)conn;
	(void)toe;
	if (!x)
		return;
	if (x->w.linked) {
		core_lock(s->c);
		waiter_unlink(s->c, &x->w);
		core_unlock(s->c);
	}
	json_decref(x->req.json);
	buf_release(&x->body);
	if (x->fd >= 0)
		close(x->fd);
	if (x->tmp) {
		unlink(x->tmp); /* a no-op when the handler moved it into the store */
		free(x->tmp);
	}
	digest_free(x->hash);
	free(x);
	*con_cls = NULL;
}

static int parse_addr(struct sockaddr_storage *ss, socklen_t *len, const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char *end;
	long port;
	size_t n;

	if (!colon || (n = (size_t)(colon - addr)) >= sizeof(host))
		return err_set(ERR_INVALID, "'%s' is not HOST:PORT", addr);
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return err_set(ERR_INVALID, "'%s': bad port", addr);
	memcpy(host, addr, n);
	host[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		host[n - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : err_set(ERR_INVALID, "'%s': bad address", addr);
	}
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	*len = sizeof(*in4);
	return inet_pton(AF_INET, host, &in4->sin_addr) == 1 ? 0 : err_set(ERR_INVALID, "'%s': bad IPv4 address", addr);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

int http_start(struct http_server **out, struct core *c, const char *addr, const struct http_route *routes,
	       const char *tls_cert, const char *tls_key)
{
	struct http_server *s = calloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct buf cert = BUF_INIT(1 << 20), key = BUF_INIT(1 << 20);
	int r;

	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	s->c = c;
	s->routes = routes;
	if ((r = parse_addr(&ss, &len, addr)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls_cert || tls_key) {
		if (!tls_cert || !tls_key) {
			r = err_set(ERR_INVALID, "TLS needs both a certificate and a key");
			goto fail;
		}
		if ((r = fs_read_file(&cert, tls_cert, 1 << 20)) < 0 || (r = fs_read_file(&key, tls_key, 1 << 20)) < 0)
			goto fail;
		flags |= MHD_USE_TLS;
	}
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_NOTIFY_COMPLETED, completed, s,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)60000,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
				(flags & MHD_USE_TLS) ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, buf_str(&cert),
				MHD_OPTION_HTTPS_MEM_KEY, buf_str(&key),
				MHD_OPTION_END);
	if (!s->d) {
		r = err_set(ERR_IO, "cannot listen on '%s' (in use, or not an address of this host)", addr);
		goto fail;
	}
	buf_release(&cert);
	buf_release(&key);
	*out = s;
	return 0;
fail:
	buf_release(&cert);
	buf_release(&key);
	free(s);
	return r;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->d) {
		core_lock(s->c);
		http_resume_node(s->c, 0);
		core_unlock(s->c);
		MHD_stop_daemon(s->d);
	}
	free(s);
}

int http_port(struct http_server *s)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? i->port : 0;
}
