/* buildrun.h - the build options and run shared by `build` and `artifacts export`. */
#ifndef DISPATCH_BUILDRUN_H
#define DISPATCH_BUILDRUN_H

#include <jansson.h>

#include "builder.h"
#include "manifest.h"

struct build_cmdline {
	struct builder_opts opts;
	const char **targets;   /* NULL-terminated, owned array of borrowed strings */
	const char *out_dir;    /* --out, for commands that take it */
	int json;
	int quiet;
	char **args;            /* positional arguments (borrowed from argv) */
	int nargs;
};

/*
 * Parses the build options. Returns 0 to go on, 1 when --help was printed,
 * -1 on a usage error (already reported). want_out: whether --out is allowed.
 */
int buildrun_parse(struct build_cmdline *cl, int argc, char **argv, const char *usage, const char *want_out);
void buildrun_release(struct build_cmdline *cl);

/* Loads the manifest and builds it with progress on stderr. Returns an exit code. */
int buildrun_execute(struct manifest **m, struct build_report **rep, struct build_cmdline *cl,
		     const char *manifest_path);

/* Prints the report as a JSON array; extra (may be NULL) adds fields per result index. */
void buildrun_print_json(const struct build_report *rep, json_t *const *extra);

/* Prints a table of the results and a summary line. */
void buildrun_print_summary(const struct build_report *rep);

/* The JSON object of one result (new reference). */
json_t *buildrun_result_json(const struct build_result *r);

#endif
