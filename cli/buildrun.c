/* buildrun.c - option parsing, progress and output for build commands. */
#include "buildrun.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "progress.h"

#define TARGETS_MAX 256

int buildrun_parse(struct build_cmdline *cl, int argc, char **argv, const char *usage, const char *want_out)
{
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "cache", required_argument, NULL, 'c' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "toolchains", required_argument, NULL, 'C' },
		{ "build-user", required_argument, NULL, 'U' },
		{ "out", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'J' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t ntargets = 0;
	long v;
	int c;

	memset(cl, 0, sizeof(*cl));
	cl->targets = calloc(TARGETS_MAX + 1, sizeof(char *));
	if (!cl->targets)
		return -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:j:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (ntargets == TARGETS_MAX) {
				cli_error("at most %d --target options", TARGETS_MAX);
				return -1;
			}
			cl->targets[ntargets++] = optarg;
			break;
		case 'c': cl->opts.cache_dir = optarg; break;
		case 'C': cl->opts.toolchains_dir = optarg; break;
		case 'U': cl->opts.build_user = optarg; break;
		case 'j':
			if ((v = cli_parse_count(optarg, 256)) < 0) {
				cli_error("--jobs: '%s' is not a number from 1 to 256", optarg);
				return -1;
			}
			cl->opts.jobs = (int)v;
			break;
		case 'T':
			if ((v = cli_parse_count(optarg, 86400)) < 0) {
				cli_error("--timeout: '%s' is not a number of seconds from 1 to 86400", optarg);
				return -1;
			}
			cl->opts.timeout_s = (unsigned)v;
			break;
		case 'o':
			if (!want_out) {
				cli_usage(usage);
				return -1;
			}
			cl->out_dir = optarg;
			break;
		case 'J': cl->json = 1; break;
		case 'q': cl->quiet = 1; break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			cli_usage(usage);
			return -1;
		}
	}
	cl->opts.targets = cl->targets;
	cl->args = argv + optind;
	cl->nargs = argc - optind;
	return 0;
}

void buildrun_release(struct build_cmdline *cl)
{
	free(cl->targets);
	cl->targets = NULL;
}

int buildrun_execute(struct manifest **m, struct build_report **rep, struct build_cmdline *cl,
		     const char *manifest_path)
{
	struct progress prog;
	int r;

	if ((r = manifest_load_file(m, manifest_path)) < 0) {
		cli_error("%s", err_msg());
		return EXIT_FAIL;
	}
	progress_init(&prog, stderr, cl->quiet);
	cl->opts.progress = progress_update;
	cl->opts.progress_data = &prog;
	r = builder_run(rep, *m, &cl->opts);
	progress_finish(&prog);
	if (r < 0) {
		cli_error("%s", err_msg());
		return EXIT_FAIL;
	}
	return (*rep)->failed ? EXIT_FAIL : EXIT_OK;
}

json_t *buildrun_result_json(const struct build_result *r)
{
	int ok = r->state == BUILD_BUILT || r->state == BUILD_CACHED;
	json_t *o = json_pack("{sssssssssssbsfsI}", "object", r->object->name, "target", r->target,
			      "isa", r->tc->isa, "level", r->level->name, "status", ok ? "ok" : "failed",
			      "cached", r->state == BUILD_CACHED, "seconds", r->seconds,
			      "size", (json_int_t)r->size);

	if (!o)
		return NULL;
	json_object_set_new(o, "digest", ok ? json_string(r->artifact.hex) : json_null());
	json_object_set_new(o, "path", ok && r->path ? json_string(r->path) : json_null());
	json_object_set_new(o, "key", r->key.hex[0] ? json_string(r->key.hex) : json_null());
	if (r->message)
		json_object_set_new(o, "error", json_string(r->message));
	if (r->note)
		json_object_set_new(o, "note", json_string(r->note));
	return o;
}

void buildrun_print_json(const struct build_report *rep, json_t *const *extra)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < rep->count; i++) {
		json_t *o = buildrun_result_json(&rep->results[i]);
		if (o && extra && extra[i])
			json_object_update(o, extra[i]);
		json_array_append_new(a, o);
	}
	json_dumpf(a, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(a);
}

void buildrun_print_summary(const struct build_report *rep)
{
	char size[32];

	for (size_t i = 0; i < rep->count; i++) {
		const struct build_result *r = &rep->results[i];
		if (r->state == BUILD_FAILED) {
			printf("%-16s %-20s FAILED\n", r->object->name, r->target);
			fprintf(stderr, "--- %s for %s failed:\n%s\n", r->object->name, r->target,
				r->message ? r->message : "unknown error");
			continue;
		}
		printf("%-16s %-20s %-6s %9s  %.16s%s\n", r->object->name, r->target,
		       r->state == BUILD_CACHED ? "cached" : "built", cli_bytes(size, sizeof(size), r->size),
		       r->artifact.hex, r->note ? "  (cache entry was corrupt: rebuilt)" : "");
	}
	printf("%zu artifacts: %zu built, %zu cached, %zu failed in %.2f s\n", rep->count, rep->built,
	       rep->cached, rep->failed, rep->seconds);
}
