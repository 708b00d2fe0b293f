/* test_buf.c - the bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "error.h"

static void test_buf__append_and_printf(void **state)
{
	struct buf b = BUF_INIT(1024);

	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_puts(&b, "abc"), 0);
	assert_int_equal(buf_printf(&b, "-%d-", 42), 0);
	assert_string_equal(buf_str(&b), "abc-42-");
	assert_int_equal(b.len, 7);
	buf_release(&b);
}

static void test_buf__cap_is_enforced(void **state)
{
	struct buf b = BUF_INIT(8);

	assert_int_equal(buf_puts(&b, "12345678"), 0);
	assert_int_equal(buf_putc(&b, 'x'), ERR_LIMIT);
	assert_string_equal(buf_str(&b), "12345678");
	assert_int_equal(buf_printf(&b, "%s", "y"), ERR_LIMIT);
	assert_int_equal(b.len, 8);
	buf_release(&b);
}

static void test_buf__grows_past_initial_alloc(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	char chunk[1000];

	memset(chunk, 'z', sizeof(chunk));
	for (int i = 0; i < 500; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 500000);
	assert_int_equal(b.data[b.len], '\0');
	buf_release(&b);
}

static void test_buf__detach_leaves_empty(void **state)
{
	struct buf b = BUF_INIT(64);
	size_t n = 0;
	char *s;

	buf_puts(&b, "hello");
	s = buf_detach(&b, &n);
	assert_string_equal(s, "hello");
	assert_int_equal(n, 5);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__append_and_printf),
		cmocka_unit_test(test_buf__cap_is_enforced),
		cmocka_unit_test(test_buf__grows_past_initial_alloc),
		cmocka_unit_test(test_buf__detach_leaves_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
