/* test_fsutil.c - atomic writes, trees, safe relative paths, digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cas.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "tree.h"

static char *tmp_dir(void)
{
	const char *base = getenv("TMPDIR");
	char *d = NULL;

	assert_int_equal(fs_mkdtemp(&d, base ? base : "/tmp", "test-fsutil"), 0);
	return d;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *p = fs_join(dir, name);

	assert_int_equal(fs_write_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

static void test_fsutil__write_atomic_and_read(void **state)
{
	char *d = tmp_dir(), *p = fs_join(d, "f");
	struct buf b = BUF_INIT(100);

	assert_int_equal(fs_write_atomic(p, "one", 3, 0600), 0);
	assert_int_equal(fs_write_atomic(p, "two!", 4, 0600), 0);
	assert_int_equal(fs_read_file(&b, p, 100), 0);
	assert_string_equal(buf_str(&b), "two!");
	buf_reset(&b);
	assert_int_equal(fs_read_file(&b, p, 3), ERR_LIMIT);
	fs_rm_rf(d);
	buf_release(&b);
	free(p);
	free(d);
}

static void test_fsutil__rel_is_safe(void **state)
{
	assert_true(fs_rel_is_safe("a/b.c"));
	assert_true(fs_rel_is_safe("a..b/c"));
	assert_false(fs_rel_is_safe("/etc/passwd"));
	assert_false(fs_rel_is_safe("../x"));
	assert_false(fs_rel_is_safe("a/../../x"));
	assert_false(fs_rel_is_safe("a/.."));
	assert_false(fs_rel_is_safe(""));
}

static void test_fsutil__tree_digest_follows_content(void **state)
{
	char *a = tmp_dir(), *b = tmp_dir(), *sub;
	digest_hex da, db;

	write_file(a, "x.c", "int x;");
	sub = fs_join(a, "dir");
	mkdir(sub, 0755);
	write_file(sub, "y.c", "int y;");
	assert_int_equal(fs_rm_rf(b), 0);
	assert_int_equal(fs_copy_tree(a, b), 0);
	assert_int_equal(tree_digest(&da, a, 0, 0), 0);
	assert_int_equal(tree_digest(&db, b, 0, 0), 0);
	assert_string_equal(da.hex, db.hex); /* a copy has the same digest */
	write_file(b, "x.c", "int x; ");
	assert_int_equal(tree_digest(&db, b, 0, 0), 0);
	assert_string_not_equal(da.hex, db.hex);
	assert_int_equal(tree_digest(&db, a, 1, 0), ERR_LIMIT);
	fs_rm_rf(a);
	fs_rm_rf(b);
	free(sub);
	free(a);
	free(b);
}

/* Rewrites a (read-only) blob in place, as a disk error or a careless hand would. */
static void overwrite(const char *path, const char *text)
{
	FILE *f;

	chmod(path, 0644);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The same for a durable cas and for a cache (cas_set_cache(): no fsyncs, the same guarantees when read). */
static void cas_put_verify_and_detect_corruption(int cache)
{
	char *d = tmp_dir(), *p;
	digest_hex h, h2;
	uint64_t size = 0;
	cas *c = NULL;

	assert_int_equal(cas_open(&c, d), 0);
	if (cache)
		cas_set_cache(c);
	assert_int_equal(cas_put_buf(c, &h, "hello", 5), 0);
	assert_string_equal(h.hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	assert_int_equal(cas_put_buf(c, &h2, "hello", 5), 0); /* putting twice is fine */
	assert_true(cas_has(c, h.hex));
	assert_int_equal(cas_verify(c, h.hex, &size), 0);
	assert_int_equal(size, 5);
	p = cas_path(c, h.hex);
	overwrite(p, "jello");
	if (cache) {
		/* A cache's torn copy (it fsyncs nothing) is replaced when the same content comes again. */
		assert_int_equal(cas_put_buf(c, &h2, "hello", 5), 0);
		assert_int_equal(cas_verify(c, h.hex, NULL), 0);
		overwrite(p, "jello");
	}
	assert_int_equal(cas_verify(c, h.hex, NULL), ERR_CORRUPT);
	assert_false(cas_has(c, h.hex)); /* moved aside */
	assert_int_equal(cas_verify(c, h.hex, NULL), ERR_NOTFOUND);
	assert_int_equal(cas_verify(c, "../../etc/passwd", NULL), ERR_INVALID);
	cas_free(c);
	fs_rm_rf(d);
	free(p);
	free(d);
}

static void test_cas__put_verify_and_detect_corruption(void **state)
{
	(void)state;
	cas_put_verify_and_detect_corruption(0);
	cas_put_verify_and_detect_corruption(1);
}

/* A blob verified once is remembered; a write to it afterwards is still caught. */
static void test_cas__verify_remembers_until_changed(void **state)
{
	char *d = tmp_dir(), *p;
	digest_hex h;
	uint64_t size = 0;
	cas *c = NULL;

	(void)state;
	assert_int_equal(cas_open(&c, d), 0);
	assert_int_equal(cas_put_buf(c, &h, "hello", 5), 0);
	usleep(1100 * 1000); /* older than the memo's window */
	assert_int_equal(cas_verify(c, h.hex, &size), 0);
	assert_int_equal(cas_verify(c, h.hex, &size), 0);
	assert_int_equal(size, 5);
	p = cas_path(c, h.hex);
	overwrite(p, "jello");
	assert_int_equal(cas_verify(c, h.hex, NULL), ERR_CORRUPT);
	cas_free(c);
	fs_rm_rf(d);
	free(p);
	free(d);
}

static void test_fsutil__write_renamed_replaces_whole(void **state)
{
	char *d = tmp_dir(), *p = fs_join(d, "f");
	struct buf b = BUF_INIT(100);
	struct stat st;

	(void)state;
	assert_int_equal(fs_write_renamed(p, "first", 5, 0600), 0);
	assert_int_equal(fs_write_renamed(p, "second", 6, 0640), 0);
	assert_int_equal(fs_read_file(&b, p, 100), 0);
	assert_string_equal(buf_str(&b), "second");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	/* Nothing is left beside it. */
	assert_int_equal(fs_rm_rf(p), 0);
	assert_int_equal(rmdir(d), 0);
	buf_release(&b);
	free(p);
	free(d);
}

/* rm -rf: deep trees, unreadable directories, and links that lead out of the tree are not followed. */
static void test_fsutil__rm_rf(void **state)
{
	char *d = tmp_dir(), *tree = fs_join(d, "tree"), *outside = fs_join(d, "outside"), *keep, *p, *link;
	char path[8192];
	size_t len;

	(void)state;
	assert_int_equal(fs_mkdir_p(outside, 0755), 0);
	keep = fs_join(outside, "keep");
	assert_int_equal(fs_write_file(keep, "x", 1, 0644), 0);
	/* 150 levels (several rounds of moving deep directories up), a file at every tenth. */
	assert_int_equal(fs_mkdir_p(tree, 0755), 0);
	len = (size_t)snprintf(path, sizeof(path), "%s", tree);
	for (int i = 0; i < 150; i++) {
		len += (size_t)snprintf(path + len, sizeof(path) - len, "/d");
		assert_int_equal(mkdir(path, 0755), 0);
		if (i % 10 == 0) {
			p = fs_join(path, "f");
			assert_int_equal(fs_write_file(p, "y", 1, 0600), 0);
			free(p);
		}
	}
	/* Links out of the tree, to a directory and to a file, and an unreadable directory. */
	link = fs_join(tree, "to-outside");
	assert_int_equal(symlink(outside, link), 0);
	free(link);
	link = fs_join(tree, "d/to-keep");
	assert_int_equal(symlink(keep, link), 0);
	free(link);
	p = fs_join(tree, "locked");
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	p = fs_join(tree, "locked/inner");
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
	p = fs_join(tree, "locked");
	assert_int_equal(chmod(p, 0), 0);
	free(p);
	assert_int_equal(fs_rm_rf(tree), 0);
	assert_false(fs_exists(tree));
	assert_true(fs_exists(keep));
	/* A link given as the top: the link goes, not what it names. */
	link = fs_join(d, "link");
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(fs_rm_rf(link), 0);
	assert_false(fs_exists(link));
	assert_true(fs_exists(keep));
	assert_int_equal(fs_rm_rf(link), 0); /* missing: fine */
	assert_int_equal(fs_rm_rf(d), 0);
	assert_false(fs_exists(d));
	free(link);
	free(keep);
	free(outside);
	free(tree);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fsutil__write_atomic_and_read),
		cmocka_unit_test(test_fsutil__rel_is_safe),
		cmocka_unit_test(test_fsutil__tree_digest_follows_content),
		cmocka_unit_test(test_cas__put_verify_and_detect_corruption),
		cmocka_unit_test(test_cas__verify_remembers_until_changed),
		cmocka_unit_test(test_fsutil__rm_rf),
		cmocka_unit_test(test_fsutil__write_renamed_replaces_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
