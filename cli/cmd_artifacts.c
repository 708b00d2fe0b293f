/* cmd_artifacts.c - `dispatch artifacts export`: executables out of the cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "artifact.h"
#include "buildrun.h"
#include "cli.h"
#include "error.h"
#include "fsutil.h"

static const char usage[] =
	"usage: dispatch artifacts export MANIFEST --out DIR [--target T]... [--cache DIR]\n"
	"                                 [--jobs N] [--json]\n"
	"\n"
	"Writes DIR/<target>/<object>, the executable of every object for every\n"
	"target (e.g. DIR/aarch64:armv8-a/primes), taking artifacts from the\n"
	"cache and building what is missing. Every artifact is verified against\n"
	"its digest before it is written. Build options are those of\n"
	"'dispatch build'.\n";

static int export_one(const struct build_result *r, const char *out_dir, cas *store, char **dest)
{
	char *dir = fs_join(out_dir, r->target);
	int rc;

	*dest = dir ? fs_join(dir, r->object->name) : NULL;
	if (!*dest)
		rc = err_set(ERR_NOMEM, "out of memory");
	else if ((rc = fs_mkdir_p(dir, 0755)) == 0)
		rc = artifact_extract_exe(store, r->artifact.hex, r->object->entry, *dest);
	free(dir);
	return rc;
}

static int export(struct build_cmdline *cl)
{
	struct manifest *m = NULL;
	struct build_report *rep = NULL;
	json_t **extra = NULL;
	cas *store = NULL;
	int rc, failed = 0;

	rc = buildrun_execute(&m, &rep, cl, cl->args[1]);
	if (!rep || (rc != EXIT_OK && rc != EXIT_FAIL))
		goto out; /* the manifest or the build could not even start: already reported */
	if (builder_open_store(&store, cl->opts.cache_dir ? cl->opts.cache_dir : builder_default_cache_dir()) < 0 ||
	    fs_mkdir_p(cl->out_dir, 0755) < 0) {
		cli_error("%s", err_msg());
		rc = EXIT_FAIL;
		goto out;
	}
	extra = calloc(rep->count + 1, sizeof(*extra));
	for (size_t i = 0; extra && i < rep->count; i++) {
		const struct build_result *r = &rep->results[i];
		char *dest = NULL;

		if (r->state != BUILD_BUILT && r->state != BUILD_CACHED)
			continue;
		if (export_one(r, cl->out_dir, store, &dest) < 0) {
			cli_error("cannot export %s for %s: %s", r->object->name, r->target, err_msg());
			failed++;
		} else {
			extra[i] = json_pack("{ss}", "exported", dest);
			if (!cl->json && !cl->quiet)
				printf("%s\n", dest);
		}
		free(dest);
	}
	if (cl->json)
		buildrun_print_json(rep, extra);
	else
		printf("%zu executables exported to %s, %zu failed\n", rep->count - rep->failed - failed,
		       cl->out_dir, rep->failed + failed);
	if (failed)
		rc = EXIT_FAIL;
out:
	for (size_t i = 0; extra && i < rep->count; i++)
		json_decref(extra[i]);
	free(extra);
	cas_free(store);
	build_report_free(rep);
	manifest_free(m);
	return rc;
}

int cmd_artifacts(int argc, char **argv)
{
	struct build_cmdline cl;
	int r;

	r = buildrun_parse(&cl, argc, argv, usage, "out");
	if (r != 0)
		return r < 0 ? EXIT_USAGE : EXIT_OK;
	if (cl.nargs < 1) {
		buildrun_release(&cl);
		return cli_usage(usage);
	}
	if (strcmp(cl.args[0], "export") != 0) {
		cli_error("unknown artifacts command '%s' (expected export)", cl.args[0]);
		buildrun_release(&cl);
		return EXIT_USAGE;
	}
	if (cl.nargs != 2 || !cl.out_dir) {
		buildrun_release(&cl);
		return cli_usage(usage);
	}
	r = export(&cl);
	buildrun_release(&cl);
	return r;
}
