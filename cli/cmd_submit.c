/* cmd_submit.c - `dispatch submit`: send a job, optionally follow it to the end. */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "bundle_job.h"
#include "cli.h"
#include "client.h"
#include "error.h"
#include "follow.h"
#include "fsutil.h"

static const char usage[] =
	"usage: dispatch submit MANIFEST [--wait] [--timeout S] [--no-balance] [--json] [--url URL]\n"
	"                       [--token TOKEN]\n"
	"\n"
	"Validates MANIFEST, packs it with its local sources (path sources and\n"
	"local archives; .git directories are left out) into a job bundle and\n"
	"submits it to the dispatcher, which builds every object for the ISAs of\n"
	"its nodes and runs the instances. Prints the job's ID.\n"
	"\n"
	"  --wait         follow the job until every instance has finished and exit\n"
	"                 0 only if all of them succeeded. On a terminal, a table of\n"
	"                 the instances (node, target, progress, state) is redrawn\n"
	"                 on stderr, polling every 0.2 s; elsewhere a line is printed\n"
	"                 for every change of state and every 10% of progress,\n"
	"                 polling every second. A large job is polled less often.\n"
	"  --timeout S    with --wait: stop waiting after S seconds and exit 1; the\n"
	"                 job goes on\n"
	"  --no-balance   leave each running instance where it was placed: the\n"
	"                 dispatcher does not move it to a faster or idle node to\n"
	"                 finish sooner (draining its node or 'dispatch migrate'\n"
	"                 still move it)\n"
	"  --json         print the dispatcher's answer as JSON; with --wait, the\n"
	"                 final state of the job\n" CLI_REMOTE_HELP;

/* Bundles the manifest into a temporary file and posts it. */
static int submit(json_t **answer, client *c, const char *manifest, int balance)
{
	struct bundle_job_info info;
	const char *tmpdir = getenv("TMPDIR");
	char *work = NULL, *file = NULL;
	int r;

	if ((r = fs_mkdtemp(&work, tmpdir && *tmpdir ? tmpdir : "/tmp", "dispatch-submit")) < 0)
		return r;
	if (!(file = fs_join(work, "job.tar.zst"))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = bundle_job_create(&info, file, manifest, NULL)) < 0)
		goto out;
	r = client_post_file(answer, c, file, "application/x-dispatch-bundle", "/v1/jobs%s",
			     balance ? "" : "?balance=0");
out:
	fs_rm_rf(work);
	free(file);
	free(work);
	return r;
}

int cmd_submit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "no-balance", no_argument, NULL, 'B' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	json_t *answer = NULL, *job = NULL;
	struct follow_set set = { 0 };
	const char *job_id;
	client *c = NULL;
	long timeout_s = 0;
	int ch, r, wait = 0, balance = 1, rc = EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'w') {
			wait = 1;
		} else if (ch == 'B') {
			balance = 0;
		} else if (ch == 'T') {
			if (cli_parse_timeout(&timeout_s, optarg) < 0)
				return EXIT_USAGE;
		} else if ((r = cli_remote_option(&opt, ch, usage, 1)) < 0) {
			return EXIT_OK;
		} else if (r == 0) {
			return cli_usage(usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage(usage);
	if (timeout_s && !wait) {
		cli_error("--timeout only applies with --wait");
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 || submit(&answer, c, argv[optind], balance) < 0)
		goto fail;
	job_id = cli_jstr(answer, "job", NULL);
	if (!cli_is_id(job_id, 'j')) {
		err_set(ERR_CORRUPT, "the dispatcher at '%s' accepted the job but named no job ID",
			client_url(c));
		goto fail;
	}
	if (!wait) {
		if (opt.json)
			cli_print_json(answer);
		else
			printf("%s\n", job_id);
		rc = EXIT_OK;
		goto out;
	}
	if (!opt.json) {
		printf("%s\n", job_id);
		fflush(stdout);
	}
	set.job_id = job_id;
	if (follow_job(&job, c, &set, (double)timeout_s) < 0)
		goto fail;
	rc = follow_report(job, &set) ? EXIT_OK : EXIT_FAIL;
	if (opt.json)
		cli_print_json(job);
	goto out;
fail:
	cli_error("%s", err_msg());
out:
	json_decref(job);
	json_decref(answer);
	client_free(c);
	return rc;
}
