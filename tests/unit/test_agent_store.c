/* test_agent_store.c - the agent's cache stays under its cap, least recently used first, pins respected. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "bundle.h"
#include "store.h"

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->dir, tmp && *tmp ? tmp : "/tmp", "store"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Stores size bytes of c; returns the digest. */
static digest_hex put(store *s, char c, size_t size)
{
	char *tmp = fs_join(store_tmpdir(s), "t-XXXXXX"), *data = malloc(size);
	digest_hex d;
	int fd;

	assert_non_null(tmp);
	assert_non_null(data);
	memset(data, c, size);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
	assert_int_equal(store_adopt(s, &d, tmp, NULL), 0);
	assert_false(fs_exists(tmp)); /* consumed */
	free(tmp);
	free(data);
	return d;
}

static int on_disk(store *s, const digest_hex *d)
{
	char *p = store_path(s, d->hex);
	int ok = fs_exists(p);

	free(p);
	return ok;
}

static void test_store__evicts_least_recently_used(void **state)
{
	struct fixture *f = *state;
	digest_hex a, b, c, d;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 300), 0);
	a = put(s, 'a', 100);
	b = put(s, 'b', 100);
	c = put(s, 'c', 100);
	assert_int_equal(store_size(s), 300);
	assert_true(store_has(s, a.hex)); /* a is used again: b is now the oldest */
	d = put(s, 'd', 100);
	assert_int_equal(store_count(s), 3);
	assert_int_equal(store_size(s), 300);
	assert_false(store_has(s, b.hex));
	assert_false(on_disk(s, &b));
	assert_true(store_has(s, a.hex));
	assert_true(store_has(s, c.hex));
	assert_true(store_has(s, d.hex));
	/* A blob larger than the cap still arrives (it is about to be used), then everything else goes. */
	put(s, 'e', 1000);
	assert_int_equal(store_count(s), 1);
	store_free(s);
}

static void test_store__pinned_blobs_stay(void **state)
{
	struct fixture *f = *state;
	digest_hex a, b, c, d;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 250), 0);
	a = put(s, 'a', 100);
	assert_int_equal(store_pin(s, a.hex), 0);
	assert_int_equal(store_pin(s, a.hex), 0); /* counted */
	b = put(s, 'b', 100);
	c = put(s, 'c', 100); /* over the cap: b goes, a is pinned */
	assert_true(on_disk(s, &a));
	assert_false(on_disk(s, &b));
	assert_true(on_disk(s, &c));
	assert_int_equal(store_pin(s, c.hex), 0);
	d = put(s, 'd', 100); /* everything else pinned: the cache may stay above its cap */
	assert_int_equal(store_size(s), 300);
	assert_true(on_disk(s, &a) && on_disk(s, &c));
	store_unpin(s, a.hex); /* a is still pinned once: d, the only unpinned blob, goes */
	assert_true(on_disk(s, &a));
	assert_false(on_disk(s, &d));
	assert_int_equal(store_size(s), 200);
	store_unpin(s, a.hex); /* a may go now, and does when room is needed */
	assert_true(on_disk(s, &a));
	put(s, 'e', 100);
	assert_false(on_disk(s, &a));
	assert_true(on_disk(s, &c));
	assert_true(store_size(s) <= 250);
	store_unpin(s, c.hex);
	store_unpin(s, "not-pinned"); /* harmless */
	store_free(s);
}

static void test_store__order_survives_reopen(void **state)
{
	struct fixture *f = *state;
	digest_hex a, b, c;
	struct timespec t[2];
	store *s;
	char *p;

	assert_int_equal(store_open(&s, f->dir, 1000), 0);
	a = put(s, 'a', 100);
	b = put(s, 'b', 100);
	c = put(s, 'c', 100);
	/* Last use: b long ago, then c, then a. */
	const digest_hex *order[] = {&b, &c, &a};
	for (int i = 0; i < 3; i++) {
		t[0].tv_sec = t[1].tv_sec = 1000000 + i;
		t[0].tv_nsec = t[1].tv_nsec = 0;
		p = store_path(s, order[i]->hex);
		assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
		free(p);
	}
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 200), 0);
	assert_int_equal(store_count(s), 2);
	assert_false(on_disk(s, &b));
	assert_true(on_disk(s, &a) && on_disk(s, &c));
	store_free(s);
}

static void test_store__adopt_checks_the_digest(void **state)
{
	struct fixture *f = *state;
	digest_hex want, got;
	char *tmp;
	store *s;
	int fd;

	assert_int_equal(store_open(&s, f->dir, 1000), 0);
	digest_bytes(&want, "expected", 8);
	tmp = fs_join(store_tmpdir(s), "t-XXXXXX");
	fd = mkstemp(tmp);
	assert_int_equal(write(fd, "tampered", 8), 8);
	close(fd);
	assert_int_equal(store_adopt(s, &got, tmp, want.hex), ERR_CORRUPT);
	assert_non_null(strstr(err_msg(), "corrupt"));
	assert_int_equal(store_count(s), 0);
	assert_false(fs_exists(tmp));
	digest_bytes(&got, "tampered", 8);
	assert_false(on_disk(s, &got));
	free(tmp);
	store_free(s);
}

/* The cache fsyncs nothing: a blob stored again replaces a copy a crash tore, and its size is counted anew. */
static void test_store__adopt_replaces_a_torn_copy(void **state)
{
	struct fixture *f = *state;
	digest_hex d;
	char *tmp, *blob;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	tmp = fs_join(store_tmpdir(s), "t");
	assert_int_equal(fs_write_file(tmp, "a whole bundle", 14, 0644), 0);
	assert_int_equal(store_adopt(s, &d, tmp, NULL), 0);
	assert_int_equal(store_size(s), 14);
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	blob = store_path(s, d.hex);
	chmod(blob, 0644);
	assert_int_equal(truncate(blob, 3), 0); /* torn, then indexed as it is at the next start */
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_size(s), 3);
	assert_int_equal(fs_write_file(tmp, "a whole bundle", 14, 0644), 0);
	assert_int_equal(store_adopt(s, NULL, tmp, d.hex), 0);
	assert_int_equal(store_verify(s, d.hex), 0);
	assert_int_equal(store_size(s), 14);
	free(blob);
	free(tmp);
	store_free(s);
}

static void test_store__verify_drops_a_damaged_blob(void **state)
{
	struct fixture *f = *state;
	digest_hex a;
	char *p, *aside;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 1000), 0);
	a = put(s, 'a', 100);
	assert_int_equal(store_verify(s, a.hex), 0);
	p = store_path(s, a.hex);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(fs_write_atomic(p, "bit rot", 7, 0444), 0);
	assert_int_equal(store_verify(s, a.hex), ERR_CORRUPT);
	assert_int_equal(store_count(s), 0);
	assert_int_equal(store_size(s), 0);
	assert_false(store_has(s, a.hex));
	assert_int_equal(store_verify(s, a.hex), ERR_NOTFOUND);
	store_free(s);
	/* What was moved aside is removed at the next start. */
	aside = fs_join(f->dir, "corrupt");
	assert_int_equal(store_open(&s, f->dir, 1000), 0);
	{
		char *gone = fs_join(aside, a.hex);
		assert_false(fs_exists(gone));
		free(gone);
	}
	store_free(s);
	free(aside);
	free(p);
}

static void test_store__leftovers_are_removed(void **state)
{
	struct fixture *f = *state;
	char *tmp;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 1000), 0);
	tmp = fs_join(store_tmpdir(s), "half-written");
	assert_int_equal(fs_write_atomic(tmp, "x", 1, 0600), 0);
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 1000), 0);
	assert_false(fs_exists(tmp));
	assert_int_equal(store_count(s), 0);
	assert_false(store_has(s, "not a digest"));
	free(tmp);
	store_free(s);
}

/* Packs a small artifact (meta.json, bin/obj of size bytes) and adopts it into the store. */
static digest_hex put_artifact(struct fixture *f, store *s, size_t size)
{
	char *src = fs_join(f->dir, "src"), *bin = fs_join(src, "bin"), *exe = fs_join(bin, "obj");
	char *meta = fs_join(src, "meta.json"), *tmp = fs_join(store_tmpdir(s), "a-XXXXXX"), *data = calloc(1, size);
	digest_hex d;
	int fd;

	assert_non_null(data);
	assert_int_equal(fs_mkdir_p(bin, 0755), 0);
	assert_int_equal(fs_write_atomic(meta, "{}", 2, 0644), 0);
	assert_int_equal(fs_write_atomic(exe, data, size, 0755), 0);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(bundle_pack_dir(src, tmp), 0);
	assert_int_equal(store_adopt(s, &d, tmp, NULL), 0);
	fs_rm_rf(src);
	free(src);
	free(bin);
	free(exe);
	free(meta);
	free(tmp);
	free(data);
	return d;
}

static int tree_on_disk(struct fixture *f, const digest_hex *d)
{
	char *trees = fs_join(f->dir, "trees"), *p = fs_join(trees, d->hex);
	int ok = fs_exists(p);

	free(trees);
	free(p);
	return ok;
}

/* An artifact is unpacked once, read-only, and its tree counts toward the cap. */
static void test_store__tree_is_unpacked_once_and_read_only(void **state)
{
	struct fixture *f = *state;
	char *trees = fs_join(f->dir, "trees"), *t1 = NULL, *t2 = NULL, *exe, *meta;
	struct stat st, st2;
	digest_hex a;
	uint64_t blob;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	a = put_artifact(f, s, 5000);
	blob = store_size(s);
	assert_false(store_has_tree(s, a.hex));
	assert_int_equal(store_tree(s, &t1, a.hex, NULL), 0);
	assert_true(store_has_tree(s, a.hex));
	assert_int_equal(store_size(s), blob + 5000 + 2);
	exe = fs_join(t1, "bin/obj");
	meta = fs_join(t1, "meta.json");
	assert_int_equal(stat(exe, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0555);
	assert_int_equal(stat(meta, &st2), 0);
	assert_int_equal(st2.st_mode & 0777, 0444);
	assert_int_equal(stat(trees, &st2), 0);
	assert_int_equal(st2.st_mode & 0777, 0711);
	/* The second use finds it: the same file, not unpacked again. */
	assert_int_equal(store_tree(s, &t2, a.hex, NULL), 0);
	assert_string_equal(t1, t2);
	assert_int_equal(stat(exe, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(store_size(s), blob + 5000 + 2);
	store_free(s);
	free(trees);
	free(t1);
	free(t2);
	free(exe);
	free(meta);
}

/* A tree goes with its blob when the cap needs the room, never while the blob is pinned. */
static void test_store__tree_goes_with_its_blob(void **state)
{
	struct fixture *f = *state;
	char *trees = fs_join(f->dir, "trees"), *t = NULL;
	digest_hex a, b;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 8000), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	a = put_artifact(f, s, 5000);
	assert_int_equal(store_pin(s, a.hex), 0);
	assert_int_equal(store_tree(s, &t, a.hex, NULL), 0);
	free(t);
	t = NULL;
	/* b does not fit beside a and its tree: a is pinned (a run uses its tree), so both stay. */
	b = put(s, 'b', 4000);
	assert_true(on_disk(s, &a) && tree_on_disk(f, &a) && on_disk(s, &b));
	assert_true(store_size(s) > 8000);
	/* The run ends: a was used before b, so a and its tree go. */
	store_unpin(s, a.hex);
	assert_false(on_disk(s, &a));
	assert_false(tree_on_disk(f, &a));
	assert_true(on_disk(s, &b));
	assert_true(store_size(s) <= 8000);
	store_free(s);
	free(trees);
}

/* Trees outlive the agent; one whose blob is gone is kept while pinned (a run taken over), then evicted. */
static void test_store__trees_are_found_again_after_a_restart(void **state)
{
	struct fixture *f = *state;
	char *trees = fs_join(f->dir, "trees"), *t = NULL, *p;
	digest_hex a, b;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	a = put_artifact(f, s, 3000);
	b = put_artifact(f, s, 4000);
	assert_int_equal(store_tree(s, &t, a.hex, NULL), 0);
	free(t);
	t = NULL;
	assert_int_equal(store_tree(s, &t, b.hex, NULL), 0);
	free(t);
	t = NULL;
	store_free(s);
	/* b's blob is lost while no agent runs; a leftover of an unpacking that did not finish too. */
	p = fs_join(trees, ".unpack-x");
	assert_int_equal(fs_mkdir_p(p, 0700), 0);
	free(p);
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	p = store_path(s, b.hex);
	assert_int_equal(unlink(p), 0);
	free(p);
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	p = fs_join(trees, ".unpack-x");
	assert_false(fs_exists(p));
	free(p);
	assert_true(store_has_tree(s, a.hex));
	assert_true(store_has_tree(s, b.hex));
	assert_int_equal(store_pin(s, b.hex), 0);
	store_evict(s);
	assert_true(tree_on_disk(f, &b));
	store_unpin(s, b.hex);
	/* Within the cap, nothing needs to go; a smaller cap takes the orphan first. */
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	store_free(s);
	assert_int_equal(store_open(&s, f->dir, 5000), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	store_evict(s);
	assert_false(tree_on_disk(f, &b));
	assert_true(tree_on_disk(f, &a) && on_disk(s, &a));
	store_free(s);
	free(trees);
}

/* Trees are not fsynced: those of another boot may be torn and go; the blobs stay, verified before use. */
static void test_store__trees_of_another_boot_go(void **state)
{
	struct fixture *f = *state;
	char *trees = fs_join(f->dir, "trees"), *t = NULL, *boot;
	digest_hex a;
	store *s;

	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	a = put_artifact(f, s, 3000);
	assert_int_equal(store_tree(s, &t, a.hex, NULL), 0);
	store_free(s);
	/* The same boot (an agent restart): the tree is used as it is. */
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-1"), 0);
	assert_true(store_has_tree(s, a.hex));
	store_free(s);
	/* After a reboot: gone, and unpacked again from its verified blob when needed. */
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-2"), 0);
	assert_false(store_has_tree(s, a.hex));
	assert_false(tree_on_disk(f, &a));
	assert_true(on_disk(s, &a));
	free(t);
	t = NULL;
	assert_int_equal(store_tree(s, &t, a.hex, NULL), 0);
	assert_true(tree_on_disk(f, &a));
	store_free(s);
	/* No .boot (an agent from before it, restarted under running objects by an upgrade): a tree
	 * unpacked since the machine booted is kept, one from before the boot goes. */
	boot = fs_join(trees, ".boot");
	assert_int_equal(unlink(boot), 0);
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-3"), 0);
	assert_true(store_has_tree(s, a.hex));
	assert_true(fs_exists(boot));
	store_free(s);
	{
		struct timespec old[2] = {{1, 0}, {1, 0}}; /* 1970: before any boot */
		assert_int_equal(unlink(boot), 0);
		assert_int_equal(utimensat(AT_FDCWD, t, old, AT_SYMLINK_NOFOLLOW), 0);
	}
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, "boot-3"), 0);
	assert_false(store_has_tree(s, a.hex));
	assert_false(tree_on_disk(f, &a));
	free(t);
	t = NULL;
	assert_int_equal(store_tree(s, &t, a.hex, NULL), 0); /* from its verified blob again */
	store_free(s);
	/* An unknown boot trusts no tree. */
	assert_int_equal(store_open(&s, f->dir, 1 << 20), 0);
	assert_int_equal(store_set_trees(s, trees, ""), 0);
	assert_false(store_has_tree(s, a.hex));
	store_free(s);
	/* The boot id of this machine is what the agent passes. */
	assert_true(strlen(store_boot_id()) >= 32);
	free(boot);
	free(t);
	free(trees);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_store__evicts_least_recently_used),
		T(test_store__pinned_blobs_stay),
		T(test_store__order_survives_reopen),
		T(test_store__adopt_checks_the_digest),
		T(test_store__adopt_replaces_a_torn_copy),
		T(test_store__verify_drops_a_damaged_blob),
		T(test_store__leftovers_are_removed),
		T(test_store__tree_is_unpacked_once_and_read_only),
		T(test_store__tree_goes_with_its_blob),
		T(test_store__trees_are_found_again_after_a_restart),
		T(test_store__trees_of_another_boot_go),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
