/* test_builder_lookup.c - builder_run() with cached_only: what dispatchd does inside a submission. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "buf.h"
#include "builder.h"
#include "error.h"
#include "fsutil.h"
#include "manifest.h"
#include "source.h"

struct fixture {
	char *dir, *cache;
};

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->dir, tmp && *tmp ? tmp : "/tmp", "lookup"), 0);
	f->cache = fs_join(f->dir, "cache");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_rm_rf(f->dir);
	free(f->dir);
	free(f->cache);
	free(f);
	return 0;
}

static void put(struct fixture *f, const char *rel, const char *text)
{
	char *path = fs_join(f->dir, rel), *slash = strrchr(path, '/');

	*slash = '\0';
	assert_int_equal(fs_mkdir_p(path, 0755), 0);
	*slash = '/';
	assert_int_equal(fs_write_file(path, text, strlen(text), 0644), 0);
	free(path);
}

/* A manifest of n objects, object k built from the directory src[k % nsrc]. */
static struct manifest *manifest_of(struct fixture *f, size_t n, const char *const *src, size_t nsrc)
{
	struct buf b = BUF_INIT(1 << 20);
	struct manifest *m = NULL;
	char *path = fs_join(f->dir, "m.json");

	buf_printf(&b, "{\"manifest\": 1, \"name\": \"lookup\", \"objects\": [");
	for (size_t k = 0; k < n; k++) {
		const char *s = src[k % nsrc];
		buf_printf(&b, "%s{\"name\": \"o%zu\", \"targets\": [\"x86_64\"], ", k ? ", " : "", k);
		if (!strncmp(s, "git:", 4))
			buf_printf(&b, "\"source\": {\"git\": \"%s\", \"rev\": \"main\"}, ", s + 4);
		else
			buf_printf(&b, "\"source\": {\"path\": \"%s\"}, ", s);
		buf_printf(&b, "\"build\": {\"recipe\": \"c\", \"sources\": [\"main.c\"]}}");
	}
	buf_printf(&b, "]}");
	assert_int_equal(fs_write_file(path, b.data, b.len, 0644), 0);
	if (manifest_load_file(&m, path) < 0)
		fail_msg("%s", err_msg());
	buf_release(&b);
	free(path);
	return m;
}

static struct build_report *run(struct fixture *f, const struct manifest *m, int cached_only, int expect)
{
	const char *targets[] = {"x86_64:baseline", NULL};
	struct builder_opts o = {.cache_dir = f->cache, .targets = targets, .jobs = 1, .cached_only = cached_only};
	struct build_report *rep = NULL;
	int r = builder_run(&rep, m, &o);

	if (r != expect)
		fail_msg("builder_run: %d, not %d: %s", r, expect, r < 0 ? err_msg() : "");
	return rep;
}

/* A lookup finds what a build made, and compiles nothing that is not there. */
static void test_lookup__finds_built_and_leaves_the_rest(void **state)
{
	struct fixture *f = *state;
	const char *const src[] = {"a", "b"};
	struct manifest *m;
	struct build_report *rep;

	put(f, "a/main.c", "int main(void) { return 0; }\n");
	put(f, "b/main.c", "int main(void) { return 1; }\n");
	m = manifest_of(f, 1, src, 1);
	build_report_free(run(f, m, 0, 0)); /* builds o0 from a/ */
	build_report_free(run(f, m, 1, 0));
	rep = run(f, m, 1, 0);
	assert_int_equal(rep->count, 1);
	assert_int_equal(rep->cached, 1);
	build_report_free(rep);
	manifest_free(m);

	m = manifest_of(f, 2, src, 2); /* o1 from b/: never built */
	rep = run(f, m, 1, 0);
	assert_int_equal(rep->count, 2);
	assert_int_equal(rep->cached, 1);
	assert_int_equal(rep->built, 0);
	assert_int_equal(rep->failed, 0);
	assert_int_equal(rep->results[1].state, BUILD_PENDING);
	build_report_free(rep);
	manifest_free(m);
}

/* Inside dispatchd's request: no git remote is asked, no large tree hashed, no long manifest looked at. */
static void test_lookup__is_bounded(void **state)
{
	struct fixture *f = *state;
	const char *const git[] = {"git:/nonexistent/repository.git"}, *const big[] = {"big"}, *const a[] = {"a"};
	char *blob = calloc(1, 5u << 20), *path;
	struct manifest *m;
	struct build_report *rep;

	put(f, "a/main.c", "int main(void) { return 0; }\n");
	m = manifest_of(f, 1, a, 1);
	build_report_free(run(f, m, 0, 0)); /* the compiler's identity is known from here on */
	manifest_free(m);

	m = manifest_of(f, 1, git, 1);
	rep = run(f, m, 1, 0);
	assert_int_equal(rep->results[0].state, BUILD_PENDING);
	build_report_free(rep);
	manifest_free(m);

	put(f, "big/main.c", "int main(void) { return 0; }\n");
	path = fs_join(f->dir, "big/data.bin");
	assert_int_equal(fs_write_file(path, blob, 5u << 20, 0644), 0);
	m = manifest_of(f, 1, big, 1);
	build_report_free(run(f, m, 0, 0)); /* in the cache, but too big to hash for a lookup */
	rep = run(f, m, 1, 0);
	assert_int_equal(rep->results[0].state, BUILD_PENDING); /* not failed: a real build hashes it */
	build_report_free(rep);
	manifest_free(m);

	m = manifest_of(f, 65, a, 1);
	assert_null(run(f, m, 1, ERR_LIMIT));
	manifest_free(m);
	free(path);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup__finds_built_and_leaves_the_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup__is_bounded, setup, teardown),
	};

	source_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
