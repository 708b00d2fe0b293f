/* test_manifest_data.c - every manifest in bad/ fails with the message in its .err file;
 * every manifest in good/ loads. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "error.h"
#include "fsutil.h"
#include "manifest.h"

#define CASES_MAX 512

struct data_case {
	char *json;
	char *err; /* NULL for a manifest that must load */
};

static void run_case(void **state)
{
	struct data_case *c = *state;
	struct manifest *m = NULL;
	int r = manifest_load_file(&m, c->json);

	if (!c->err) {
		if (r != 0)
			fail_msg("%s: expected to load, got: %s", c->json, err_msg());
		manifest_free(m);
		return;
	}
	if (r == 0) {
		manifest_free(m);
		fail_msg("%s: expected the error '%s', but it loaded", c->json, c->err);
	}
	if (!strstr(err_msg(), c->err))
		fail_msg("%s:\n  expected: %s\n  got:      %s", c->json, c->err, err_msg());
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t collect(struct data_case *cases, size_t n, const char *dir, int want_err)
{
	char *names[CASES_MAX];
	size_t count = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL && count < CASES_MAX) {
		size_t len = strlen(e->d_name);
		if (len > 5 && !strcmp(e->d_name + len - 5, ".json"))
			names[count++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < count && n < CASES_MAX; i++, n++) {
		cases[n].json = fs_join(dir, names[i]);
		cases[n].err = NULL;
		if (want_err) {
			struct buf b = BUF_INIT(4096);
			char *errf = strdup(cases[n].json);
			memcpy(errf + strlen(errf) - 5, ".err", 5);
			if (fs_read_file(&b, errf, 4096) == 0) {
				b.len = strcspn(buf_str(&b), "\n");
				b.data[b.len] = '\0';
				cases[n].err = buf_detach(&b, NULL);
			} else {
				cases[n].err = strdup("(missing .err file)");
			}
			buf_release(&b);
			free(errf);
		}
		free(names[i]);
	}
	return n;
}

int main(int argc, char **argv)
{
	static struct data_case cases[CASES_MAX];
	static struct CMUnitTest tests[CASES_MAX];
	char *bad, *good;
	size_t n, nbad;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: test_manifest_data DIR\n");
		return 2;
	}
	bad = fs_join(argv[1], "bad");
	good = fs_join(argv[1], "good");
	nbad = collect(cases, 0, bad, 1);
	n = collect(cases, nbad, good, 0);
	for (size_t i = 0; i < n; i++) {
		tests[i].name = strrchr(cases[i].json, '/') + 1;
		tests[i].test_func = run_case;
		tests[i].initial_state = &cases[i];
	}
	printf("%zu malformed and %zu valid manifests\n", nbad, n - nbad);
	rc = _cmocka_run_group_tests("manifest_data", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		free(cases[i].json);
		free(cases[i].err);
	}
	free(bad);
	free(good);
	return rc;
}
