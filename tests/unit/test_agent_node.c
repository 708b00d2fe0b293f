/* test_agent_node.c - the node's identity in node.json and its message sequence number in seq. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "fsutil.h"
#include "node.h"

#define URL "https://198.18.0.1:7443"

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	char *d = NULL;

	assert_int_equal(fs_mkdtemp(&d, base ? base : "/tmp", "test-node"), 0);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	fs_rm_rf(*state);
	free(*state);
	return 0;
}

/* Handled messages move seq on in WORK/seq; node.json keeps the identity from the join. */
static void test_node__seq_is_saved_apart_from_the_identity(void **state)
{
	const char *dir = *state;
	struct node n = {.id = "n-3", .token = "tok-abcdefghijklmnop", .seq = 4}, got;

	assert_int_equal(node_save(&n, dir, URL), 0);
	n.seq = 17;
	assert_int_equal(node_save_seq(&n, dir), 0);
	assert_int_equal(node_load(&got, dir, URL), 0);
	assert_string_equal(got.id, "n-3");
	assert_string_equal(got.token, "tok-abcdefghijklmnop");
	assert_int_equal(got.seq, 17);
}

/* A seq of another identity (the node joined anew) is not this one's. */
static void test_node__seq_of_another_identity_is_ignored(void **state)
{
	const char *dir = *state;
	struct node old = {.id = "n-3", .token = "tok-abcdefghijklmnop", .seq = 40}, n, got;

	assert_int_equal(node_save_seq(&old, dir), 0);
	n = (struct node){.id = "n-9", .token = "tok-qrstuvwxyzabcdef", .seq = 2};
	assert_int_equal(node_save(&n, dir, URL), 0);
	assert_int_equal(node_load(&got, dir, URL), 0);
	assert_string_equal(got.id, "n-9");
	assert_int_equal(got.seq, 2);
}

/* A record torn by a power loss (its two copies differ) is not used. */
static void test_node__torn_seq_is_ignored(void **state)
{
	const char *dir = *state;
	struct node n = {.id = "n-3", .token = "tok-abcdefghijklmnop", .seq = 4}, got;
	char *path = fs_join(dir, "seq");
	const char *torn = "n-3 9100 9000\n";

	assert_int_equal(node_save(&n, dir, URL), 0);
	assert_int_equal(fs_write_renamed(path, torn, strlen(torn), 0600), 0);
	assert_int_equal(node_load(&got, dir, URL), 0);
	assert_int_equal(got.seq, 4);
	/* Written in place: a shorter record later leaves nothing of the longer one behind. */
	n.seq = 123456789;
	assert_int_equal(node_save_seq(&n, dir), 0);
	n.seq = 7;
	assert_int_equal(node_save_seq(&n, dir), 0);
	assert_int_equal(node_load(&got, dir, URL), 0);
	assert_int_equal(got.seq, 7);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_node__seq_is_saved_apart_from_the_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node__seq_of_another_identity_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node__torn_seq_is_ignored, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
