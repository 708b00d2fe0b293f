/* cmd_build.c - `dispatch build`: build a manifest for every target. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buildrun.h"
#include "cli.h"
#include "error.h"

static const char usage[] =
	"usage: dispatch build MANIFEST [--target T]... [--cache DIR] [--jobs N] [--json]\n"
	"\n"
	"Builds every object of MANIFEST for every target, in parallel. Artifacts\n"
	"are cached by the digest of everything that determines them, so an\n"
	"unchanged object is never compiled twice.\n"
	"\n"
	"  -t, --target T       build for T (ISA or ISA:LEVEL; repeatable). Default:\n"
	"                       the baseline of every ISA whose compiler is installed\n"
	"      --cache DIR      the cache (default $DISPATCH_CACHE or ~/.cache/dispatch)\n"
	"  -j, --jobs N         compilers run at once (default: CPUs)\n"
	"      --timeout S      time limit of one (object, target) build (default 600)\n"
	"      --toolchains DIR target descriptions (default: the installed ones)\n"
	"      --build-user U   when root, run compilers as U (default: nobody)\n"
	"      --json           print a JSON array, one element per (object, target)\n"
	"  -q, --quiet          print failures only\n"
	"\n"
	"Exit status: 0 when every pair built, 1 when any failed, 2 on bad usage.\n";

int cmd_build(int argc, char **argv)
{
	struct build_cmdline cl;
	struct manifest *m = NULL;
	struct build_report *rep = NULL;
	int r, rc;

	r = buildrun_parse(&cl, argc, argv, usage, NULL);
	if (r != 0)
		return r < 0 ? EXIT_USAGE : EXIT_OK;
	if (cl.nargs != 1) {
		buildrun_release(&cl);
		return cli_usage(usage);
	}
	rc = buildrun_execute(&m, &rep, &cl, cl.args[0]);
	if (rep && (rc == EXIT_OK || rc == EXIT_FAIL)) {
		if (cl.json)
			buildrun_print_json(rep, NULL);
		else
			buildrun_print_summary(rep);
	}
	build_report_free(rep);
	manifest_free(m);
	buildrun_release(&cl);
	return rc;
}
