/* cmd_continue.c - `dispatch continue`: run a stopped instance again. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "error.h"
#include "follow.h"

static const char usage[] =
	"usage: dispatch continue INSTANCE [--node NODE | --isa ISA] [--wait] [--timeout S] [--json]\n"
	"                         [--url URL] [--token TOKEN]\n"
	"\n"
	"Lets a stopped (checkpointed) instance (i-N) run again from its\n"
	"checkpoint: on any node that can take it, on the given node, or on a\n"
	"node of the given ISA.\n"
	"\n"
	"  --node NODE    run it on this node (n-N; 'dispatch nodes' lists them)\n"
	"  --isa ISA      run it on a node of this ISA, e.g. aarch64 or s390x\n"
	"  --wait         wait until it runs and print where, or until it finishes;\n"
	"                 exit 1 if it fails or is cancelled. Polls every 0.2 s on\n"
	"                 a terminal, else every second, printing changes of state\n"
	"                 on stderr.\n"
	"  --timeout S    with --wait: stop waiting after S seconds (default 600)\n"
	"                 and exit 1; the instance stays pending\n"
	"  --json         print the dispatcher's answer as JSON; with --wait, the\n"
	"                 instance as it is at the end\n" CLI_REMOTE_HELP;

static int check_running(const json_t *in, void *arg)
{
	const char *id = cli_jstr(in, "id", "?"), *s = cli_jstr(in, "state", "?");
	const char *err = cli_jstr(in, "error", NULL);

	(void)arg;
	if (!strcmp(s, "running") || !strcmp(s, "done"))
		return 1;
	if (!strcmp(s, "failed") || !strcmp(s, "cancelled"))
		return err_set(ERR_CONFLICT, "instance %s %s%s%.*s", id, s, err && *err ? ": " : "",
			       err ? (int)strcspn(err, "\n") : 0, err ? err : "");
	if (!strcmp(s, "checkpointed"))
		return err_set(ERR_CONFLICT, "instance %s was stopped again before it ran", id);
	return 0;
}

int cmd_continue(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "node", required_argument, NULL, 'n' },
		{ "isa", required_argument, NULL, 'i' },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	json_t *body = NULL, *answer = NULL, *inst = NULL;
	const char *id, *node = NULL, *isa = NULL;
	long timeout_s = 0;
	client *c = NULL;
	char target[96];
	int ch, r, wait = 0, rc = EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'w') {
			wait = 1;
		} else if (ch == 'n') {
			node = optarg;
		} else if (ch == 'i') {
			isa = optarg;
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
	if (node && isa) {
		cli_error("--node and --isa exclude each other: a node has one ISA");
		return EXIT_USAGE;
	}
	if (node && !cli_is_id(node, 'n')) {
		cli_error("--node: '%s' is not a node ID (n-N)", node);
		return EXIT_USAGE;
	}
	if (isa && !cli_is_isa(isa)) {
		cli_error("--isa: '%s' is not an ISA name", isa);
		return EXIT_USAGE;
	}
	if (timeout_s && !wait) {
		cli_error("--timeout only applies with --wait");
		return EXIT_USAGE;
	}
	body = node ? json_pack("{ss}", "node", node) : isa ? json_pack("{ss}", "isa", isa) : json_object();
	if (!body) {
		err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 ||
	    client_post_json(&answer, c, body, "/v1/instances/%s/continue", id) < 0)
		goto fail;
	if (!wait) {
		if (opt.json)
			cli_print_json(answer);
		else
			printf("%s: %s%s%s\n", id, cli_jstr(answer, "state", "?"),
			       node || isa ? ", to run on " : "", node ? node : isa ? isa : "");
		rc = EXIT_OK;
		goto out;
	}
	if (follow_instance(&inst, c, id, (double)(timeout_s ? timeout_s : FOLLOW_TIMEOUT_S), check_running,
			    NULL) < 0)
		goto fail;
	if (opt.json)
		cli_print_json(inst);
	else if (!strcmp(cli_jstr(inst, "state", ""), "done"))
		printf("%s: done (it finished before it was seen running)\n", id);
	else
		printf("%s: running on %s (%s), generation %lld\n", id, cli_jstr(inst, "node", "?"),
		       cli_target(target, sizeof(target), inst),
		       (long long)json_integer_value(json_object_get(inst, "generation")));
	rc = EXIT_OK;
	goto out;
fail:
	cli_error("%s", err_msg());
out:
	json_decref(inst);
	json_decref(answer);
	json_decref(body);
	client_free(c);
	return rc;
}
