/* cmd_status.c - `dispatch status`: jobs, one job, or one instance. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "digest.h"
#include "error.h"

static const char usage[] =
	"usage: dispatch status [JOB | INSTANCE] [--json] [--url URL] [--token TOKEN]\n"
	"\n"
	"Without an argument, lists the jobs the dispatcher knows. With a job ID\n"
	"(j-N), shows the job's builds (one per object and target) and its\n"
	"instances: where each runs, its progress and state. With an instance ID\n"
	"(i-N), shows the instance and its history: every start, checkpoint,\n"
	"move to another node and exit.\n"
	"\n"
	"  --json         print the dispatcher's answer as JSON\n" CLI_REMOTE_HELP;

/* The widest value of key in the array's objects, at least min. */
static int column_width(const json_t *arr, const char *key, int min)
{
	const json_t *v;
	size_t i;
	int w = min;

	json_array_foreach(arr, i, v) {
		const char *s = cli_jstr(v, key, "");
		if ((int)strlen(s) > w)
			w = (int)strlen(s);
	}
	return w > 40 ? 40 : w;
}

static const char *first_line(char *buf, size_t len, const char *s)
{
	snprintf(buf, len, "%.*s", (int)strcspn(s, "\n"), s);
	return buf;
}

static void print_jobs(const json_t *doc)
{
	const json_t *jobs = json_object_get(doc, "jobs"), *j;
	int wn = column_width(jobs, "name", 4);
	char created[64];
	size_t i;

	if (!json_array_size(jobs)) {
		printf("no jobs\n");
		return;
	}
	printf("%-8s %-*s %-10s %9s %6s %6s  %s\n", "JOB", wn, "NAME", "STATE", "INSTANCES", "DONE", "FAILED",
	       "CREATED");
	json_array_foreach(jobs, i, j) {
		printf("%-8s %-*.*s %-10s %9lld %6lld %6lld  %s\n", cli_jstr(j, "id", "?"), wn, wn,
		       cli_jstr(j, "name", "-"), cli_jstr(j, "state", "?"), cli_count(j, "instances"),
		       cli_count(j, "done"), cli_count(j, "failed"),
		       cli_time(created, sizeof(created), json_object_get(j, "created")));
	}
}

static void print_builds(const json_t *builds)
{
	int wo = column_width(builds, "object", 6), wt = column_width(builds, "target", 6);
	const json_t *b;
	char line[256];
	size_t i;

	printf("\n%-*s %-*s %-9s %-6s %s\n", wo, "OBJECT", wt, "TARGET", "BUILD", "CACHED", "ARTIFACT");
	json_array_foreach(builds, i, b) {
		const char *err = cli_jstr(b, "error", NULL);
		printf("%-*.*s %-*.*s %-9s %-6s %.16s\n", wo, wo, cli_jstr(b, "object", "?"), wt, wt,
		       cli_jstr(b, "target", "?"), cli_jstr(b, "status", "?"),
		       json_is_true(json_object_get(b, "cached")) ? "yes" : "no", cli_jstr(b, "digest", "-"));
		if (err && *err)
			printf("    %s\n", first_line(line, sizeof(line), err));
	}
}

static void print_instances(const json_t *instances)
{
	int wo = column_width(instances, "object", 6);
	const json_t *in, *code;
	char target[96], prog[16], exit_code[24], line[256];
	size_t i;

	printf("\n%-8s %-*s %5s %-6s %-20s %8s %-12s %s\n", "INSTANCE", wo, "OBJECT", "INDEX", "NODE",
	       "TARGET", "PROGRESS", "STATE", "EXIT");
	json_array_foreach(instances, i, in) {
		const char *err = cli_jstr(in, "error", NULL);
		double p = cli_progress(in);

		code = json_object_get(in, "exit_code");
		snprintf(prog, sizeof(prog), p < 0 ? "-" : "%.0f%%", p * 100);
		snprintf(exit_code, sizeof(exit_code), json_is_integer(code) ? "%lld" : "-",
			 (long long)json_integer_value(code));
		printf("%-8s %-*.*s %5lld %-6s %-20s %8s %-12s %s\n", cli_jstr(in, "id", "?"), wo, wo,
		       cli_jstr(in, "object", "?"),
		       (long long)json_integer_value(json_object_get(in, "index")), cli_jstr(in, "node", "-"),
		       cli_target(target, sizeof(target), in), prog, cli_jstr(in, "state", "?"), exit_code);
		if (err && *err)
			printf("    %s\n", first_line(line, sizeof(line), err));
	}
}

static void print_job(const json_t *job)
{
	char created[64];

	printf("job %s '%s': %s, created %s\n", cli_jstr(job, "id", "?"), cli_jstr(job, "name", "?"),
	       cli_jstr(job, "state", "?"),
	       cli_time(created, sizeof(created), json_object_get(job, "created")));
	if (json_array_size(json_object_get(job, "builds")))
		print_builds(json_object_get(job, "builds"));
	if (json_array_size(json_object_get(job, "instances")))
		print_instances(json_object_get(job, "instances"));
}

static void print_field(const char *name, const char *value)
{
	printf("  %-14s %s\n", name, value && *value ? value : "-");
}

static void print_instance(const json_t *in)
{
	const json_t *history = json_object_get(in, "history"), *h, *code;
	char buf[128], target[96];
	double p = cli_progress(in);
	size_t i;

	printf("instance %s of job %s\n", cli_jstr(in, "id", "?"), cli_jstr(in, "job", "?"));
	snprintf(buf, sizeof(buf), "%s (index %lld, fork %lld)", cli_jstr(in, "object", "?"),
		 (long long)json_integer_value(json_object_get(in, "index")),
		 (long long)json_integer_value(json_object_get(in, "fork_index")));
	print_field("object", buf);
	snprintf(buf, sizeof(buf), "%s (generation %lld)", cli_jstr(in, "state", "?"),
		 (long long)json_integer_value(json_object_get(in, "generation")));
	print_field("state", buf);
	snprintf(buf, sizeof(buf), "%s (%s)", cli_jstr(in, "node", "-"),
		 cli_target(target, sizeof(target), in));
	print_field("node", buf);
	snprintf(buf, sizeof(buf), p < 0 ? "-" : "%.1f%%", p * 100);
	print_field("progress", buf);
	code = json_object_get(in, "exit_code");
	snprintf(buf, sizeof(buf), json_is_integer(code) ? "%lld" : "-", (long long)json_integer_value(code));
	print_field("exit code", buf);
	print_field("error", cli_jstr(in, "error", NULL));
	print_field("state digest", cli_jstr(in, "state_digest", NULL));
	print_field("result digest", cli_jstr(in, "result_digest", NULL));
	print_field("created", cli_time(buf, sizeof(buf), json_object_get(in, "created")));
	print_field("started", cli_time(buf, sizeof(buf), json_object_get(in, "started")));
	print_field("finished", cli_time(buf, sizeof(buf), json_object_get(in, "finished")));
	if (!json_array_size(history))
		return;
	printf("\n%-19s  %-14s %-6s %-10s %s\n", "TIME", "EVENT", "NODE", "ISA", "DETAIL");
	if (json_integer_value(json_object_get(in, "history_omitted")) > 0)
		printf("(%lld earlier entries not shown)\n",
		       (long long)json_integer_value(json_object_get(in, "history_omitted")));
	json_array_foreach(history, i, h) {
		const char *detail = cli_jstr(h, "detail", "");
		char line[256];

		/* A checkpoint's detail is its state's digest: the start is enough to tell them apart. */
		if (digest_is_valid(detail))
			snprintf(line, sizeof(line), "state %.16s", detail);
		else
			first_line(line, sizeof(line), detail);
		printf("%-19s  %-14s %-6s %-10s %s\n", cli_time(buf, sizeof(buf), json_object_get(h, "time")),
		       cli_jstr(h, "event", "?"), cli_jstr(h, "node", "-"), cli_jstr(h, "isa", "-"), line);
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	const char *id = NULL;
	client *c = NULL;
	json_t *doc = NULL;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((r = cli_remote_option(&opt, ch, usage, 1)) < 0)
			return EXIT_OK;
		if (r == 0)
			return cli_usage(usage);
	}
	if (argc - optind > 1)
		return cli_usage(usage);
	id = optind < argc ? argv[optind] : NULL;
	if (id && !cli_is_id(id, 'j') && !cli_is_id(id, 'i')) {
		cli_error("'%s' is neither a job ID (j-N) nor an instance ID (i-N)", id);
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0)
		goto fail;
	if (!id)
		r = client_get_json(&doc, c, "/v1/jobs");
	else if (id[0] == 'j')
		r = client_get_json(&doc, c, "/v1/jobs/%s", id);
	else
		r = client_get_json(&doc, c, "/v1/instances/%s", id);
	if (r < 0)
		goto fail;
	if (opt.json)
		cli_print_json(doc);
	else if (!id)
		print_jobs(doc);
	else if (id[0] == 'j')
		print_job(doc);
	else
		print_instance(doc);
	json_decref(doc);
	client_free(c);
	return EXIT_OK;
fail:
	cli_error("%s", err_msg());
	client_free(c);
	return EXIT_FAIL;
}
