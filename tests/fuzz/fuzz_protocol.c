/*
 * fuzz_protocol.c - proto_parse() on messages from the dispatcher, and
 * proto_utf8_clean() and proto_event_log() on an object's output.
 *
 * The input is loaded as JSON (any value, NUL escapes allowed: the
 * parser's own checks must refuse them). When it loads, proto_parse()
 * must keep the promises of protocol.h:
 *
 *   - a success has a valid instance id (checked here against the rule,
 *     not with proto_id_is_valid()), the instance, seq and generation of
 *     the document; a start has lowercase sha256 digests (the state's may
 *     be empty), an entry that is one file name below bin/, the document's
 *     arguments within PROTO_ARGS_MAX and PROTO_ARGS_BYTES, a
 *     NULL-terminated vector, and a state bundle only when there is a
 *     state, of the length its base64 decodes to and at most
 *     PROTO_INLINE_MAX; a stop has a mode;
 *   - a failure is ERR_INVALID, ERR_UNSUPPORTED (only for a type that is
 *     a string other than "start" and "stop") or ERR_NOMEM, with a
 *     message, and leaves *out alone;
 *   - proto_msg_release() frees everything, twice is harmless.
 *
 * Every input, JSON or not, is also log text from an object: cleaned, it
 * must be valid UTF-8 without NUL, of the same length, changed only by
 * '?'s; cleaned as a stream (partial), it may hold back only an
 * incomplete character at the end; and its log event must be made.
 */
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "fuzz.h"
#include "protocol.h"

static int is_digest(const char *s)
{
	return strlen(s) == DIGEST_HEX_LEN && strspn(s, "0123456789abcdef") == DIGEST_HEX_LEN;
}

static void check_id(const char *id, json_t *doc)
{
	size_t n = strlen(id);

	if (n == 0 || n > PROTO_ID_MAX || id[0] == '.' ||
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		fuzz_fail("instance '%s' accepted", id);
	if (strcmp(id, json_string_value(json_object_get(doc, "instance"))))
		fuzz_fail("instance '%s' is not the document's", id);
}

/* The length "state_bundle" decodes to, when the parser may take it. */
static size_t bundle_size(json_t *doc)
{
	json_t *v = json_object_get(doc, "state_bundle");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s || n % 4)
		return 0;
	return n / 4 * 3 - (n && s[n - 1] == '=') - (n > 1 && s[n - 2] == '=');
}

static void check_args(const struct proto_msg *m, json_t *doc)
{
	json_t *a = json_object_get(doc, "args");
	size_t bytes = 0;

	if (!m->args || m->args[m->nargs])
		fuzz_fail("args: not a NULL-terminated vector of %zu", m->nargs);
	if (m->nargs > PROTO_ARGS_MAX || m->nargs != json_array_size(a))
		fuzz_fail("args: %zu accepted, the document has %zu", m->nargs, json_array_size(a));
	for (size_t i = 0; i < m->nargs; i++) {
		json_t *v = json_array_get(a, i);

		if (!m->args[i] || json_string_length(v) != strlen(m->args[i]) ||
		    memcmp(m->args[i], json_string_value(v), json_string_length(v)))
			fuzz_fail("args[%zu]: not the document's", i);
		bytes += strlen(m->args[i]) + 1;
	}
	if (bytes > PROTO_ARGS_BYTES)
		fuzz_fail("args: %zu bytes accepted", bytes);
}

static void check_start(const struct proto_msg *m, json_t *doc)
{
	const struct buf *b = &m->state_bundle;

	if (!is_digest(m->artifact) || (m->state[0] && !is_digest(m->state)))
		fuzz_fail("digests '%s', '%s' accepted", m->artifact, m->state);
	if (strcmp(m->artifact, json_string_value(json_object_get(doc, "artifact"))))
		fuzz_fail("artifact is not the document's");
	if (!m->entry[0] || strchr(m->entry, '/') || !strcmp(m->entry, ".") || !strcmp(m->entry, ".."))
		fuzz_fail("entry '%s' accepted", m->entry);
	if (strcmp(m->entry, json_string_value(json_object_get(doc, "entry"))))
		fuzz_fail("entry is not the document's");
	check_args(m, doc);
	if (b->len > PROTO_INLINE_MAX || (b->len && !b->data))
		fuzz_fail("state bundle of %zu bytes accepted", b->len);
	if (b->len && (!m->state[0] || b->len != bundle_size(doc)))
		fuzz_fail("state bundle of %zu bytes, state '%s'", b->len, m->state);
	if (m->fork_index < 0 || m->fork_index > INT32_MAX || m->checkpoint_s > 86400)
		fuzz_fail("fork_index %lld, checkpoint_s %llu accepted", (long long)m->fork_index,
			  (unsigned long long)m->checkpoint_s);
}

static void check_parse(json_t *doc)
{
	struct proto_msg m, before;
	const char *type = json_string_value(json_object_get(doc, "type"));
	int r;

	memset(&m, 0xa5, sizeof(m));
	memcpy(&before, &m, sizeof(m));
	err_clear();
	r = proto_parse(&m, doc);
	fuzz_report(r);
	if (r < 0) {
		if (r != ERR_INVALID && r != ERR_UNSUPPORTED && r != ERR_NOMEM)
			fuzz_fail("unexpected error %d: %s", r, err_msg());
		if (r == ERR_UNSUPPORTED && (!type || !strcmp(type, "start") || !strcmp(type, "stop")))
			fuzz_fail("ERR_UNSUPPORTED for type '%s'", type ? type : "(none)");
		if (!fuzz_has_message())
			fuzz_fail("error %d without a message", r);
		if (memcmp(&m, &before, sizeof(m)))
			fuzz_fail("*out written on failure");
		return;
	}
	check_id(m.instance, doc);
	if (!json_is_integer(json_object_get(doc, "seq")) ||
	    (json_int_t)m.seq != json_integer_value(json_object_get(doc, "seq")) ||
	    (json_int_t)m.generation != json_integer_value(json_object_get(doc, "generation")))
		fuzz_fail("seq or generation is not the document's");
	if (m.type == PROTO_START && !strcmp(type, "start"))
		check_start(&m, doc);
	else if (m.type != PROTO_STOP || strcmp(type, "stop") ||
		 (m.mode != PROTO_STOP_CHECKPOINT && m.mode != PROTO_STOP_KILL) || m.args ||
		 m.state_bundle.data)
		fuzz_fail("type %d, mode %d for a '%s' message", (int)m.type, (int)m.mode, type);
	proto_msg_release(&m);
	proto_msg_release(&m);
}

static void check_log(const uint8_t *data, size_t size)
{
	char *a = malloc(size + 1), *b = malloc(size + 1);
	json_t *ev;
	size_t n;

	if (!a || !b)
		fuzz_fail("out of memory");
	memcpy(a, data, size);
	memcpy(b, data, size);
	if ((n = proto_utf8_clean(a, size, 0)) != size)
		fuzz_fail("cleaning kept %zu of %zu bytes", n, size);
	if (!fuzz_utf8_valid(a, size) || memchr(a, '\0', size))
		fuzz_fail("cleaned text is not UTF-8 without NUL");
	for (size_t i = 0; i < size; i++)
		if (a[i] != (char)data[i] && a[i] != '?')
			fuzz_fail("byte %zu changed to 0x%02x", i, (unsigned char)a[i]);
	n = proto_utf8_clean(b, size, 1);
	if (n > size || size - n > 3 || memcmp(a, b, n))
		fuzz_fail("a stream keeps %zu of %zu bytes, or cleans them otherwise", n, size);
	if (!(ev = proto_event_log((const char *)data, size)))
		fuzz_fail("no log event");
	if (json_string_length(json_object_get(ev, "text")) != size)
		fuzz_fail("the log event has %zu bytes of %zu", json_string_length(json_object_get(ev, "text")),
			  size);
	json_decref(ev);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

	if (doc)
		check_parse(doc);
	json_decref(doc);
	check_log(data, size);
	return 0;
}
