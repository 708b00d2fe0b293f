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

/* RFC 4648's test vectors, both ways; sizes across the coder's chunk boundary; what is not base64. */
static void test_buf__base64(void **state)
{
	static const char *const vec[][2] = {{"", ""},	       {"f", "Zg=="},	      {"fo", "Zm8="},
					      {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
					      {"foobar", "Zm9vYmFy"}};
	static const char *const bad[] = {"Zg=", "Zg", "Z===", "====", "Zm9v\n", "Zm 9v", "Zm=v", "Zm9*", "Zg==Zg=="};
	struct buf b = BUF_INIT(1 << 20), d = BUF_INIT(1 << 20);
	unsigned char bytes[10000];

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		buf_reset(&b);
		buf_reset(&d);
		assert_int_equal(buf_append_base64(&b, vec[i][0], strlen(vec[i][0])), 0);
		assert_string_equal(buf_str(&b), vec[i][1]);
		assert_int_equal(buf_append_unbase64(&d, b.data ? b.data : "", b.len), 0);
		assert_int_equal(d.len, strlen(vec[i][0]));
		assert_memory_equal(buf_str(&d), vec[i][0], d.len);
	}
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(i * 7919 >> 3);
	for (size_t n = 3060; n < 3090; n++) {
		buf_reset(&b);
		buf_reset(&d);
		assert_int_equal(buf_append_base64(&b, bytes, n), 0);
		assert_int_equal(b.len, (n + 2) / 3 * 4);
		assert_int_equal(buf_append_unbase64(&d, b.data, b.len), 0);
		assert_int_equal(d.len, n);
		assert_memory_equal(d.data, bytes, n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&d);
		assert_int_equal(buf_append_unbase64(&d, bad[i], strlen(bad[i])), ERR_INVALID);
		assert_int_equal(d.len, 0);
	}
	/* The cap holds for both. */
	buf_release(&b);
	buf_init(&b, 7);
	assert_int_equal(buf_append_base64(&b, "foobar", 6), ERR_LIMIT);
	assert_int_equal(buf_append_unbase64(&b, "Zm9vYmFyZm9v", 12), ERR_LIMIT);
	buf_release(&b);
	buf_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__append_and_printf),
		cmocka_unit_test(test_buf__cap_is_enforced),
		cmocka_unit_test(test_buf__grows_past_initial_alloc),
		cmocka_unit_test(test_buf__detach_leaves_empty),
		cmocka_unit_test(test_buf__base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
