/* test_cli_bundle.c - the job bundle: rewritten sources, what is copied and what is refused. */
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
#include <jansson.h>

#include "bundle.h"
#include "bundle_job.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "manifest.h"

struct fixture {
	char *dir;      /* the project: manifest, sources, archive */
	char *bundle;   /* where the bundle goes */
	char *out;      /* where it is extracted */
	char *manifest;
	digest_hex archive_sha;
};

static void put(const char *dir, const char *rel, const char *text)
{
	char *p = fs_join(dir, rel), *slash;

	slash = strrchr(p, '/');
	*slash = '\0';
	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	*slash = '/';
	assert_int_equal(fs_write_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));
	char *p;

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->dir, base ? base : "/tmp", "test-cli-bundle"), 0);
	f->bundle = fs_join(f->dir, "job.tar.zst");
	f->out = fs_join(f->dir, "extracted");
	f->manifest = fs_join(f->dir, "project/job.json");
	put(f->dir, "project/src/a/a.c", "int main(void) { return 0; }\n");
	put(f->dir, "project/src/a/inc/a.h", "#define A 1\n");
	put(f->dir, "project/src/a/.git/HEAD", "ref: refs/heads/main\n");
	put(f->dir, "project/src/a/vendor/.git/config", "[core]\n");
	put(f->dir, "project/src/a/vendor/v.c", "int v;\n");
	put(f->dir, "project/dl/b-1.0.tar.gz", "not really a tarball, but the digest is what counts\n");
	p = fs_join(f->dir, "project/src/a/inc/link.h");
	assert_int_equal(symlink("a.h", p), 0);
	free(p);
	p = fs_join(f->dir, "project/dl/b-1.0.tar.gz");
	assert_int_equal(digest_file(&f->archive_sha, p, NULL), 0);
	free(p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_rm_rf(f->dir);
	free(f->dir);
	free(f->bundle);
	free(f->out);
	free(f->manifest);
	free(f);
	return 0;
}

static void write_manifest(struct fixture *f, const char *archive_sha)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "{\"manifest\": 1, \"name\": \"job\", \"objects\": ["
		 " {\"name\": \"a\", \"source\": {\"path\": \"src/a\"},"
		 "  \"build\": {\"recipe\": \"c\", \"sources\": [\"a.c\"]}, \"instances\": 2},"
		 " {\"name\": \"b\", \"source\": {\"archive\": \"dl/b-1.0.tar.gz\", \"sha256\": \"%s\", "
		 "\"strip\": 1},"
		 "  \"build\": {\"recipe\": \"make\", \"output\": \"b\"}, \"state\": {\"x\": 1.5}},"
		 " {\"name\": \"c\", \"source\": {\"archive\": \"https://example.org/c.tar.xz\", \"sha256\": "
		 "\"%s\"},"
		 "  \"build\": {\"recipe\": \"make\", \"output\": \"c\"}},"
		 " {\"name\": \"d\", \"source\": {\"git\": \"https://example.org/d.git\", \"rev\": \"v1\"},"
		 "  \"build\": {\"recipe\": \"make\", \"output\": \"d\"}},"
		 " {\"name\": \"e\", \"source\": {\"git\": \"../repos/e.git\", \"rev\": \"main\"},"
		 "  \"build\": {\"recipe\": \"make\", \"output\": \"e\"}}]}",
		 archive_sha, f->archive_sha.hex);
	put(f->dir, "project/job.json", text);
}

static void extract(struct fixture *f)
{
	assert_int_equal(fs_rm_rf(f->out), 0);
	assert_int_equal(fs_mkdir_p(f->out, 0755), 0);
	assert_int_equal(bundle_extract_file(f->bundle, f->out, 0, NULL), 0);
}

static int exists_in(const char *dir, const char *rel)
{
	char *p = fs_join(dir, rel);
	int r = fs_exists(p);

	free(p);
	return r;
}

/* A member of objects[i].source in a manifest document (borrowed). */
static const char *source_of(const json_t *objs, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_object_get(json_array_get(objs, i), "source"), key));
}

static void test_cli_bundle__sources_are_rewritten_and_copied(void **state)
{
	struct fixture *f = *state;
	struct bundle_job_info info;
	json_t *doc, *objs, *src, *values;
	char *mpath, *e_git;
	struct manifest *m = NULL;

	write_manifest(f, f->archive_sha.hex);
	assert_int_equal(bundle_job_create(&info, f->bundle, f->manifest, NULL), 0);
	assert_int_equal(info.objects, 5);
	assert_true(info.size > 0);
	extract(f);

	mpath = fs_join(f->out, "manifest.json");
	doc = json_load_file(mpath, 0, NULL);
	assert_non_null(doc);
	objs = json_object_get(doc, "objects");
	assert_string_equal(source_of(objs, 0, "path"), "sources/a");
	assert_string_equal(source_of(objs, 1, "archive"), "archives/b/b-1.0.tar.gz");
	/* strip and sha256 stay; so does everything that is not a source */
	src = json_object_get(json_array_get(objs, 1), "source");
	assert_int_equal(json_integer_value(json_object_get(src, "strip")), 1);
	assert_string_equal(json_string_value(json_object_get(src, "sha256")), f->archive_sha.hex);
	values = json_object_get(json_array_get(objs, 1), "state");
	assert_true(json_real_value(json_object_get(values, "x")) == 1.5);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(objs, 0), "instances")), 2);
	/* URLs are kept; a local git path becomes absolute */
	assert_string_equal(source_of(objs, 2, "archive"), "https://example.org/c.tar.xz");
	assert_string_equal(source_of(objs, 3, "git"), "https://example.org/d.git");
	e_git = fs_join(f->dir, "project/../repos/e.git");
	assert_string_equal(source_of(objs, 4, "git"), e_git);

	assert_true(exists_in(f->out, "sources/a/a.c"));
	assert_true(exists_in(f->out, "sources/a/inc/a.h"));
	assert_true(exists_in(f->out, "sources/a/inc/link.h"));
	assert_true(exists_in(f->out, "sources/a/vendor/v.c"));
	assert_false(exists_in(f->out, "sources/a/.git"));
	assert_false(exists_in(f->out, "sources/a/vendor/.git"));
	assert_true(exists_in(f->out, "archives/b/b-1.0.tar.gz"));
	assert_false(exists_in(f->out, "dl"));

	/* What the dispatcher gets is a valid manifest whose sources are in the bundle. */
	assert_int_equal(manifest_load_file(&m, mpath), 0);
	assert_true(fs_exists(m->objects[0].source.path));
	assert_true(fs_exists(m->objects[1].source.archive));
	manifest_free(m);
	json_decref(doc);
	free(mpath);
	free(e_git);
}

static void test_cli_bundle__same_input_same_bytes(void **state)
{
	struct fixture *f = *state;
	digest_hex one, two;

	write_manifest(f, f->archive_sha.hex);
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), 0);
	assert_int_equal(digest_file(&one, f->bundle, NULL), 0);
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), 0);
	assert_int_equal(digest_file(&two, f->bundle, NULL), 0);
	assert_string_equal(one.hex, two.hex);
}

static void test_cli_bundle__invalid_manifest_is_refused(void **state)
{
	struct fixture *f = *state;

	put(f->dir, "project/job.json",
	    "{\"manifest\": 1, \"name\": \"job\", \"objects\": [{\"name\": \"a\", \"source\": {\"path\": "
	    "\"src/a\"},"
	    " \"build\": {\"recipe\": \"c\", \"sources\": \"a.c\"}}]}");
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "objects[0].build.sources"));
	assert_false(fs_exists(f->bundle));
}

static void test_cli_bundle__archive_digest_is_checked(void **state)
{
	struct fixture *f = *state;

	write_manifest(f, "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), ERR_CORRUPT);
	assert_non_null(strstr(err_msg(), "objects[1].source.archive"));
	assert_false(fs_exists(f->bundle));
}

static void test_cli_bundle__missing_path_source(void **state)
{
	struct fixture *f = *state;

	put(f->dir, "project/job.json",
	    "{\"manifest\": 1, \"name\": \"job\", \"objects\": [{\"name\": \"a\", \"source\": {\"path\": "
	    "\"src/nope\"},"
	    " \"build\": {\"recipe\": \"c\", \"sources\": [\"a.c\"]}}]}");
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "objects[0].source.path"));
}

static void test_cli_bundle__escaping_symlink_is_refused(void **state)
{
	struct fixture *f = *state;
	char *p = fs_join(f->dir, "project/src/a/inc/up.h");

	write_manifest(f, f->archive_sha.hex);
	assert_int_equal(symlink("../../../dl/b-1.0.tar.gz", p), 0);
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "points outside the source tree"));
	assert_non_null(strstr(err_msg(), "objects[0].source.path"));
	assert_false(fs_exists(f->bundle));
	unlink(p);
	/* ".." after a name is refused as bundle_pack_dir() would, but naming the source. */
	assert_int_equal(symlink("../inc/../a.c", p), 0);
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "src/a/inc/up.h"));
	unlink(p);
	/* Up inside the tree is fine. */
	assert_int_equal(symlink("../a.c", p), 0);
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, NULL), 0);
	free(p);
}

static void test_cli_bundle__temporary_tree_is_removed(void **state)
{
	struct fixture *f = *state;
	char *tmp = fs_join(f->dir, "tmp");

	assert_int_equal(fs_mkdir_p(tmp, 0755), 0);
	write_manifest(f, f->archive_sha.hex);
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, tmp), 0);
	write_manifest(f, "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(bundle_job_create(NULL, f->bundle, f->manifest, tmp), ERR_CORRUPT);
	assert_int_equal(rmdir(tmp), 0); /* only an empty directory can be removed */
	free(tmp);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cli_bundle__sources_are_rewritten_and_copied),
		T(test_cli_bundle__same_input_same_bytes),
		T(test_cli_bundle__invalid_manifest_is_refused),
		T(test_cli_bundle__archive_digest_is_checked),
		T(test_cli_bundle__missing_path_source),
		T(test_cli_bundle__escaping_symlink_is_refused),
		T(test_cli_bundle__temporary_tree_is_removed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
