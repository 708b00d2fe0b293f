/* test_sdk.c - the object SDK's setters and getters in one process (no dispatcher, no state files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"

static int setup(void **state)
{
	(void)state;
	/* Run by hand: no DISPATCH_* variables, an empty state. */
	unsetenv("DISPATCH_STATE");
	unsetenv("DISPATCH_STATE_OUT");
	unsetenv("DISPATCH_PROGRESS_FD");
	return dispatch_init();
}

/* A string that is not UTF-8 would make state.json unreadable to the dispatcher: refused, the old value kept. */
static void test_sdk__strings_must_be_utf8(void **state)
{
	static const char *const bad[] = {
		"\xff", "a\x80", "\xc3", "\xc0\xaf" /* overlong '/' */, "\xed\xa0\x80" /* a surrogate */,
		"\xf4\x90\x80\x80" /* past U+10FFFF */, "\xe2\x82" /* cut */,
	};

	(void)state;
	assert_int_equal(dispatch_set_str("name", "grüße, 東京, 🙂"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(dispatch_set_str("name", bad[i]), -1);
		assert_string_equal(dispatch_get_str("name", ""), "grüße, 東京, 🙂");
		assert_int_equal(dispatch_set_str("other", bad[i]), -1);
		assert_false(dispatch_has("other"));
	}
	assert_int_equal(dispatch_set_str("name", ""), 0);
	assert_string_equal(dispatch_get_str("name", "x"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_sdk__strings_must_be_utf8, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
