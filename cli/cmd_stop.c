/* cmd_stop.c - `dispatch stop`: checkpoint an instance and hold it. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "error.h"
#include "follow.h"

static const char usage[] =
	"usage: dispatch stop INSTANCE [--wait] [--timeout S] [--json] [--url URL] [--token TOKEN]\n"
	"\n"
	"Asks a running instance (i-N) to write a checkpoint and exit, and holds\n"
	"it: it is not placed again until 'dispatch continue'. A pending instance\n"
	"is held at once. Only instances that are running or pending can stop.\n"
	"\n"
	"  --wait         wait until the instance has checkpointed and print the\n"
	"                 digest of its state; exit 1 if it finishes, fails or is\n"
	"                 cancelled instead. Polls every 0.2 s on a terminal, else\n"
	"                 every second, printing changes of state on stderr.\n"
	"  --timeout S    with --wait: stop waiting after S seconds (default 600)\n"
	"                 and exit 1; the stop request stands\n"
	"  --json         print the dispatcher's answer as JSON; with --wait, the\n"
	"                 instance as it is at the end\n" CLI_REMOTE_HELP;

static int check_stopped(const json_t *in, void *arg)
{
	const char *id = cli_jstr(in, "id", "?"), *s = cli_jstr(in, "state", "?");
	const char *err = cli_jstr(in, "error", NULL);

	(void)arg;
	if (!strcmp(s, "checkpointed"))
		return 1;
	if (!strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "cancelled"))
		return err_set(ERR_CONFLICT, "instance %s ended (%s%s%.*s) before it checkpointed", id, s,
			       err && *err ? ": " : "", err ? (int)strcspn(err, "\n") : 0, err ? err : "");
	return 0;
}

static void print_stopped(const json_t *in, const char *id)
{
	const char *digest = cli_jstr(in, "state_digest", NULL);

	if (digest)
		printf("%s: checkpointed, state %s\n", id, digest);
	else
		printf("%s: held before it started; no checkpoint yet\n", id);
}

int cmd_stop(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	json_t *answer = NULL, *inst = NULL;
	long timeout_s = 0;
	const char *id;
	client *c = NULL;
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
	if ((r = cli_instance_arg(&id, argc, argv, usage)) != 0)
		return r;
	if (timeout_s && !wait) {
		cli_error("--timeout only applies with --wait");
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 ||
	    client_post_json(&answer, c, NULL, "/v1/instances/%s/stop", id) < 0)
		goto fail;
	if (!wait) {
		if (opt.json)
			cli_print_json(answer);
		else if (!strcmp(cli_jstr(answer, "state", ""), "stopping"))
			printf("%s: stopping; it checkpoints, then waits for 'dispatch continue %s'\n", id,
			       id);
		else
			printf("%s: %s\n", id, cli_jstr(answer, "state", "?"));
		rc = EXIT_OK;
		goto out;
	}
	if (follow_instance(&inst, c, id, (double)(timeout_s ? timeout_s : FOLLOW_TIMEOUT_S), check_stopped,
			    NULL) < 0)
		goto fail;
	if (opt.json)
		cli_print_json(inst);
	else
		print_stopped(inst, id);
	rc = EXIT_OK;
	goto out;
fail:
	cli_error("%s", err_msg());
out:
	json_decref(inst);
	json_decref(answer);
	client_free(c);
	return rc;
}
