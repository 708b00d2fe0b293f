/* test_manifest.c - the manifest object model and toolchain target resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "fsutil.h"
#include "manifest.h"
#include "toolchain.h"

static const char good[] =
	"{\"manifest\": 1, \"name\": \"m\", \"objects\": ["
	" {\"name\": \"a\", \"source\": {\"path\": \"src/a\"},"
	"  \"build\": {\"recipe\": \"c\", \"sources\": [\"a.c\"], \"libs\": [\"m\"]}},"
	" {\"name\": \"b\", \"source\": {\"archive\": \"b.tgz\", \"sha256\": \"%s\", \"strip\": 1},"
	"  \"build\": {\"recipe\": \"make\", \"vars\": {\"X\": \"1\", \"ON\": true}, \"output\": \"b\"},"
	"  \"entry\": \"bb\", \"targets\": [\"aarch64\", \"x86_64:v3\"], \"state\": {\"n\": 3}}]}";

static void test_manifest__model(void **state)
{
	char text[2048];
	struct manifest *m = NULL;
	const struct manifest_object *a, *b;

	snprintf(text, sizeof(text), good, "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789");
	assert_int_equal(manifest_load_string(&m, text, strlen(text), "/base", "t"), 0);
	assert_int_equal(m->nobjects, 2);
	a = &m->objects[0];
	b = &m->objects[1];
	assert_string_equal(a->source.path, "/base/src/a");
	assert_string_equal(a->entry, "a"); /* entry defaults to the name */
	assert_int_equal(a->instances, 1);
	assert_string_equal(a->targets[0], "*");
	assert_null(a->targets[1]);
	assert_true(a->build.static_link);
	assert_string_equal(a->build.libs[0], "m");
	assert_null(a->build.cflags[0]); /* absent vectors are empty, never NULL */
	assert_int_equal(b->source.kind, SOURCE_ARCHIVE);
	assert_string_equal(b->source.archive, "/base/b.tgz");
	assert_string_equal(b->source.sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(b->build.nvars, 2);
	assert_string_equal(b->build.vars[1].value, "ON");
	assert_string_equal(b->entry, "bb");
	assert_non_null(b->state);
	manifest_free(m);
}

static void test_manifest__build_json_ignores_run_settings(void **state)
{
	const char *t1 = "{\"manifest\":1,\"name\":\"m\",\"objects\":[{\"name\":\"a\",\"source\":{\"path\":\"s\"},"
			 "\"build\":{\"sources\":[\"a.c\"],\"recipe\":\"c\"},\"args\":[\"1\"],\"instances\":2}]}";
	const char *t2 = "{\"manifest\":1,\"name\":\"m\",\"objects\":[{\"name\":\"a\",\"source\":{\"path\":\"s\"},"
			 "\"build\":{\"recipe\":\"c\",\"sources\":[\"a.c\"]},\"args\":[\"2\"]}]}";
	const char *t3 = "{\"manifest\":1,\"name\":\"m\",\"objects\":[{\"name\":\"a\",\"source\":{\"path\":\"s\"},"
			 "\"build\":{\"recipe\":\"c\",\"sources\":[\"a.c\"],\"cflags\":[\"-O3\"]}}]}";
	struct manifest *m1 = NULL, *m2 = NULL, *m3 = NULL;

	assert_int_equal(manifest_load_string(&m1, t1, strlen(t1), "/", NULL), 0);
	assert_int_equal(manifest_load_string(&m2, t2, strlen(t2), "/", NULL), 0);
	assert_int_equal(manifest_load_string(&m3, t3, strlen(t3), "/", NULL), 0);
	/* Key order and run settings do not change what is built; flags do. */
	assert_string_equal(m1->objects[0].build_json, m2->objects[0].build_json);
	assert_string_not_equal(m1->objects[0].build_json, m3->objects[0].build_json);
	manifest_free(m1);
	manifest_free(m2);
	manifest_free(m3);
}

static void test_manifest__oversized_is_refused(void **state)
{
	size_t n = MANIFEST_MAX_BYTES + 10;
	char *big = malloc(n);
	struct manifest *m = NULL;

	memset(big, ' ', n);
	assert_int_equal(manifest_load_string(&m, big, n, "/", "big.json"), ERR_LIMIT);
	assert_non_null(strstr(err_msg(), "big.json"));
	free(big);
}

static void test_toolchain__resolve_targets(void **state)
{
	const char *src = getenv("DISPATCH_SOURCE_DIR");
	char *dir = fs_join(src ? src : ".", "toolchains");
	struct toolchain_set *set = NULL;
	struct toolchain *tc;
	const struct toolchain_level *lvl;

	assert_int_equal(toolchain_set_load(&set, dir), 0);
	assert_true(set->count >= 6);
	assert_int_equal(toolchain_resolve(&tc, &lvl, set, "aarch64"), 0);
	assert_string_equal(lvl->name, "armv8-a"); /* a bare ISA is its baseline */
	assert_int_equal(toolchain_resolve(&tc, &lvl, set, "x86_64:v3"), 0);
	assert_string_equal(tc->isa, "x86_64");
	assert_string_equal(lvl->name, "v3");
	assert_true(toolchain_target_matches("*", tc, lvl));
	assert_true(toolchain_target_matches("x86_64", tc, lvl));
	assert_true(toolchain_target_matches("x86_64:v3", tc, lvl));
	assert_false(toolchain_target_matches("x86_64:v2", tc, lvl));
	assert_false(toolchain_target_matches("x86", tc, lvl));
	assert_int_equal(toolchain_resolve(&tc, &lvl, set, "mips"), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "aarch64"));
	assert_int_equal(toolchain_resolve(&tc, &lvl, set, "x86_64:v9"), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "v4"));
	assert_non_null(toolchain_set_find(set, "s390x"));
	assert_string_equal(toolchain_set_find(set, "s390x")->endian, "big");
	assert_int_equal(toolchain_set_find(set, "armhf")->bits, 32);
	toolchain_set_free(set);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest__model),
		cmocka_unit_test(test_manifest__build_json_ignores_run_settings),
		cmocka_unit_test(test_manifest__oversized_is_refused),
		cmocka_unit_test(test_toolchain__resolve_targets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
