/* test_agent_protocol.c - start/stop messages are validated field by field; events are valid JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "protocol.h"

#define DIGEST_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static json_t *good_start(void)
{
	json_t *m = json_pack("{sisssssissss s[ss] sssi s{sisIsi}}", "seq", 7, "type", "start", "instance",
			      "i-3", "generation", 2, "artifact", DIGEST_A, "entry", "primes", "args", "0",
			      "100", "state", DIGEST_B, "fork_index", 1, "limits", "cpu_s", 10, "memory",
			      (json_int_t)1 << 30, "wall_s", 60);

	assert_non_null(m);
	return m;
}

/* Parses text; expects code and a message containing want (when not NULL). */
static void expect(const char *text, int code, const char *want)
{
	json_t *m = json_loads(text, JSON_DECODE_ANY, NULL);
	struct proto_msg pm;
	int r;

	assert_non_null(m);
	err_clear();
	r = proto_parse(&pm, m);
	if (r != code)
		fail_msg("'%s': got %d (%s), wanted %d", text, r, err_msg(), code);
	if (r == 0)
		proto_msg_release(&pm);
	if (want && !strstr(err_msg(), want))
		fail_msg("'%s': message '%s' does not mention '%s'", text, err_msg(), want);
	json_decref(m);
}

static size_t parsed_bundle; /* the state bundle's length of start_with()'s last good parse */

/* Parses good_start() with field set to v (stolen; NULL deletes it). */
static int start_with(const char *field, json_t *v)
{
	json_t *m = good_start();
	struct proto_msg pm;
	int r;

	if (v)
		json_object_set_new(m, field, v);
	else
		json_object_del(m, field);
	r = proto_parse(&pm, m);
	parsed_bundle = r == 0 ? pm.state_bundle.len : 0;
	if (r == 0)
		proto_msg_release(&pm);
	json_decref(m);
	return r;
}

static void test_protocol__good_start(void **state)
{
	json_t *m = good_start();
	struct proto_msg pm;

	(void)state;
	assert_int_equal(proto_parse(&pm, m), 0);
	assert_int_equal(pm.type, PROTO_START);
	assert_int_equal(pm.seq, 7);
	assert_string_equal(pm.instance, "i-3");
	assert_int_equal(pm.generation, 2);
	assert_string_equal(pm.artifact, DIGEST_A);
	assert_string_equal(pm.state, DIGEST_B);
	assert_string_equal(pm.entry, "primes");
	assert_int_equal(pm.nargs, 2);
	assert_string_equal(pm.args[0], "0");
	assert_string_equal(pm.args[1], "100");
	assert_null(pm.args[2]);
	assert_int_equal(pm.fork_index, 1);
	assert_int_equal(pm.limits.cpu_s, 10);
	assert_int_equal(pm.limits.memory, 1u << 30);
	assert_int_equal(pm.limits.wall_s, 60);
	proto_msg_release(&pm);
	proto_msg_release(&pm); /* twice is fine */
	json_decref(m);
}

static void test_protocol__optional_fields(void **state)
{
	struct proto_msg pm;
	json_t *m = json_pack("{sisssssiss ss sn}", "seq", 1, "type", "start", "instance", "i-1",
			      "generation", 1, "artifact", DIGEST_A, "entry", "x", "state");

	(void)state;
	assert_non_null(m);
	assert_int_equal(proto_parse(&pm, m), 0);
	assert_string_equal(pm.state, "");
	assert_int_equal(pm.nargs, 0);
	assert_null(pm.args[0]);
	assert_int_equal(pm.fork_index, 0);
	assert_int_equal(pm.limits.cpu_s + pm.limits.memory + pm.limits.wall_s, 0);
	proto_msg_release(&pm);
	json_decref(m);
}

static void test_protocol__good_stop(void **state)
{
	(void)state;
	expect("{\"seq\": 8, \"type\": \"stop\", \"instance\": \"i-3\", \"generation\": 2, \"mode\": "
	       "\"checkpoint\"}",
	       0, NULL);
	expect(
	    "{\"seq\": 8, \"type\": \"stop\", \"instance\": \"i-3\", \"generation\": 2, \"mode\": \"kill\"}",
	    0, NULL);
	expect(
	    "{\"seq\": 8, \"type\": \"stop\", \"instance\": \"i-3\", \"generation\": 2, \"mode\": \"pause\"}",
	    ERR_INVALID, "'mode'");
	expect("{\"seq\": 8, \"type\": \"stop\", \"instance\": \"i-3\", \"generation\": 2}", ERR_INVALID,
	       "'mode'");
	expect("{\"seq\": 8, \"type\": \"stop\", \"instance\": \"i-3\", \"generation\": 2, \"mode\": 1}",
	       ERR_INVALID, "'mode'");
}

static void test_protocol__missing_fields(void **state)
{
	static const char *const required[] = {"seq", "type", "instance", "generation", "artifact", "entry"};

	(void)state;
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		err_clear();
		assert_int_equal(start_with(required[i], NULL), ERR_INVALID);
		if (!strstr(err_msg(), required[i]))
			fail_msg("missing '%s': message '%s'", required[i], err_msg());
	}
}

static void test_protocol__wrong_types(void **state)
{
	(void)state;
	assert_int_equal(start_with("generation", json_string("2")), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "message 7: 'generation'"));
	assert_int_equal(start_with("generation", json_integer(-1)), ERR_INVALID);
	assert_int_equal(start_with("generation", json_real(2.0)), ERR_INVALID);
	assert_int_equal(start_with("instance", json_integer(3)), ERR_INVALID);
	assert_int_equal(start_with("entry", json_true()), ERR_INVALID);
	assert_int_equal(start_with("args", json_string("0 100")), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "'args'"));
	assert_int_equal(start_with("args", json_pack("[si]", "a", 1)), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "'args[1]'"));
	assert_int_equal(start_with("fork_index", json_string("0")), ERR_INVALID);
	assert_int_equal(start_with("fork_index", json_integer(INT64_MAX)), ERR_INVALID);
	assert_int_equal(start_with("limits", json_array()), ERR_INVALID);
	assert_int_equal(start_with("limits", json_pack("{si}", "cpu_s", -5)), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "limits"));
	assert_int_equal(start_with("limits", json_pack("{ss}", "memory", "1G")), ERR_INVALID);
	assert_int_equal(start_with("limits", json_null()), 0);
	assert_int_equal(start_with("args", json_null()), 0);
	expect("[1, 2]", ERR_INVALID, "expected an object");
	expect("null", ERR_INVALID, "expected an object");
	expect("{\"seq\": \"7\", \"type\": \"start\"}", ERR_INVALID, "'seq'");
	expect("{\"seq\": 1, \"type\": 5}", ERR_INVALID, "'type'");
}

static void test_protocol__bad_digests(void **state)
{
	static const char *const bad[] = {
	    "",
	    "0123",
	    DIGEST_A "0",
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	    "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    "../../etc/passwd",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(start_with("artifact", json_string(bad[i])), ERR_INVALID);
		assert_non_null(strstr(err_msg(), "'artifact': expected a sha256 digest"));
		assert_int_equal(start_with("state", json_string(bad[i])), ERR_INVALID);
		assert_non_null(strstr(err_msg(), "'state'"));
	}
	assert_int_equal(start_with("artifact", json_null()), ERR_INVALID);
	assert_int_equal(start_with("state", json_integer(0)), ERR_INVALID);
}

/* A state bundle carried in the start message: decoded and bounded; one that cannot be used is left out. */
static size_t bundle_len(const char *field, json_t *v)
{
	assert_int_equal(start_with(field, v), 0);
	return parsed_bundle;
}

static void test_protocol__state_bundle(void **state)
{
	json_t *m = good_start();
	struct proto_msg pm;
	size_t n = (PROTO_INLINE_MAX + 2) / 3 * 4; /* the base64 of PROTO_INLINE_MAX bytes */
	char *big = malloc(n + 1);

	(void)state;
	json_object_set_new(m, "state_bundle", json_string("Zm9vYmFy"));
	assert_int_equal(proto_parse(&pm, m), 0);
	assert_int_equal(pm.state_bundle.len, 6);
	assert_memory_equal(pm.state_bundle.data, "foobar", 6);
	proto_msg_release(&pm);
	assert_null(pm.state_bundle.data);
	/* Without the state it would be: left out, the message is still good. */
	json_object_del(m, "state");
	assert_int_equal(proto_parse(&pm, m), 0);
	assert_int_equal(pm.state_bundle.len, 0);
	proto_msg_release(&pm);
	json_decref(m);
	assert_int_equal(bundle_len("state_bundle", json_string("Zm9v!mFy")), 0);
	assert_int_equal(bundle_len("state_bundle", json_integer(3)), 0);
	assert_int_equal(bundle_len("state_bundle", json_null()), 0);
	/* Exactly PROTO_INLINE_MAX bytes (65535 in whole groups, one in a padded one), then 2 more. */
	memset(big, 'A', n);
	big[n] = '\0';
	big[n - 2] = big[n - 1] = '=';
	assert_int_equal(bundle_len("state_bundle", json_string(big)), PROTO_INLINE_MAX);
	big[n - 2] = big[n - 1] = 'A';
	assert_int_equal(bundle_len("state_bundle", json_string(big)), 0);
	free(big);
}

static void test_protocol__names_that_would_escape(void **state)
{
	static const char *const bad_ids[] = {
	    "",
	    "../x",
	    ".hidden",
	    "a/b",
	    "i 3",
	    "i-3\n",
	    "0123456789012345678901234567890123456789012345678901234567890123456789"};
	static const char *const bad_entries[] = {"", ".", "..", "../x", "bin/x", "/bin/sh"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		assert_int_equal(start_with("instance", json_string(bad_ids[i])), ERR_INVALID);
	for (size_t i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++)
		assert_int_equal(start_with("entry", json_string(bad_entries[i])), ERR_INVALID);
	assert_int_equal(start_with("entry", json_stringn("pri\0mes", 7)), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "NUL"));
	assert_int_equal(start_with("args", json_pack("[o]", json_stringn("a\0b", 3))), ERR_INVALID);
	assert_true(proto_id_is_valid("i-3"));
	assert_true(proto_id_is_valid("job.7_x-1"));
}

static void test_protocol__bounded_args(void **state)
{
	json_t *many = json_array(), *big = json_array();
	char *chunk = malloc(100001);

	(void)state;
	assert_non_null(chunk);
	memset(chunk, 'x', 100000);
	chunk[100000] = '\0';
	for (int i = 0; i <= PROTO_ARGS_MAX; i++)
		json_array_append_new(many, json_string("a"));
	for (int i = 0; i < 3; i++)
		json_array_append_new(big, json_string(chunk));
	assert_int_equal(start_with("args", many), ERR_INVALID);
	assert_int_equal(start_with("args", big), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "256 KiB"));
	free(chunk);
}

static void test_protocol__unknown_type_is_unsupported(void **state)
{
	(void)state;
	expect("{\"seq\": 3, \"type\": \"reboot\", \"instance\": \"i-1\"}", ERR_UNSUPPORTED, "'reboot'");
}

/* Many malformed messages: every one is an error with a message, none crashes. */
static void test_protocol__garbage_never_crashes(void **state)
{
	static const char *const garbage[] = {
	    "{}",
	    "{\"seq\": 1}",
	    "{\"seq\": 1, \"type\": \"start\"}",
	    "{\"seq\": 1, \"type\": \"start\", \"instance\": null}",
	    "{\"seq\": 1, \"type\": \"start\", \"instance\": \"i\", \"generation\": {}}",
	    "{\"seq\": 1, \"type\": \"start\", \"instance\": \"i\", \"generation\": 1, \"artifact\": []}",
	    "{\"seq\": 1, \"type\": \"start\", \"instance\": \"i\", \"generation\": 1, \"artifact\": "
	    "\"" DIGEST_A "\", \"entry\": null}",
	    "{\"seq\": 1, \"type\": \"stop\", \"instance\": \"i\", \"generation\": -4, \"mode\": \"kill\"}",
	    "{\"seq\": -1, \"type\": \"stop\"}",
	    "{\"seq\": 1e3, \"type\": \"stop\"}",
	    "\"start\"",
	    "true",
	    "3.5",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		json_t *m = json_loads(garbage[i], JSON_DECODE_ANY, NULL);
		struct proto_msg pm;

		assert_non_null(m);
		err_clear();
		assert_int_equal(proto_parse(&pm, m), ERR_INVALID);
		assert_string_not_equal(err_msg(), "unknown error");
		json_decref(m);
	}
}

static void test_protocol__events(void **state)
{
	json_t *e;
	char bad[] = "ok \xff\xfe nul:\0: cut \xe2\x82";

	(void)state;
	e = proto_event_exit(85, 0, DIGEST_A, NULL);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "kind")), "exit");
	assert_int_equal(json_integer_value(json_object_get(e, "code")), 85);
	assert_string_equal(json_string_value(json_object_get(e, "state")), DIGEST_A);
	assert_null(json_object_get(e, "error"));
	json_decref(e);
	e = proto_event_exit(-1, 0, NULL, "cannot fetch");
	assert_true(json_is_null(json_object_get(e, "state")));
	assert_string_equal(json_string_value(json_object_get(e, "error")), "cannot fetch");
	json_decref(e);
	e = proto_event_log(bad, sizeof(bad) - 1);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "text")), "ok ?? nul:?: cut ??");
	json_decref(e);
	e = proto_event_progress(2.5);
	assert_true(json_real_value(json_object_get(e, "value")) == 1.0);
	json_decref(e);
	e = proto_event_checkpoint(DIGEST_B);
	assert_string_equal(json_string_value(json_object_get(e, "state")), DIGEST_B);
	json_decref(e);
}

static void test_protocol__utf8_clean(void **state)
{
	char a[] = "h\xc3\xa9llo";	   /* é: valid */
	char b[] = "x\xe2\x82";		   /* € cut short */
	char c[] = "\xc0\xaf\xed\xa0\x80"; /* overlong '/', a surrogate */
	char d[] = "\xf0\x9f\x98\x80";	   /* an emoji */

	(void)state;
	assert_int_equal(proto_utf8_clean(a, strlen(a), 0), strlen(a));
	assert_string_equal(a, "h\xc3\xa9llo");
	assert_int_equal(proto_utf8_clean(b, 3, 1), 1); /* held back: more may come */
	assert_int_equal(proto_utf8_clean(b, 3, 0), 3);
	assert_string_equal(b, "x??");
	assert_int_equal(proto_utf8_clean(c, 5, 0), 5);
	assert_string_equal(c, "?????");
	assert_int_equal(proto_utf8_clean(d, 4, 1), 4);
	assert_int_equal(proto_utf8_clean(d, 2, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protocol__good_start),
		cmocka_unit_test(test_protocol__optional_fields),
		cmocka_unit_test(test_protocol__good_stop),
		cmocka_unit_test(test_protocol__missing_fields),
		cmocka_unit_test(test_protocol__wrong_types),
		cmocka_unit_test(test_protocol__bad_digests),
		cmocka_unit_test(test_protocol__state_bundle),
		cmocka_unit_test(test_protocol__names_that_would_escape),
		cmocka_unit_test(test_protocol__bounded_args),
		cmocka_unit_test(test_protocol__unknown_type_is_unsupported),
		cmocka_unit_test(test_protocol__garbage_never_crashes),
		cmocka_unit_test(test_protocol__events),
		cmocka_unit_test(test_protocol__utf8_clean),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
