/* client.c - HTTP requests to dispatchd and what their answers mean. */
#include "client.h"
#include "cluster.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "error.h"

#ifndef DISPATCH_VERSION
#define DISPATCH_VERSION "0"
#endif

#define PATH_MAX_LEN 512

struct client {
	CURL *curl;
	char *url;
	char *auth_header;   /* "Authorization: Bearer ..." */
	char *token_from;
	long status;
	int global_init;
	char errbuf[CURL_ERROR_SIZE];
};

/* One request and where its answer goes. */
struct request {
	client *c;
	char what[PATH_MAX_LEN + 16];  /* "GET /v1/jobs", for messages */
	const char *method;
	const char *body;              /* POST from memory */
	size_t body_len;
	FILE *body_file;               /* POST from a file */
	curl_off_t body_file_size;
	const char *content_type;

	struct buf *out;               /* the answer's body, unless fd >= 0 */
	int fd;
	const char *fd_path;
	digest_ctx *hash;
	uint64_t max, written;

	int status_known, is_error;
	struct buf error_body;         /* the body of a 3xx-5xx answer */
	int overflow;
	int write_errno;
};

static int path_is_safe(const char *p)
{
	if (p[0] != '/')
		return 0;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/._~=&?-", *p))
			return 0;
	return 1;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct request *q = arg;
	size_t len = size * n;

	if (!q->status_known) {
		long status = 0;
		curl_easy_getinfo(q->c->curl, CURLINFO_RESPONSE_CODE, &status);
		q->is_error = status >= 300;
		q->status_known = 1;
	}
	if (q->is_error) {
		/* Only the start of an error answer matters; the rest is dropped, not refused. */
		size_t room = q->error_body.cap - q->error_body.len;
		buf_append(&q->error_body, data, len < room ? len : room);
		return len;
	}
	if (q->written + len > q->max || q->written + len < q->written) {
		q->overflow = 1;
		return 0;
	}
	if (q->fd >= 0) {
		for (size_t off = 0; off < len;) {
			ssize_t w = write(q->fd, data + off, len - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				q->write_errno = errno;
				return 0;
			}
			off += (size_t)w;
		}
		if (q->hash)
			digest_update(q->hash, data, len);
	} else if (buf_append(q->out, data, len) < 0) {
		q->overflow = 1;
		return 0;
	}
	q->written += len;
	return len;
}

static size_t on_read(char *data, size_t size, size_t n, void *arg)
{
	struct request *q = arg;
	size_t got = fread(data, size, n, q->body_file);

	if (got == 0 && ferror(q->body_file))
		return CURL_READFUNC_ABORT;
	return got;
}

/*
 * The start of a body that is not JSON, for a message: markup removed (a
 * proxy's HTML error page says "502 Bad Gateway" in its text), runs of
 * white space made one space, anything unprintable made '?'.
 */
static void describe_body(char *out, size_t len, const struct buf *body)
{
	size_t j = 0;
	int in_tag = 0, space = 0;

	for (size_t i = 0; i < body->len && j + 1 < len && j < 160; i++) {
		unsigned char ch = (unsigned char)body->data[i];
		if (ch == '<' || (in_tag && ch != '>')) {
			in_tag = 1;
			space = 1;
			continue;
		}
		if (ch == '>' && in_tag) {
			in_tag = 0;
			continue;
		}
		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
			space = 1;
			continue;
		}
		if (space && j > 0)
			out[j++] = ' ';
		space = 0;
		if (j + 1 < len)
			out[j++] = ch >= ' ' && ch < 0x7f ? (char)ch : '?';
	}
	out[j] = '\0';
	if (j == 0)
		snprintf(out, len, "no message");
}

static int http_error(struct request *q, long status)
{
	json_t *doc = q->error_body.len ? json_loadb(q->error_body.data, q->error_body.len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(doc, "error"));
	char text[256];
	int code;

	if (status == 401 || status == 403)
		code = ERR_AUTH;
	else if (status == 404)
		code = ERR_NOTFOUND;
	else if (status == 409)
		code = ERR_CONFLICT;
	else if (status == 413)
		code = ERR_LIMIT;
	else if (status >= 400 && status < 500)
		code = ERR_INVALID;
	else
		code = ERR_NET;
	if (!msg) {
		describe_body(text, sizeof(text), &q->error_body);
		msg = text;
	}
	if (code == ERR_AUTH && q->c->token_from)
		err_set(code, "dispatcher answered %ld: %s (token from %s)", status, msg, q->c->token_from);
	else if (status >= 300 && status < 400)
		err_set(code,
			"dispatcher answered %ld to %s: redirects are not followed; is '%s' the right URL?",
			status, q->what, q->c->url);
	else
		err_set(code, "dispatcher answered %ld: %s", status, msg);
	json_decref(doc);
	return code;
}

static int net_error(struct request *q, CURLcode rc)
{
	client *c = q->c;
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	long os_errno = 0;

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno)
			why = strerror((int)os_errno);
		/* fallthrough */
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		return err_set(ERR_NET, "cannot reach dispatcher at '%s': %s", c->url, why);
	case CURLE_OPERATION_TIMEDOUT: {
		double connect_s = 0;
		curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME, &connect_s);
		if (connect_s <= 0)
			return err_set(ERR_NET, "cannot reach dispatcher at '%s': %s", c->url, why);
		return err_set(ERR_NET, "%s at '%s' stalled: %s", q->what, c->url, why);
	}
	default:
		return err_set(ERR_NET, "%s at '%s' failed: %s", q->what, c->url, why);
	}
}

/* Runs q against c->url + path; the answer is in q->out / q->fd. */
static int perform(struct request *q, const char *path)
{
	client *c = q->c;
	struct curl_slist *headers = NULL, *h;
	char ctype[128];
	struct buf url = BUF_INIT(PATH_MAX_LEN + 4096);
	CURLcode rc;
	int r = 0;

	buf_init(&q->error_body, CLIENT_ERROR_MAX);
	if (!path_is_safe(path)) {
		r = err_set(ERR_INVALID, "'%s' is not a valid request path", path);
		goto out;
	}
	snprintf(q->what, sizeof(q->what), "%s %s", q->method, path);
	if ((r = buf_printf(&url, "%s%s", c->url, path)) < 0)
		goto out;
	h = curl_slist_append(NULL, c->auth_header);
	headers = h;
	/* No "Expect: 100-continue": it costs a round trip and servers that ignore it a second. */
	h = h ? curl_slist_append(headers, "Expect:") : NULL;
	if (h && q->content_type) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", q->content_type);
		h = curl_slist_append(headers, ctype);
	}
	if (!h) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Resetting keeps the connection cache: requests share one keep-alive connection. */
	curl_easy_reset(c->curl);
	c->errbuf[0] = '\0';
	c->status = 0;
	curl_easy_setopt(c->curl, CURLOPT_URL, buf_str(&url));
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* A dispatcher with its own certificate: DISPATCH_CA names the CA (or the certificate) to trust. */
	if (getenv("DISPATCH_CA") && *getenv("DISPATCH_CA"))
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, getenv("DISPATCH_CA"));
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, CLIENT_STALL_TIMEOUT_S);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "dispatch/" DISPATCH_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, q);
	if (q->body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, q->body);
	} else if (q->body_file) {
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c->curl, CURLOPT_READDATA, q);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, q->body_file_size);
	}
	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
	if (q->overflow)
		r = err_set(ERR_LIMIT, "the answer to %s from '%s' is larger than %llu %s", q->what, c->url,
			    (unsigned long long)(q->max >= (1u << 20) ? q->max >> 20 : q->max),
			    q->max >= (1u << 20) ? "MiB" : "bytes");
	else if (q->write_errno)
		r = err_errno(ERR_IO, q->write_errno, "cannot write '%s'", q->fd_path);
	else if (c->status >= 300)
		/* An early error answer may cut the upload short: the answer is what counts. */
		r = http_error(q, c->status);
	else if (rc != CURLE_OK)
		r = net_error(q, rc);
	else if (c->status < 200)
		r = err_set(ERR_NET, "dispatcher at '%s' answered %s with status %ld", c->url, q->what,
			    c->status);
out:
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	buf_release(&url);
	buf_release(&q->error_body);
	return r;
}

static int format_path(char *out, size_t len, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static int format_path(char *out, size_t len, const char *fmt, va_list ap)
{
	int n = vsnprintf(out, len, fmt, ap);

	if (n < 0 || (size_t)n >= len)
		return err_set(ERR_INVALID, "request path too long");
	return 0;
}

/* Parses a JSON answer: it must be an object. */
static int parse_json(json_t **out, const struct request *q, const struct buf *body)
{
	json_error_t jerr;
	json_t *doc;

	if (!body->len)
		return err_set(ERR_CORRUPT, "dispatcher at '%s' sent an empty answer to %s", q->c->url,
			       q->what);
	doc = json_loadb(body->data, body->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return err_set(ERR_CORRUPT,
			       "dispatcher at '%s' sent malformed JSON for %s: line %d column %d: %s",
			       q->c->url, q->what, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return err_set(ERR_CORRUPT, "dispatcher at '%s' answered %s with JSON that is not an object",
			       q->c->url, q->what);
	}
	*out = doc;
	return 0;
}

static int json_request(json_t **out, struct request *q, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static int json_request(json_t **out, struct request *q, const char *fmt, va_list ap)
{
	struct buf body = BUF_INIT(CLIENT_JSON_MAX);
	char path[PATH_MAX_LEN];
	int r;

	q->out = &body;
	q->fd = -1;
	q->max = CLIENT_JSON_MAX;
	if ((r = format_path(path, sizeof(path), fmt, ap)) < 0 || (r = perform(q, path)) < 0)
		goto out;
	r = parse_json(out, q, &body);
out:
	buf_release(&body);
	return r;
}

int client_get_json(json_t **out, client *c, const char *fmt, ...)
{
	struct request q = { .c = c, .method = "GET" };
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = json_request(out, &q, fmt, ap);
	va_end(ap);
	return r;
}

int client_post_json(json_t **out, client *c, const json_t *body, const char *fmt, ...)
{
	struct request q = { .c = c, .method = "POST" };
	char *text = NULL;
	va_list ap;
	int r;

	if (body) {
		if (!(text = json_dumps(body, JSON_COMPACT)))
			return err_set(ERR_NOMEM, "out of memory");
		q.content_type = "application/json";
	}
	/* No body is an empty one, not "{}": an action like cancel takes none. */
	q.body = text ? text : "";
	q.body_len = text ? strlen(text) : 0;
	va_start(ap, fmt);
	r = json_request(out, &q, fmt, ap);
	va_end(ap);
	free(text);
	return r;
}

int client_post_file(json_t **out, client *c, const char *file, const char *content_type, const char *fmt,
		     ...)
{
	struct request q = { .c = c, .method = "POST", .content_type = content_type };
	struct stat st;
	va_list ap;
	int r;

	q.body_file = fopen(file, "rbe");
	if (!q.body_file)
		return err_errno(ERR_IO, errno, "cannot open '%s'", file);
	if (fstat(fileno(q.body_file), &st) < 0 || !S_ISREG(st.st_mode)) {
		r = err_set(ERR_IO, "'%s' is not a regular file", file);
		goto out;
	}
	q.body_file_size = (curl_off_t)st.st_size;
	va_start(ap, fmt);
	r = json_request(out, &q, fmt, ap);
	va_end(ap);
out:
	fclose(q.body_file);
	return r;
}

int client_get_text(struct buf *out, client *c, const char *fmt, ...)
{
	struct request q = { .c = c, .method = "GET", .out = out, .fd = -1 };
	char path[PATH_MAX_LEN];
	size_t before = out->len;
	va_list ap;
	int r;

	q.max = out->cap - out->len;
	va_start(ap, fmt);
	r = format_path(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (r == 0)
		r = perform(&q, path);
	if (r < 0 && out->data) {
		out->len = before;
		out->data[before] = '\0';
	}
	return r;
}

int client_download(digest_hex *sha, uint64_t *size, client *c, const char *dest, uint64_t max,
		    const char *fmt, ...)
{
	struct request q = { .c = c, .method = "GET", .fd_path = dest, .max = max };
	char path[PATH_MAX_LEN];
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = format_path(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (r < 0)
		return r;
	q.hash = digest_new();
	if (!q.hash)
		return err_set(ERR_NOMEM, "out of memory");
	q.fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (q.fd < 0) {
		r = err_errno(ERR_IO, errno, "cannot create '%s'", dest);
		goto out;
	}
	if ((r = perform(&q, path)) < 0)
		goto out;
	if (fsync(q.fd) < 0) {
		r = err_errno(ERR_IO, errno, "cannot write '%s'", dest);
		goto out;
	}
	digest_final(q.hash, sha);
	q.hash = NULL;
	*size = q.written;
out:
	if (q.fd >= 0)
		close(q.fd);
	digest_free(q.hash);
	return r;
}

int client_new(client **out, const char *url, const char *token, const char *token_from)
{
	client *c = calloc(1, sizeof(*c));
	struct buf auth = BUF_INIT(CONFIG_TOKEN_MAX + 64);
	int r = 0;

	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		r = err_set(ERR_IO, "cannot initialize libcurl");
		goto out;
	}
	c->global_init = 1;
	if ((r = buf_printf(&auth, "Authorization: Bearer %s", token)) < 0)
		goto out;
	c->url = strdup(url);
	c->token_from = token_from ? strdup(token_from) : NULL;
	c->auth_header = buf_detach(&auth, NULL);
	c->curl = curl_easy_init();
	if (!c->url || (token_from && !c->token_from) || !c->auth_header || !c->curl) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	*out = c;
	c = NULL;
out:
	buf_release(&auth);
	client_free(c);
	return r;
}

int client_connect(client **out, const char *url_flag, const char *token_flag)
{
	struct config cfg;
	char *local = cluster_config_path(); /* a cluster of `dispatch up`, if one runs */
	int r;

	r = config_load(&cfg, url_flag, token_flag, local);
	free(local);
	if (r < 0)
		return r;
	r = client_new(out, cfg.url, cfg.token, cfg.token_from);
	config_release(&cfg);
	return r;
}

void client_free(client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	if (c->auth_header) {
		/* The token should not outlive its use in freed memory. */
		explicit_bzero(c->auth_header, strlen(c->auth_header));
		free(c->auth_header);
	}
	free(c->url);
	free(c->token_from);
	if (c->global_init)
		curl_global_cleanup();
	free(c);
}

const char *client_url(const client *c)
{
	return c->url;
}

long client_status(const client *c)
{
	return c->status;
}
