/* cmd_result.c - `dispatch result`: the final state of an instance. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "bundle.h"
#include "cli.h"
#include "client.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"

#define RESULT_BUNDLE_MAX (1ull << 30) /* the dispatcher's limit on blobs */

static const char usage[] =
	"usage: dispatch result INSTANCE [--out DIR] [--json] [--url URL] [--token TOKEN]\n"
	"\n"
	"Prints the values of the final state of a finished instance (i-N): what\n"
	"its object wrote to state.json when it exited 0. Exact values are shown\n"
	"exactly: 64-bit integers in decimal, doubles as decimal and C99 hex float.\n"
	"\n"
	"  --out DIR      also download the result bundle (state.json and the blobs\n"
	"                 it names), check it against its SHA-256 and extract it\n"
	"                 into DIR, which is created and must be empty\n"
	"  --json         print the dispatcher's answer as JSON\n" CLI_REMOTE_HELP;

/* One value of state.json, as a person reads it. */
static void print_value(const char *key, int width, const json_t *v)
{
	const char *u64 = cli_jstr(v, "u64", NULL), *f64 = cli_jstr(v, "f64", NULL);
	char *text;

	printf("  %-*s = ", width, key);
	if (json_is_integer(v)) {
		printf("%lld\n", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		printf("%.17g\n", json_real_value(v));
	} else if (json_is_object(v) && json_object_size(v) == 1 && u64) {
		printf("%s\n", u64);
	} else if (json_is_object(v) && json_object_size(v) == 1 && f64) {
		char *end;
		double d = strtod(f64, &end);
		if (*end || end == f64)
			printf("%s\n", f64);
		else
			printf("%.17g (%s)\n", d, f64);
	} else if (json_is_object(v) && cli_jstr(v, "blob", NULL)) {
		printf("%s[%lld] %s-endian in %s\n", cli_jstr(v, "type", "?"),
		       (long long)json_integer_value(json_object_get(v, "count")), cli_jstr(v, "order", "?"),
		       cli_jstr(v, "blob", "?"));
	} else {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s\n", text ? text : "?");
		free(text);
	}
}

static void print_result(const json_t *doc)
{
	const json_t *state = json_object_get(doc, "state");
	const json_t *values = json_object_get(state, "values"), *v;
	const char *key;
	int width = 1;

	printf("instance %s: result %.16s, written on %s\n", cli_jstr(doc, "instance", "?"),
	       cli_jstr(doc, "digest", "-"), cli_jstr(state, "isa", "?"));
	if (json_is_string(json_object_get(doc, "note"))) {
		printf("  (%s: --out DIR)\n", cli_jstr(doc, "note", ""));
		return;
	}
	if (!json_is_object(values) || !json_object_size(values)) {
		printf("  (no values)\n");
		return;
	}
	json_object_foreach((json_t *)values, key, v)
		if ((int)strlen(key) > width)
			width = strlen(key) > 24 ? 24 : (int)strlen(key);
	json_object_foreach((json_t *)values, key, v)
		print_value(key, width, v);
}

/* Whether dir exists and holds anything; errors count as "holds". */
static int dir_is_used(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int used = 0;

	if (!d)
		return errno != ENOENT;
	while (!used && (e = readdir(d)) != NULL)
		used = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return used;
}

/* Downloads the result bundle, verifies it and extracts it into out_dir. */
static int download(client *c, const char *id, const char *digest, const char *out_dir, uint64_t *size)
{
	char *parent = NULL, *tmp = NULL, *file = NULL, *slash;
	digest_hex got;
	int r, created = 0;

	if (!digest || !digest_is_valid(digest))
		return err_set(ERR_CORRUPT, "the dispatcher named no valid result digest for %s", id);
	if (dir_is_used(out_dir))
		return err_set(ERR_EXISTS, "'%s' exists and is not an empty directory", out_dir);
	created = !fs_exists(out_dir);
	if ((r = fs_mkdir_p(out_dir, 0755)) < 0)
		return r;
	/* The download goes beside DIR, not into it, and not to a small /tmp. */
	parent = strdup(out_dir);
	if (!parent) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	while ((slash = strrchr(parent, '/')) && slash[1] == '\0' && slash != parent)
		*slash = '\0';
	slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, strlen(parent) + 1, ".");
	else
		slash[slash == parent] = '\0';
	if ((r = fs_mkdtemp(&tmp, parent, ".dispatch-result")) < 0)
		goto out;
	if (!(file = fs_join(tmp, "result.tar.zst"))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = client_download(&got, size, c, file, RESULT_BUNDLE_MAX, "/v1/blobs/%s", digest)) < 0)
		goto out;
	if (strcmp(got.hex, digest) != 0) {
		r = err_set(ERR_CORRUPT, "the result bundle of %s has SHA-256 %s, not %s", id, got.hex,
			    digest);
		goto out;
	}
	if ((r = bundle_extract_file(file, out_dir, 0, NULL)) < 0)
		err_prefix(r, "cannot extract the result bundle of %s", id);
out:
	if (tmp)
		fs_rm_rf(tmp);
	if (r < 0) {
		/* Leave DIR as it was: absent, or empty. */
		fs_rm_rf(out_dir);
		if (!created)
			mkdir(out_dir, 0755);
	}
	free(file);
	free(tmp);
	free(parent);
	return r;
}

int cmd_result(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "out", required_argument, NULL, 'o' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	const char *out_dir = NULL, *id;
	client *c = NULL;
	json_t *doc = NULL;
	uint64_t size = 0;
	char sz[32];
	int ch, r, rc = EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		if (ch == 'o') {
			out_dir = optarg;
			continue;
		}
		if ((r = cli_remote_option(&opt, ch, usage, 1)) < 0)
			return EXIT_OK;
		if (r == 0)
			return cli_usage(usage);
	}
	if (argc - optind != 1 || (out_dir && !*out_dir))
		return cli_usage(usage);
	id = argv[optind];
	if (!cli_is_id(id, 'i')) {
		cli_error("'%s' is not an instance ID (i-N)", id);
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 ||
	    client_get_json(&doc, c, "/v1/instances/%s/result", id) < 0)
		goto fail;
	if (out_dir && download(c, id, cli_jstr(doc, "digest", NULL), out_dir, &size) < 0)
		goto fail;
	if (opt.json) {
		cli_print_json(doc);
	} else {
		print_result(doc);
		if (out_dir)
			printf("result bundle (%s) extracted into %s\n", cli_bytes(sz, sizeof(sz), size),
			       out_dir);
	}
	rc = EXIT_OK;
	goto out;
fail:
	cli_error("%s", err_msg());
out:
	json_decref(doc);
	client_free(c);
	return rc;
}
