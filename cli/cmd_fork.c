/* cmd_fork.c - `dispatch fork`: copies of an instance that go on from its state. */
#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "error.h"
#include "follow.h"

#define FORKS_MAX 1000 /* what the dispatcher takes in one request */

static const char usage[] =
	"usage: dispatch fork INSTANCE N [--wait] [--timeout S] [--json] [--url URL] [--token TOKEN]\n"
	"\n"
	"Starts N (1 to 1000) new instances of the same object and job that go on\n"
	"from the latest checkpoint of INSTANCE (i-N), or from its initial state\n"
	"when it has none; each gets its own fork index. The instance itself goes\n"
	"on. Prints the new instances' IDs, one a line.\n"
	"\n"
	"  --wait         follow the forks until every one has finished, as\n"
	"                 'dispatch submit --wait' follows a job, and exit 0 only\n"
	"                 if all of them succeeded\n"
	"  --timeout S    with --wait: stop waiting after S seconds (default 600)\n"
	"                 and exit 1; the forks go on\n"
	"  --json         print the dispatcher's answer as JSON; with --wait, the\n"
	"                 job with just the forks at the end\n" CLI_REMOTE_HELP;

/* Checks the answer's fork IDs: they end up in paths and messages. */
static int check_forks(const json_t *answer, long count, const char *url)
{
	const json_t *forks = json_object_get(answer, "forks"), *v;
	const char *said = cli_jstr(answer, "error", NULL);
	size_t i;

	if (!json_is_array(forks) || json_array_size(forks) != (size_t)count)
		return err_set(ERR_CORRUPT, "the dispatcher at '%s' answered the fork without %ld instance "
			       "IDs%s%.200s%s", url, count, said ? " (it said: " : "", said ? said : "",
			       said ? ")" : "");
	json_array_foreach(forks, i, v)
		if (!cli_is_id(json_string_value(v), 'i'))
			return err_set(ERR_CORRUPT, "the dispatcher at '%s' named fork %zu '%.40s', not an "
				       "instance ID", url, i, json_is_string(v) ? json_string_value(v) : "?");
	return 0;
}

int cmd_fork(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	json_t *body = NULL, *answer = NULL, *inst = NULL, *job = NULL, *forks, *v;
	struct follow_set set = { 0 };
	const char *id;
	char label[64];
	long count, timeout_s = 0;
	client *c = NULL;
	size_t i;
	int ch, r, wait = 0, rc = EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'w') {
			wait = 1;
		} else if (ch == 'T') {
			if (cli_parse_timeout(&timeout_s, optarg) < 0)
				return EXIT_USAGE;
		} else if ((r = cli_remote_option(&opt, ch, usage, 1)) < 0) {
			return EXIT_OK;
		} else if (r == 0) {
			return cli_usage(usage);
		}
	}
	if (argc - optind != 2)
		return cli_usage(usage);
	id = argv[optind];
	if (!cli_is_id(id, 'i')) {
		cli_error("'%s' is not an instance ID (i-N)", id);
		return EXIT_USAGE;
	}
	if ((count = cli_parse_count(argv[optind + 1], FORKS_MAX)) < 0) {
		cli_error("'%s' is not a number of forks from 1 to %d", argv[optind + 1], FORKS_MAX);
		return EXIT_USAGE;
	}
	if (timeout_s && !wait) {
		cli_error("--timeout only applies with --wait");
		return EXIT_USAGE;
	}
	if (!(body = json_pack("{sI}", "count", (json_int_t)count))) {
		err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 ||
	    client_post_json(&answer, c, body, "/v1/instances/%s/fork", id) < 0)
		goto fail;
	if (check_forks(answer, count, client_url(c)) < 0)
		goto fail;
	forks = json_object_get(answer, "forks");
	if (opt.json && !wait)
		cli_print_json(answer);
	if (!opt.json) {
		json_array_foreach(forks, i, v)
			printf("%s\n", json_string_value(v));
		fflush(stdout);
	}
	if (!wait) {
		rc = EXIT_OK;
		goto out;
	}
	/* The forks are instances of the parent's job: follow them there, one request a poll. */
	if (client_get_json(&inst, c, "/v1/instances/%s", id) < 0)
		goto fail;
	set.job_id = cli_jstr(inst, "job", NULL);
	if (!cli_is_id(set.job_id, 'j')) {
		err_set(ERR_CORRUPT, "the dispatcher at '%s' names no job of instance %s", client_url(c), id);
		goto fail;
	}
	snprintf(label, sizeof(label), "forks of %s", id);
	set.only = forks;
	set.label = label;
	if (follow_job(&job, c, &set, (double)(timeout_s ? timeout_s : FOLLOW_TIMEOUT_S)) < 0)
		goto fail;
	rc = follow_report(job, &set) ? EXIT_OK : EXIT_FAIL;
	if (opt.json)
		cli_print_json(job);
	goto out;
fail:
	cli_error("%s", err_msg());
out:
	json_decref(job);
	json_decref(inst);
	json_decref(answer);
	json_decref(body);
	client_free(c);
	return rc;
}
