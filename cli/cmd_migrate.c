/* cmd_migrate.c - `dispatch migrate`: move an instance through a checkpoint. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "error.h"
#include "follow.h"

static const char usage[] =
	"usage: dispatch migrate INSTANCE (--node NODE | --isa ISA) [--wait] [--timeout S] [--json]\n"
	"                        [--url URL] [--token TOKEN]\n"
	"\n"
	"Moves an instance (i-N) to another node, or to a node of another ISA: a\n"
	"running instance writes a checkpoint and exits, and continues from it\n"
	"there. A pending or stopped instance is just placed there.\n"
	"\n"
	"  --node NODE    the node to move to (n-N; 'dispatch nodes' lists them)\n"
	"  --isa ISA      move to a node of this ISA, e.g. aarch64 or s390x\n"
	"  --wait         wait until it runs again there and print how long the\n"
	"                 move took (stop request to running) and where it runs;\n"
	"                 exit 1 if it ends, is stopped or runs elsewhere instead.\n"
	"                 Polls every 0.2 s on a terminal, else every second,\n"
	"                 printing changes of state on stderr.\n"
	"  --timeout S    with --wait: stop waiting after S seconds (default 600)\n"
	"                 and exit 1; the move goes on\n"
	"  --json         print the dispatcher's answer as JSON; with --wait, the\n"
	"                 instance as it is at the end\n" CLI_REMOTE_HELP;

/* Where the instance should run, and the generation it ran in before. */
struct move {
	const char *node;
	const char *isa;
	long long generation;
};

static int check_moved(const json_t *in, void *arg)
{
	const struct move *m = arg;
	const char *id = cli_jstr(in, "id", "?"), *s = cli_jstr(in, "state", "?");
	const char *err = cli_jstr(in, "error", NULL), *node = cli_jstr(in, "node", "-");
	const char *isa = cli_jstr(in, "isa", "-");

	if (!strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "cancelled"))
		return err_set(ERR_CONFLICT, "instance %s ended (%s%s%.*s) before it moved", id, s,
			       err && *err ? ": " : "", err ? (int)strcspn(err, "\n") : 0, err ? err : "");
	if (!strcmp(s, "checkpointed"))
		return err_set(ERR_CONFLICT, "instance %s was stopped before it moved ('dispatch continue "
			       "%s' runs it again)", id, id);
	if (strcmp(s, "running") || json_integer_value(json_object_get(in, "generation")) <= m->generation)
		return 0;
	if (m->node ? !strcmp(node, m->node) : !strcmp(isa, m->isa))
		return 1;
	return err_set(ERR_CONFLICT, "instance %s runs again, but on %s (%s), not on %s", id, node, isa,
		       m->node ? m->node : m->isa);
}

/* Seconds from the last "migrate requested" to "running" after it, by the dispatcher's clock; -1: unknown. */
static double move_seconds(const json_t *in)
{
	const json_t *h, *t;
	double asked = -1, ran = -1;
	size_t i;

	json_array_foreach(json_object_get(in, "history"), i, h) {
		const char *event = cli_jstr(h, "event", "");

		if (!json_is_number(t = json_object_get(h, "time")))
			continue;
		if (!strcmp(event, "migrate requested")) {
			asked = json_number_value(t);
			ran = -1;
		} else if (!strcmp(event, "running") && asked >= 0 && ran < 0) {
			ran = json_number_value(t);
		}
	}
	return asked >= 0 && ran >= asked ? ran - asked : -1;
}

int cmd_migrate(int argc, char **argv)
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
	struct move m = { 0 };
	const char *id;
	double start = 0, took;
	long timeout_s = 0;
	client *c = NULL;
	char target[96];
	int ch, r, wait = 0, rc = EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'w') {
			wait = 1;
		} else if (ch == 'n') {
			m.node = optarg;
		} else if (ch == 'i') {
			m.isa = optarg;
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
	if (m.node && m.isa) {
		cli_error("--node and --isa exclude each other: a node has one ISA");
		return EXIT_USAGE;
	}
	if (!m.node && !m.isa) {
		cli_error("say where to move with --node or --isa");
		return EXIT_USAGE;
	}
	if (m.node && !cli_is_id(m.node, 'n')) {
		cli_error("--node: '%s' is not a node ID (n-N)", m.node);
		return EXIT_USAGE;
	}
	if (m.isa && !cli_is_isa(m.isa)) {
		cli_error("--isa: '%s' is not an ISA name", m.isa);
		return EXIT_USAGE;
	}
	if (timeout_s && !wait) {
		cli_error("--timeout only applies with --wait");
		return EXIT_USAGE;
	}
	if (!(body = m.node ? json_pack("{ss}", "node", m.node) : json_pack("{ss}", "isa", m.isa))) {
		err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (client_connect(&c, opt.url, opt.token) < 0)
		goto fail;
	if (wait) {
		/* The generation it runs in now: running in a later one is running after the move. */
		if (client_get_json(&inst, c, "/v1/instances/%s", id) < 0)
			goto fail;
		m.generation = (long long)json_integer_value(json_object_get(inst, "generation"));
		json_decref(inst);
		inst = NULL;
		start = follow_now();
	}
	if (client_post_json(&answer, c, body, "/v1/instances/%s/migrate", id) < 0)
		goto fail;
	if (!wait) {
		if (opt.json)
			cli_print_json(answer);
		else
			printf("%s: %s to %s\n", id, cli_jstr(answer, "state", "?"), m.node ? m.node : m.isa);
		rc = EXIT_OK;
		goto out;
	}
	if (follow_instance(&inst, c, id, (double)(timeout_s ? timeout_s : FOLLOW_TIMEOUT_S), check_moved,
			    &m) < 0)
		goto fail;
	/* The dispatcher's own times are exact; ours include the polling interval. */
	if ((took = move_seconds(inst)) < 0)
		took = follow_now() - start;
	if (opt.json)
		cli_print_json(inst);
	else
		printf("%s: moved in %.2f s, running on %s (%s), generation %lld\n", id, took,
		       cli_jstr(inst, "node", "?"), cli_target(target, sizeof(target), inst),
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
