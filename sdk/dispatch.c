/* dispatch.c - the object SDK (libc only; see dispatch.h and docs/object-abi.md). */
#include "dispatch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_FILE "state.json"
#define STATE_MAX (64u << 20)
#define KEY_MAX 128
#define ENTRIES_MAX 65536

enum kind { K_INT, K_U64, K_F64, K_STR, K_BLOB, K_RAW };

struct entry {
	char key[KEY_MAX + 1];
	enum kind kind;
	int64_t i;
	uint64_t u;
	double f;
	char *s;             /* K_STR text, K_RAW JSON text */
	enum dispatch_type type;
	void *data;          /* K_BLOB, native byte order */
	size_t count;
};

static struct {
	struct entry *e;
	size_t n, cap;
	const char *in_dir, *out_dir, *isa, *instance;
	int fork_index, progress_fd, checkpoints;
	double last_progress, last_report;
	double interval, last_checkpoint;
} st = { .progress_fd = -1, .last_progress = -1 };

static volatile sig_atomic_t checkpoint_flag;

static const char *const type_names[] = { "u8", "i32", "u32", "i64", "u64", "f32", "f64" };
static const size_t type_sizes[] = { 1, 4, 4, 8, 8, 4, 8 };

static int host_is_big(void)
{
	const uint16_t one = 1;

	return *(const unsigned char *)&one == 0;
}

static void on_signal(int sig)
{
	(void)sig;
	checkpoint_flag = 1;
}

/* ---- entries ---- */

static int key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > KEY_MAX || k[0] == '.')
		return 0;
	return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static struct entry *find(const char *key)
{
	for (size_t i = 0; i < st.n; i++)
		if (!strcmp(st.e[i].key, key))
			return &st.e[i];
	return NULL;
}

static void entry_clear(struct entry *e)
{
	free(e->s);
	free(e->data);
	e->s = NULL;
	e->data = NULL;
}

/* Drops every value: dispatch_init() starts from nothing, also when called again. */
static void entries_drop(void)
{
	for (size_t i = 0; i < st.n; i++)
		entry_clear(&st.e[i]);
	st.n = 0;
}

/* The entry for key, emptied, created if needed; NULL on a bad key or no memory. */
static struct entry *slot(const char *key)
{
	struct entry *e = key_ok(key) ? find(key) : NULL;

	if (!key_ok(key))
		return NULL;
	if (e) {
		entry_clear(e);
		return e;
	}
	if (st.n == st.cap) {
		size_t nc = st.cap ? st.cap * 2 : 16;
		struct entry *ne = nc <= ENTRIES_MAX ? realloc(st.e, nc * sizeof(*ne)) : NULL;
		if (!ne)
			return NULL;
		st.e = ne;
		st.cap = nc;
	}
	e = &st.e[st.n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, strlen(key) + 1);
	return e;
}

/* ---- a small JSON reader: just what state.json needs ---- */

struct rd {
	const char *p, *end;
	int err;
};

static void ws(struct rd *r)
{
	while (r->p < r->end && strchr(" \t\r\n", *r->p))
		r->p++;
}

static int expect(struct rd *r, char c)
{
	ws(r);
	if (r->p < r->end && *r->p == c) {
		r->p++;
		return 1;
	}
	r->err = 1;
	return 0;
}

static void put_utf8(char **o, unsigned cp)
{
	if (cp < 0x80) {
		*(*o)++ = (char)cp;
	} else if (cp < 0x800) {
		*(*o)++ = (char)(0xc0 | cp >> 6);
		*(*o)++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*(*o)++ = (char)(0xe0 | cp >> 12);
		*(*o)++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*(*o)++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*(*o)++ = (char)(0xf0 | cp >> 18);
		*(*o)++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*(*o)++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*(*o)++ = (char)(0x80 | (cp & 0x3f));
	}
}

static unsigned hex4(struct rd *r)
{
	unsigned v = 0;

	if (r->end - r->p < 4) {
		r->err = 1;
		return 0;
	}
	for (int i = 0; i < 4; i++) {
		char c = *r->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if ((c | 32) >= 'a' && (c | 32) <= 'f')
			v |= (unsigned)((c | 32) - 'a' + 10);
		else
			r->err = 1;
	}
	return v;
}

/* Reads a string (new, NUL-terminated; NUL escapes are refused). */
static char *str(struct rd *r)
{
	char *out, *o;

	if (!expect(r, '"'))
		return NULL;
	out = o = malloc((size_t)(r->end - r->p) + 1);
	if (!out) {
		r->err = 1;
		return NULL;
	}
	while (r->p < r->end && *r->p != '"' && !r->err) {
		char c = *r->p++;
		if (c != '\\') {
			*o++ = c;
			continue;
		}
		if (r->p >= r->end)
			break;
		c = *r->p++;
		switch (c) {
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'u': {
			unsigned cp = hex4(r);
			if (cp >= 0xd800 && cp < 0xdc00 && r->p + 1 < r->end && r->p[0] == '\\' && r->p[1] == 'u') {
				unsigned lo;
				r->p += 2;
				lo = hex4(r);
				cp = lo >= 0xdc00 && lo < 0xe000 ? 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00) : 0;
			}
			/* Strings are UTF-8: no NUL, no surrogate left alone. */
			if (cp == 0 || (cp >= 0xd800 && cp < 0xe000))
				r->err = 1;
			else
				put_utf8(&o, cp);
			break;
		}
		default: *o++ = c; break;
		}
	}
	*o = '\0';
	if (!expect(r, '"') || r->err) {
		free(out);
		return NULL;
	}
	return out;
}

/* Skips any value; used for unknown and raw values. */
static void skip(struct rd *r, int depth)
{
	ws(r);
	if (r->p >= r->end || depth > 64) {
		r->err = 1;
		return;
	}
	if (*r->p == '"') {
		free(str(r));
	} else if (*r->p == '{' || *r->p == '[') {
		char close = *r->p == '{' ? '}' : ']';
		r->p++;
		ws(r);
		if (r->p < r->end && *r->p == close) {
			r->p++;
			return;
		}
		do {
			if (close == '}') {
				free(str(r));
				expect(r, ':');
			}
			skip(r, depth + 1);
			ws(r);
		} while (!r->err && r->p < r->end && *r->p == ',' && r->p++);
		expect(r, close);
	} else {
		const char *s = r->p;
		while (r->p < r->end && strchr("+-.0123456789eEtruefalsn", *r->p))
			r->p++;
		if (r->p == s)
			r->err = 1;
	}
}

static int read_file(const char *dir, const char *name, char **out, size_t *len, size_t max)
{
	char path[4096];
	struct stat sb;
	size_t got = 0;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size > max || !(*out = malloc((size_t)sb.st_size + 1))) {
		close(fd);
		return -1;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, *out + got, (size_t)sb.st_size - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	(*out)[got] = '\0';
	*len = got;
	return got == (size_t)sb.st_size ? 0 : -1;
}

static void swap_bytes(unsigned char *p, size_t size, size_t count)
{
	for (size_t i = 0; i < count; i++, p += size)
		for (size_t a = 0, b = size - 1; a < b; a++, b--) {
			unsigned char t = p[a];
			p[a] = p[b];
			p[b] = t;
		}
}

/* Whether rel names a file below the state's directory: relative, no ".." component. */
static int below(const char *rel)
{
	if (rel[0] == '/')
		return 0;
	for (const char *c = rel;; c++) {
		if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))
			return 0;
		if (!(c = strchr(c, '/')))
			return 1;
	}
}

/* {"blob": FILE, "type": T, "order": "little"|"big", "count": N} */
static int load_blob(struct entry *e, const char *file, const char *type, const char *order, uint64_t count)
{
	size_t len = 0, t;
	char *data = NULL;

	for (t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++)
		if (!strcmp(type, type_names[t]))
			break;
	if (t == sizeof(type_names) / sizeof(type_names[0]) || !below(file) ||
	    (strcmp(order, "little") && strcmp(order, "big")) || count > STATE_MAX / type_sizes[t])
		return -1;
	if (read_file(st.in_dir, file, &data, &len, STATE_MAX) != 0 || len != count * type_sizes[t]) {
		free(data);
		return -1;
	}
	if ((strcmp(order, "big") == 0) != host_is_big())
		swap_bytes((unsigned char *)data, type_sizes[t], (size_t)count);
	e->kind = K_BLOB;
	e->type = (enum dispatch_type)t;
	e->data = data;
	e->count = (size_t)count;
	return 0;
}

/* A typed value: {"f64": "0x1p+0"}, {"u64": "..."}, {"i64": "..."} or a blob. */
#define F64_MANTISSA ((UINT64_C(1) << 52) - 1)

/*
 * A NaN's text is [-]nan(0xPAYLOAD), its sign and mantissa bits: %a writes a
 * bare "nan" and strtod() makes its own payload, on glibc as elsewhere.
 * 0, or -1 when text is not a double.
 */
static int get_f64(const char *text, double *out)
{
	const char *p = text + (text[0] == '-');
	char *endp;

	if (!strncmp(p, "nan(0x", 6)) {
		uint64_t m;
		if (!isxdigit((unsigned char)p[6])) /* strtoull() would take space, a sign or another "0x" */
			return -1;
		errno = 0;
		m = strtoull(p + 6, &endp, 16);
		if (errno || strcmp(endp, ")") || m == 0 || m > F64_MANTISSA)
			return -1;
		m |= UINT64_C(0x7ff) << 52 | (uint64_t)(text[0] == '-') << 63;
		memcpy(out, &m, sizeof(*out));
		return 0;
	}
	errno = 0;
	*out = strtod(text, &endp);
	return *endp || errno == ERANGE ? -1 : 0;
}

static void put_f64(FILE *f, double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	if (v != v)
		fprintf(f, "{\"f64\": \"%snan(0x%" PRIx64 ")\"}", b >> 63 ? "-" : "", b & F64_MANTISSA);
	else
		fprintf(f, "{\"f64\": \"%a\"}", v);
}

static int typed(struct rd *r, struct entry *e, const char *start)
{
	char *k = NULL, *v = NULL, *file = NULL, *type = NULL, *order = NULL;
	uint64_t count = 0;
	int rc = 0, raw = 0, number = 0;

	r->p++;
	ws(r);
	while (!r->err && r->p < r->end && *r->p != '}') {
		free(k);
		k = str(r);
		expect(r, ':');
		ws(r);
		if (!k || r->err)
			break;
		if (r->p < r->end && *r->p == '"') {
			v = str(r);
			if (!v)
				break;
			if (!strcmp(k, "f64") || !strcmp(k, "u64") || !strcmp(k, "i64")) {
				char *endp = NULL;
				errno = 0;
				number = 1;
				if (k[0] == 'f') {
					e->kind = K_F64;
					if (get_f64(v, &e->f) < 0)
						rc = -1;
				} else if (k[0] == 'u') {
					e->kind = K_U64;
					e->u = strtoull(v, &endp, 10);
				} else {
					e->kind = K_INT;
					e->i = strtoll(v, &endp, 10);
				}
				if (endp && (*endp || errno == ERANGE))
					rc = -1;
			} else if (!strcmp(k, "blob")) { /* the last of duplicate keys counts */
				free(file);
				file = v, v = NULL;
			} else if (!strcmp(k, "type")) {
				free(type);
				type = v, v = NULL;
			} else if (!strcmp(k, "order")) {
				free(order);
				order = v, v = NULL;
			} else {
				raw = 1;
			}
			free(v);
			v = NULL;
		} else if (!strcmp(k, "count")) {
			count = strtoull(r->p, (char **)&r->p, 10);
		} else {
			raw = 1;
			skip(r, 1);
		}
		ws(r);
		if (r->p < r->end && *r->p == ',')
			r->p++;
		ws(r);
	}
	expect(r, '}');
	if (!r->err && file && type && order && !raw)
		rc = load_blob(e, file, type, order, count);
	else if (!r->err && (raw || file || type || order || !number)) {
		e->kind = K_RAW; /* an object we do not interpret ({} too) survives as it is */
		e->s = strndup(start, (size_t)(r->p - start));
	}
	free(k);
	free(file);
	free(type);
	free(order);
	return r->err ? -1 : rc;
}

static int value(struct rd *r, struct entry *e)
{
	const char *start;

	ws(r);
	start = r->p;
	if (r->p >= r->end)
		return -1;
	if (*r->p == '"') {
		e->kind = K_STR;
		e->s = str(r);
		return e->s ? 0 : -1;
	}
	if (*r->p == '{')
		return typed(r, e, start);
	if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
		char num[64], *endp;
		size_t n = strspn(r->p, "+-.0123456789eE");
		if (n >= sizeof(num))
			return -1;
		memcpy(num, r->p, n);
		num[n] = '\0';
		r->p += n;
		errno = 0;
		if (strpbrk(num, ".eE")) {
			e->kind = K_F64;
			e->f = strtod(num, &endp);
		} else {
			e->kind = K_INT;
			e->i = strtoll(num, &endp, 10);
			if (errno == ERANGE && num[0] != '-') {
				errno = 0;
				e->kind = K_U64;
				e->u = strtoull(num, &endp, 10);
			}
		}
		return *endp || errno == ERANGE ? -1 : 0;
	}
	if (r->end - r->p >= 4 && !strncmp(r->p, "true", 4)) {
		r->p += 4;
		e->kind = K_INT;
		e->i = 1;
		return 0;
	}
	if (r->end - r->p >= 5 && !strncmp(r->p, "false", 5)) {
		r->p += 5;
		e->kind = K_INT;
		e->i = 0;
		return 0;
	}
	skip(r, 0);
	e->kind = K_RAW;
	e->s = strndup(start, (size_t)(r->p - start));
	return r->err || !e->s ? -1 : 0;
}

static int parse_state(const char *text, size_t len)
{
	struct rd r = { text, text + len, 0 };
	char *k;

	/* JSON has no NUL byte; the reader's C string functions would stop at one. */
	if (memchr(text, '\0', len) || !expect(&r, '{'))
		return -1;
	ws(&r);
	while (!r.err && r.p < r.end && *r.p != '}') {
		k = str(&r);
		expect(&r, ':');
		if (!k || r.err) {
			free(k);
			return -1;
		}
		if (!strcmp(k, "values")) {
			expect(&r, '{');
			ws(&r);
			while (!r.err && r.p < r.end && *r.p != '}') {
				char *vk = str(&r);
				struct entry *e;
				expect(&r, ':');
				e = vk && !r.err ? slot(vk) : NULL;
				free(vk);
				if (!e || value(&r, e) < 0) {
					free(k);
					return -1;
				}
				ws(&r);
				if (r.p < r.end && *r.p == ',')
					r.p++;
				ws(&r);
			}
			expect(&r, '}');
		} else {
			skip(&r, 0);
		}
		free(k);
		ws(&r);
		if (r.p < r.end && *r.p == ',')
			r.p++;
		ws(&r);
	}
	return expect(&r, '}') && !r.err ? 0 : -1;
}

/* ---- public interface ---- */

int dispatch_init(void)
{
	struct sigaction sa;
	const char *fd = getenv("DISPATCH_PROGRESS_FD"), *fi = getenv("DISPATCH_FORK_INDEX");
	char *text = NULL;
	size_t len = 0;
	int r = 0;

	entries_drop();
	st.in_dir = getenv("DISPATCH_STATE");
	st.out_dir = getenv("DISPATCH_STATE_OUT");
	st.isa = getenv("DISPATCH_ISA");
	st.instance = getenv("DISPATCH_INSTANCE");
	st.fork_index = fi ? (int)strtol(fi, NULL, 10) : 0;
	st.progress_fd = fd ? (int)strtol(fd, NULL, 10) : -1;
	st.interval = getenv("DISPATCH_CHECKPOINT_INTERVAL") ? strtod(getenv("DISPATCH_CHECKPOINT_INTERVAL"), NULL) : 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!st.in_dir || !*st.in_dir)
		return 0;
	r = read_file(st.in_dir, STATE_FILE, &text, &len, STATE_MAX);
	if (r == 1)
		return 0; /* no state yet: a fresh start */
	if (r < 0 || parse_state(text, len) < 0) {
		fprintf(stderr, "dispatch: cannot read the state in '%s/%s'\n", st.in_dir, STATE_FILE);
		entries_drop(); /* no half-read values (a string not read is NULL) */
		r = -1;
	}
	free(text);
	return r;
}

const char *dispatch_isa(void)
{
	return st.isa ? st.isa : "unknown";
}

int dispatch_fork_index(void)
{
	return st.fork_index;
}

const char *dispatch_instance(void)
{
	return st.instance ? st.instance : "local";
}

int dispatch_has(const char *key)
{
	return find(key) != NULL;
}

int64_t dispatch_get_i64(const char *key, int64_t dflt)
{
	struct entry *e = find(key);

	if (e && e->kind == K_INT)
		return e->i;
	if (e && e->kind == K_U64 && e->u <= INT64_MAX)
		return (int64_t)e->u;
	return dflt;
}

uint64_t dispatch_get_u64(const char *key, uint64_t dflt)
{
	struct entry *e = find(key);

	if (e && e->kind == K_U64)
		return e->u;
	if (e && e->kind == K_INT && e->i >= 0)
		return (uint64_t)e->i;
	return dflt;
}

double dispatch_get_f64(const char *key, double dflt)
{
	struct entry *e = find(key);

	if (e && e->kind == K_F64)
		return e->f;
	if (e && e->kind == K_INT)
		return (double)e->i;
	return dflt;
}

const char *dispatch_get_str(const char *key, const char *dflt)
{
	struct entry *e = find(key);

	return e && e->kind == K_STR ? e->s : dflt;
}

long dispatch_get_blob(const char *key, enum dispatch_type type, void *out, size_t max)
{
	struct entry *e = find(key);

	if (!e || e->kind != K_BLOB)
		return 0;
	if (e->type != type)
		return -1;
	memcpy(out, e->data, (e->count < max ? e->count : max) * type_sizes[type]);
	return (long)e->count;
}

int dispatch_set_i64(const char *key, int64_t v)
{
	struct entry *e = slot(key);

	if (!e)
		return -1;
	e->kind = K_INT;
	e->i = v;
	return 0;
}

int dispatch_set_u64(const char *key, uint64_t v)
{
	struct entry *e = slot(key);

	if (!e)
		return -1;
	e->kind = K_U64;
	e->u = v;
	return 0;
}

int dispatch_set_f64(const char *key, double v)
{
	struct entry *e = slot(key);

	if (!e)
		return -1;
	e->kind = K_F64;
	e->f = v;
	return 0;
}

/* Whether s is UTF-8 as JSON readers take it: no overlong forms, surrogates or code points past U+10FFFF. */
static int utf8_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		uint32_t cp = n > 1 ? *p & (0x7f >> n) : *p;

		if (n == 0)
			return 0;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n;
	}
	return 1;
}

int dispatch_set_str(const char *key, const char *v)
{
	struct entry *e;

	/* The state is JSON, which the dispatcher reads: bytes that are not UTF-8 would make it unreadable. */
	if (!v || !utf8_ok(v))
		return -1;
	if (!(e = slot(key)) || !(e->s = strdup(v)))
		return -1;
	e->kind = K_STR;
	return 0;
}

int dispatch_set_blob(const char *key, enum dispatch_type type, const void *data, size_t count)
{
	struct entry *e;

	if ((unsigned)type >= sizeof(type_sizes) / sizeof(type_sizes[0]) || count > STATE_MAX / type_sizes[type])
		return -1;
	e = slot(key);
	if (!e || !(e->data = malloc(count * type_sizes[type] + 1)))
		return -1;
	memcpy(e->data, data, count * type_sizes[type]);
	e->kind = K_BLOB;
	e->type = type;
	e->count = count;
	return 0;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void channel(const char *line)
{
	size_t n = strlen(line);

	if (st.progress_fd >= 0)
		while (n > 0) {
			ssize_t w = write(st.progress_fd, line, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			line += w;
			n -= (size_t)w;
		}
}

void dispatch_progress(double fraction)
{
	char line[64];
	double now;

	if (st.progress_fd < 0)
		return;
	if (fraction < 0)
		fraction = 0;
	if (fraction > 1)
		fraction = 1;
	now = mono();
	/* At most ten reports a second, and only when something changed. */
	if (fraction != 1 && (now - st.last_report < 0.1 || fraction == st.last_progress))
		return;
	st.last_report = now;
	st.last_progress = fraction;
	snprintf(line, sizeof(line), "progress %.6f\n", fraction);
	channel(line);
}

int dispatch_checkpoint_requested(void)
{
	return checkpoint_flag != 0;
}

int dispatch_checkpoint_due(void)
{
	double now;

	if (st.interval <= 0)
		return 0;
	now = mono();
	if (st.last_checkpoint == 0)
		st.last_checkpoint = now; /* the interval counts from the start */
	return now - st.last_checkpoint >= st.interval;
}

static void put_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(f, "\\u%04x", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

static int write_blob(const struct entry *e, char *name, size_t name_len)
{
	char path[4096], tmp[4200];
	FILE *f;
	int ok;

	snprintf(name, name_len, "blobs/%s.bin", e->key);
	if (snprintf(path, sizeof(path), "%s/blobs", st.out_dir) >= (int)sizeof(path))
		return -1;
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s", st.out_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f)
		return -1;
	ok = fwrite(e->data, type_sizes[e->type], e->count, f) == e->count;
	ok &= fclose(f) == 0;
	return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/*
 * Writes OUT/state.json (and blobs) atomically: state.json is renamed last.
 * Not fsynced: the agent packs the state as soon as it is told of it and
 * the dispatcher stores the bundle durably; OUT/ only has to outlive the
 * object and the agent, not the machine (whose objects then continue
 * elsewhere from the last stored checkpoint).
 */
static int write_state(void)
{
	char path[4096], tmp[4200], name[KEY_MAX + 16];
	FILE *f;
	int ok = 1;

	if (!st.out_dir || !*st.out_dir)
		return 0; /* run by hand: nowhere to write */
	if (snprintf(path, sizeof(path), "%s/%s", st.out_dir, STATE_FILE) >= (int)sizeof(path))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	for (size_t i = 0; i < st.n; i++)
		if (st.e[i].kind == K_BLOB && write_blob(&st.e[i], name, sizeof(name)) < 0)
			return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "{\"dispatch-state\": 1, \"isa\": ");
	put_json_str(f, dispatch_isa());
	fprintf(f, ", \"values\": {");
	for (size_t i = 0; i < st.n; i++) {
		const struct entry *e = &st.e[i];
		fprintf(f, "%s\n  ", i ? "," : "");
		put_json_str(f, e->key);
		fputs(": ", f);
		switch (e->kind) {
		case K_INT: fprintf(f, "%" PRId64, e->i); break;
		case K_U64: fprintf(f, "{\"u64\": \"%" PRIu64 "\"}", e->u); break;
		case K_F64: put_f64(f, e->f); break;
		case K_STR: put_json_str(f, e->s); break;
		case K_RAW: fputs(e->s, f); break;
		case K_BLOB:
			snprintf(name, sizeof(name), "blobs/%s.bin", e->key);
			fprintf(f, "{\"blob\": \"%s\", \"type\": \"%s\", \"order\": \"%s\", \"count\": %zu}", name,
				type_names[e->type], host_is_big() ? "big" : "little", e->count);
			break;
		}
	}
	fprintf(f, "\n}}\n");
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, path) < 0)
		return -1;
	return 0;
}

int dispatch_checkpoint(void)
{
	char line[64];

	if (write_state() < 0) {
		fprintf(stderr, "dispatch: cannot write the state to '%s'\n", st.out_dir);
		return -1;
	}
	snprintf(line, sizeof(line), "checkpoint %d\n", ++st.checkpoints);
	channel(line);
	st.last_checkpoint = mono();
	return 0;
}

_Noreturn void dispatch_checkpoint_exit(void)
{
	if (dispatch_checkpoint() < 0)
		exit(1);
	exit(DISPATCH_EXIT_CHECKPOINTED);
}

_Noreturn void dispatch_finish(void)
{
	if (write_state() < 0) {
		fprintf(stderr, "dispatch: cannot write the result to '%s'\n", st.out_dir);
		exit(1);
	}
	dispatch_progress(1.0);
	channel("finished\n");
	exit(0);
}
