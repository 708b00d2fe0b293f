/* protocol.c - validating start/stop messages and building events. */
#include "protocol.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* A field error: "message 7: 'artifact': expected a sha256 digest". */
#define BAD(m, field, what)                                                                                  \
	err_set(ERR_INVALID, "message %llu: '%s': %s", (unsigned long long)(m)->seq, field, what)

int proto_id_is_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= PROTO_ID_MAX && s[0] != '.' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

void proto_msg_release(struct proto_msg *m)
{
	if (!m)
		return;
	buf_release(&m->state_bundle);
	if (!m->args)
		return;
	for (size_t i = 0; i < m->nargs; i++)
		free(m->args[i]);
	free(m->args);
	m->args = NULL;
	m->nargs = 0;
}

/* A string field without NUL bytes, at most max bytes; dflt when absent (NULL: required). */
static int get_str(const struct proto_msg *m, json_t *o, const char *field, size_t max, const char *dflt,
		   const char **out)
{
	json_t *v = json_object_get(o, field);

	if (!v && dflt) {
		*out = dflt;
		return 0;
	}
	if (!v)
		return BAD(m, field, "missing");
	if (!json_is_string(v))
		return BAD(m, field, "expected a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return BAD(m, field, "contains a NUL byte");
	if (json_string_length(v) > max)
		return BAD(m, field, "too long");
	*out = json_string_value(v);
	return 0;
}

/* A non-negative integer field; dflt when absent and optional. */
static int get_uint(const struct proto_msg *m, json_t *o, const char *field, int optional, uint64_t *out)
{
	json_t *v = json_object_get(o, field);

	if (!v && optional) {
		*out = 0;
		return 0;
	}
	if (!v)
		return BAD(m, field, "missing");
	if (!json_is_integer(v))
		return BAD(m, field, "expected an integer");
	if (json_integer_value(v) < 0)
		return BAD(m, field, "must not be negative");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_digest(const struct proto_msg *m, json_t *o, const char *field, int nullable, char *out)
{
	json_t *v = json_object_get(o, field);

	if (nullable && (!v || json_is_null(v))) {
		out[0] = '\0';
		return 0;
	}
	if (!v)
		return BAD(m, field, "missing");
	if (!json_is_string(v) || !digest_is_valid(json_string_value(v)))
		return BAD(m, field, "expected a sha256 digest (64 lowercase hex characters)");
	memcpy(out, json_string_value(v), DIGEST_HEX_LEN + 1);
	return 0;
}

static int parse_args(struct proto_msg *m, json_t *o)
{
	json_t *a = json_object_get(o, "args"), *v;
	size_t i, total = 0;

	if (!a || json_is_null(a))
		a = NULL;
	else if (!json_is_array(a))
		return BAD(m, "args", "expected an array of strings");
	if (a && json_array_size(a) > PROTO_ARGS_MAX)
		return BAD(m, "args", "too many arguments");
	m->args = calloc((a ? json_array_size(a) : 0) + 1, sizeof(*m->args));
	if (!m->args)
		return err_set(ERR_NOMEM, "out of memory");
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			return err_set(ERR_INVALID, "message %llu: 'args[%zu]': expected a string",
				       (unsigned long long)m->seq, i);
		if (strlen(json_string_value(v)) != json_string_length(v))
			return err_set(ERR_INVALID, "message %llu: 'args[%zu]': contains a NUL byte",
				       (unsigned long long)m->seq, i);
		total += json_string_length(v) + 1;
		if (total > PROTO_ARGS_BYTES)
			return BAD(m, "args", "longer than 256 KiB in total");
		m->args[i] = strdup(json_string_value(v));
		if (!m->args[i])
			return err_set(ERR_NOMEM, "out of memory");
		m->nargs = i + 1;
	}
	return 0;
}

/*
 * "state_bundle": the state's bytes, base64, at most PROTO_INLINE_MAX;
 * checked against "state" when used. Only a shortcut: one that is not a
 * string, not base64, too large or without "state" is left out (empty),
 * and the state is fetched by its digest as when there is none.
 */
static void get_bundle(struct proto_msg *m, json_t *o)
{
	json_t *v = json_object_get(o, "state_bundle");

	buf_init(&m->state_bundle, PROTO_INLINE_MAX);
	if (!json_is_string(v) || !m->state[0] ||
	    buf_append_unbase64(&m->state_bundle, json_string_value(v), json_string_length(v)) < 0)
		buf_release(&m->state_bundle);
}

static int parse_start(struct proto_msg *m, json_t *o)
{
	json_t *lim = json_object_get(o, "limits");
	const char *entry;
	uint64_t fork_index;
	int r;

	if ((r = get_digest(m, o, "artifact", 0, m->artifact)) < 0 ||
	    (r = get_digest(m, o, "state", 1, m->state)) < 0 ||
	    (r = get_str(m, o, "entry", PROTO_ENTRY_MAX, NULL, &entry)) < 0 ||
	    (r = get_uint(m, o, "fork_index", 1, &fork_index)) < 0 ||
	    (r = get_uint(m, o, "checkpoint_s", 1, &m->checkpoint_s)) < 0)
		return r;
	if (m->checkpoint_s > 86400)
		return BAD(m, "checkpoint_s", "more than a day");
	if (!*entry || strchr(entry, '/') || !strcmp(entry, ".") || !strcmp(entry, ".."))
		return BAD(m, "entry", "expected a file name");
	if (fork_index > INT32_MAX)
		return BAD(m, "fork_index", "too large");
	get_bundle(m, o);
	memcpy(m->entry, entry, strlen(entry) + 1);
	m->fork_index = (int64_t)fork_index;
	if (lim && !json_is_null(lim)) {
		if (!json_is_object(lim))
			return BAD(m, "limits", "expected an object");
		if ((r = get_uint(m, lim, "cpu_s", 1, &m->limits.cpu_s)) < 0 ||
		    (r = get_uint(m, lim, "memory", 1, &m->limits.memory)) < 0 ||
		    (r = get_uint(m, lim, "wall_s", 1, &m->limits.wall_s)) < 0)
			return err_prefix(r, "limits");
	}
	return parse_args(m, o);
}

int proto_parse(struct proto_msg *out, json_t *msg)
{
	struct proto_msg m = {0};
	const char *type, *id, *mode;
	int r;

	if (!json_is_object(msg))
		return err_set(ERR_INVALID, "message: expected an object");
	if ((r = get_uint(&m, msg, "seq", 0, &m.seq)) < 0)
		return err_set(ERR_INVALID, "message: 'seq': expected a non-negative integer");
	if ((r = get_str(&m, msg, "type", 32, NULL, &type)) < 0)
		return r;
	if (!strcmp(type, "start"))
		m.type = PROTO_START;
	else if (!strcmp(type, "stop"))
		m.type = PROTO_STOP;
	else
		return err_set(ERR_UNSUPPORTED, "message %llu: unknown type '%s'", (unsigned long long)m.seq,
			       type);
	if ((r = get_str(&m, msg, "instance", PROTO_ID_MAX, NULL, &id)) < 0)
		return r;
	if (!proto_id_is_valid(id))
		return BAD(&m, "instance", "expected an instance id");
	memcpy(m.instance, id, strlen(id) + 1);
	if ((r = get_uint(&m, msg, "generation", 0, &m.generation)) < 0)
		return r;
	if (m.type == PROTO_START) {
		if ((r = parse_start(&m, msg)) < 0)
			goto out;
	} else {
		if ((r = get_str(&m, msg, "mode", 32, NULL, &mode)) < 0)
			goto out;
		if (!strcmp(mode, "checkpoint"))
			m.mode = PROTO_STOP_CHECKPOINT;
		else if (!strcmp(mode, "kill"))
			m.mode = PROTO_STOP_KILL;
		else
			r = BAD(&m, "mode", "expected \"checkpoint\" or \"kill\"");
	}
out:
	if (r < 0) {
		proto_msg_release(&m);
		return r;
	}
	*out = m;
	return 0;
}

/* ---- events ---- */

json_t *proto_event_running(void)
{
	return json_pack("{ss}", "kind", "running");
}

json_t *proto_event_progress(double value)
{
	if (!(value >= 0))
		value = 0;
	if (value > 1)
		value = 1;
	return json_pack("{sssf}", "kind", "progress", "value", value);
}

json_t *proto_event_log(const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	json_t *ev;

	if (!copy)
		return NULL;
	memcpy(copy, text, len);
	len = proto_utf8_clean(copy, len, 0);
	ev = json_pack("{ssss%}", "kind", "log", "text", copy, len);
	free(copy);
	return ev;
}

json_t *proto_event_checkpoint(const char *state_digest)
{
	return json_pack("{ssss}", "kind", "checkpoint", "state", state_digest);
}

json_t *proto_event_exit(int code, int signo, const char *state_digest, const char *error)
{
	return json_pack("{sssisisoso*}", "kind", "exit", "code", code, "signal", signo, "state",
			 state_digest ? json_string(state_digest) : json_null(), "error",
			 error ? json_string(error) : NULL);
}

/* The length of the valid sequence starting at s (n bytes available), 0 when invalid, -1 when cut short. */
static int utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int need;

	if (c >= 0x01 && c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing above U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (int i = 1; i <= need; i++) {
		if ((size_t)i >= n)
			return -1;
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0;
	}
	return need + 1;
}

size_t proto_utf8_clean(char *s, size_t len, int partial)
{
	unsigned char *p = (unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		int k = utf8_seq(p + i, len - i);
		if (k > 0) {
			i += (size_t)k;
		} else if (k < 0 && partial) {
			return i;
		} else {
			p[i++] = '?';
		}
	}
	return len;
}
