/* conn.c - libcurl easy handle, reused; bounded JSON responses; hashed downloads. */
#include "conn.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "digest.h"
#include "error.h"

#define CONNECT_TIMEOUT_S 10L
#define BLOB_STALL_S 60L /* a blob transfer slower than 1 byte/s for this long fails */
#define THREAD_STACK (256u << 10)

struct conn {
	char *url;
	char *ca;
	pthread_mutex_t lock; /* token */
	char *token;
	CURL *easy;
	CURLM *multi; /* only for interruptible conns */
	atomic_int interrupted;
	unsigned timeout_s;
	size_t max_response;
	char errbuf[CURL_ERROR_SIZE];
};

/* Where a response body goes: a bounded buffer, or a file being hashed. */
struct sink {
	struct buf *buf;
	CURL *easy; /* for files: an error response goes to buf instead */
	int fd;
	digest_ctx *dc;
	uint64_t n, max;
	int over, failed;
};

int conn_new(conn **out, const char *url, const char *ca_file)
{
	conn *c = calloc(1, sizeof(*c));
	int r = 0;

	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	c->timeout_s = 60;
	c->max_response = 1u << 20;
	c->url = strdup(url);
	c->ca = ca_file ? strdup(ca_file) : NULL;
	c->easy = curl_easy_init();
	if (!c->url || (ca_file && !c->ca) || !c->easy) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Paths are appended to the base URL: drop its trailing slashes. */
	for (size_t n = strlen(c->url); n > 0 && c->url[n - 1] == '/'; n--)
		c->url[n - 1] = '\0';
	*out = c;
	c = NULL;
out:
	conn_free(c);
	return r;
}

void conn_free(conn *c)
{
	if (!c)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	pthread_mutex_destroy(&c->lock);
	free(c->url);
	free(c->ca);
	free(c->token);
	free(c);
}

int conn_set_token(conn *c, const char *token)
{
	char *t = strdup(token);

	if (!t)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&c->lock);
	free(c->token);
	c->token = t;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void conn_set_limits(conn *c, unsigned timeout_s, size_t max_response)
{
	c->timeout_s = timeout_s;
	c->max_response = max_response;
}

int conn_set_interruptible(conn *c)
{
	if (!c->multi && !(c->multi = curl_multi_init()))
		return err_set(ERR_NOMEM, "out of memory");
	return 0;
}

int conn_thread_start(conn *c, pthread_t *thread, void *(*fn)(void *), void *arg, const char *what)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int r, e;

	if ((r = conn_set_interruptible(c)) < 0)
		return r;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	e = pthread_create(thread, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e ? err_errno(ERR_IO, e, "cannot start the %s thread", what) : 0;
}

void conn_interrupt(conn *c)
{
	atomic_store(&c->interrupted, 1);
	if (c->multi)
		curl_multi_wakeup(c->multi);
}

void conn_wakeup(conn *c)
{
	if (c->multi)
		curl_multi_wakeup(c->multi);
}

void conn_sleep(conn *c, unsigned ms)
{
	if (atomic_load(&c->interrupted))
		return;
	if (c->multi)
		curl_multi_poll(c->multi, NULL, 0, (int)ms, NULL);
	else
		usleep(ms * 1000u);
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t len = size * nmemb;
	long status = 0;

	if (s->easy && s->buf) {
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 300)
			return buf_append(s->buf, data, len) == 0 ? len : 0;
	}
	if (s->n + len > s->max) {
		s->over = 1;
		return 0;
	}
	s->n += len;
	if (s->fd < 0)
		return buf_append(s->buf, data, len) == 0 ? len : 0;
	digest_update(s->dc, data, len);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(s->fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			s->failed = errno;
			return 0;
		}
		off += (size_t)w;
	}
	return len;
}

/* Resets the handle and sets what every request shares. */
static int prepare(conn *c, struct curl_slist **hdrs, const char *path, const char *content_type)
{
	char *url = malloc(strlen(c->url) + strlen(path) + 1);
	char *auth = NULL;
	struct curl_slist *h = NULL;
	int r = 0;

	if (!url)
		return err_set(ERR_NOMEM, "out of memory");
	memcpy(url, c->url, strlen(c->url));
	memcpy(url + strlen(c->url), path, strlen(path) + 1);
	pthread_mutex_lock(&c->lock);
	if (c->token) {
		size_t n = strlen(c->token) + 32;
		if ((auth = malloc(n)) != NULL)
			snprintf(auth, n, "Authorization: Bearer %s", c->token);
	}
	pthread_mutex_unlock(&c->lock);
	/* curl_easy_reset() keeps the open connection and the TLS session. */
	curl_easy_reset(c->easy);
	if ((c->token && !auth) || !(h = curl_slist_append(h, "Expect:")) ||
	    (auth && !(h = curl_slist_append(h, auth))) ||
	    (content_type && !(h = curl_slist_append(h, content_type)))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	c->errbuf[0] = '\0';
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "dispatch-agent");
	if (c->ca)
		curl_easy_setopt(c->easy, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
	*hdrs = h;
	h = NULL;
out:
	curl_slist_free_all(h);
	free(auth);
	free(url); /* libcurl copies option strings */
	return r;
}

/* Runs the transfer: plainly, or through the multi handle so that conn_interrupt() can stop it. */
static CURLcode perform(conn *c)
{
	CURLcode res = CURLE_OK;
	CURLMsg *m;
	int running = 1, left;

	if (!c->multi)
		return curl_easy_perform(c->easy);
	if (atomic_load(&c->interrupted) || curl_multi_add_handle(c->multi, c->easy) != CURLM_OK)
		return CURLE_ABORTED_BY_CALLBACK;
	while (running) {
		if (curl_multi_perform(c->multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(c->multi, NULL, 0, 30000, NULL) != CURLM_OK)
			break;
		if (atomic_load(&c->interrupted)) {
			res = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
	}
	while (res == CURLE_OK && (m = curl_multi_info_read(c->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			res = m->data.result;
	curl_multi_remove_handle(c->multi, c->easy);
	return res;
}

/* Turns a transport failure or an HTTP status into an error code and message. */
static int check(conn *c, CURLcode res, const struct sink *s, const char *method, const char *path)
{
	const char *detail = NULL;
	json_t *doc = NULL;
	long status = 0;
	int r;

	if (s->over)
		return err_set(ERR_LIMIT, "%s %s: the response is larger than %llu bytes", method, path,
			       (unsigned long long)s->max);
	if (s->failed)
		return err_errno(ERR_IO, s->failed, "%s %s: cannot write the response", method, path);
	if (res == CURLE_FILESIZE_EXCEEDED)
		return err_set(ERR_LIMIT, "%s %s: the response is larger than %llu bytes", method, path,
			       (unsigned long long)s->max);
	if (res != CURLE_OK)
		return err_set(ERR_NET, "%s %s%s: %s", method, c->url, path,
			       c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return 0;
	if (s->buf && s->buf->len && (doc = json_loadb(s->buf->data, s->buf->len, 0, NULL)))
		detail = json_string_value(json_object_get(doc, "error"));
	r = status == 401 || status == 403  ? ERR_AUTH
	    : status == 404		    ? ERR_NOTFOUND
	    : status == 409		    ? ERR_CONFLICT
	    : status >= 400 && status < 500 ? ERR_INVALID
					    : ERR_NET;
	err_set(r, "%s %s: %ld %s", method, path, status, detail ? detail : "(no message)");
	json_decref(doc);
	return r;
}

int conn_request(conn *c, json_t **resp, const char *method, const char *path, json_t *body)
{
	char *text = NULL;
	int r;

	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return err_set(ERR_NOMEM, "out of memory");
	r = conn_request_text(c, resp, method, path, text);
	free(text);
	return r;
}

int conn_request_text(conn *c, json_t **resp, const char *method, const char *path, const char *text)
{
	struct buf in = BUF_INIT(c->max_response);
	struct sink s = {.buf = &in, .fd = -1, .max = c->max_response};
	struct curl_slist *h = NULL;
	json_error_t jerr;
	json_t *doc = NULL;
	int r;

	if ((r = prepare(c, &h, path, text ? "Content-Type: application/json" : NULL)) < 0)
		goto out;
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, (long)c->timeout_s);
	if (text || !strcmp(method, "POST")) {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, text ? text : "");
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(text ? strlen(text) : 0));
	}
	if (strcmp(method, "GET") && strcmp(method, "POST"))
		curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
	if ((r = check(c, perform(c), &s, method, path)) < 0)
		goto out;
	if (in.len && resp && !(doc = json_loadb(in.data, in.len, 0, &jerr))) {
		r = err_set(ERR_INVALID, "%s %s: the response is not JSON: %s", method, path, jerr.text);
		goto out;
	}
	if (resp)
		*resp = doc;
	doc = NULL;
out:
	json_decref(doc);
	curl_slist_free_all(h);
	buf_release(&in);
	return r;
}

int conn_download(conn *c, const char *digest, const char *dest, uint64_t max)
{
	struct buf err = BUF_INIT(64u << 10);
	struct sink s = {.buf = &err, .easy = c->easy, .fd = -1, .max = max};
	struct curl_slist *h = NULL;
	char path[16 + DIGEST_HEX_LEN];
	digest_hex got;
	int r;

	if (!digest_is_valid(digest))
		return err_set(ERR_INVALID, "'%s' is not a sha256 digest", digest);
	snprintf(path, sizeof(path), "/v1/blobs/%s", digest);
	s.fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s.fd < 0)
		return err_errno(ERR_IO, errno, "cannot create '%s'", dest);
	if (!(s.dc = digest_new())) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = prepare(c, &h, path, NULL)) < 0)
		goto out;
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_TIME, BLOB_STALL_S);
	if ((r = check(c, perform(c), &s, "GET", path)) < 0)
		goto out;
	digest_final(s.dc, &got);
	s.dc = NULL;
	if (strcmp(got.hex, digest) != 0) {
		r = err_set(ERR_CORRUPT,
			    "blob %.12s from the dispatcher is corrupt: its content hashes to %.12s", digest,
			    got.hex);
		goto out;
	}
out:
	digest_free(s.dc);
	curl_slist_free_all(h);
	buf_release(&err);
	close(s.fd);
	if (r < 0)
		unlink(dest);
	return r;
}

static size_t on_read(char *data, size_t size, size_t nmemb, void *arg)
{
	ssize_t n;

	do
		n = read(*(int *)arg, data, size * nmemb);
	while (n < 0 && errno == EINTR);
	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

int conn_upload(conn *c, const char *digest, const char *file)
{
	struct buf in = BUF_INIT(64u << 10);
	struct sink s = {.buf = &in, .fd = -1, .max = 64u << 10};
	struct curl_slist *h = NULL;
	char path[16 + DIGEST_HEX_LEN];
	struct stat st;
	int fd, r;

	if (!digest_is_valid(digest))
		return err_set(ERR_INVALID, "'%s' is not a sha256 digest", digest);
	snprintf(path, sizeof(path), "/v1/blobs/%s", digest);
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = err_errno(ERR_IO, errno, "cannot open '%s'", file);
		goto out;
	}
	if ((r = prepare(c, &h, path, "Content-Type: application/octet-stream")) < 0)
		goto out;
	curl_easy_setopt(c->easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c->easy, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c->easy, CURLOPT_READDATA, &fd);
	curl_easy_setopt(c->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c->easy, CURLOPT_LOW_SPEED_TIME, BLOB_STALL_S);
	r = check(c, perform(c), &s, "PUT", path);
out:
	if (fd >= 0)
		close(fd);
	curl_slist_free_all(h);
	buf_release(&in);
	return r;
}

unsigned conn_backoff_next(struct conn_backoff *b)
{
	unsigned base = b->next_ms ? b->next_ms : 1000, jitter = 0;

	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) != (ssize_t)sizeof(jitter))
		jitter = (unsigned)getpid() * 2654435761u;
	b->next_ms = base >= 15000 ? 30000 : base * 2;
	return base - base / 4 + jitter % (base / 2 + 1);
}

void conn_backoff_reset(struct conn_backoff *b)
{
	b->next_ms = 0;
}
