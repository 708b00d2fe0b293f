/* cmd_nodes.c - `dispatch nodes`: the machines that run instances; draining one. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "error.h"

static const char usage[] =
	"usage: dispatch nodes [--json] [--url URL] [--token TOKEN]\n"
	"       dispatch nodes drain NODE [--json] [--url URL] [--token TOKEN]\n"
	"       dispatch nodes undrain NODE [--json] [--url URL] [--token TOKEN]\n"
	"\n"
	"Lists the nodes that joined the dispatcher: their ISA and the best level\n"
	"of it they run, cores, load, how many instances run there, their state\n"
	"(up; lost: no heartbeat lately; drained) and when they were last heard from.\n"
	"\n"
	"'drain' takes a node (n-N) out of service, e.g. for maintenance: nothing\n"
	"new is placed there, and what runs there checkpoints and continues on\n"
	"other nodes. 'undrain' puts it back in service.\n"
	"\n"
	"  --json         print the dispatcher's answer as JSON\n" CLI_REMOTE_HELP;

static void print_nodes(const json_t *doc)
{
	const json_t *nodes = json_object_get(doc, "nodes"), *n;
	char seen[64], load[16];
	int wn = 4;
	size_t i;

	if (!json_array_size(nodes)) {
		printf("no nodes\n");
		return;
	}
	json_array_foreach(nodes, i, n) {
		int len = (int)strlen(cli_jstr(n, "name", "-"));
		if (len > wn)
			wn = len > 32 ? 32 : len;
	}
	printf("%-6s %-*s %-9s %-10s %5s %5s %7s %-8s %s\n", "NODE", wn, "NAME", "ISA", "LEVEL", "CORES",
	       "LOAD", "RUNNING", "STATE", "LAST SEEN");
	json_array_foreach(nodes, i, n) {
		const json_t *l = json_object_get(n, "load");
		if (json_is_number(l))
			snprintf(load, sizeof(load), "%.2f", json_number_value(l));
		else
			snprintf(load, sizeof(load), "-");
		printf("%-6s %-*.*s %-9s %-10s %5lld %5s %7lld %-8s %s\n", cli_jstr(n, "id", "?"), wn, wn,
		       cli_jstr(n, "name", "-"), cli_jstr(n, "isa", "-"), cli_jstr(n, "level", "-"),
		       cli_count(n, "cores"), load, cli_count(n, "running"), cli_jstr(n, "state", "?"),
		       cli_ago(seen, sizeof(seen), json_object_get(n, "last_seen")));
	}
}

/* POSTs drain or undrain for node and prints the answer. */
static int set_drained(client *c, const char *verb, const char *node, int json)
{
	json_t *answer = NULL;
	int r;

	if ((r = client_post_json(&answer, c, NULL, "/v1/nodes/%s/%s", node, verb)) < 0)
		return r;
	if (json)
		cli_print_json(answer);
	else if (!strcmp(verb, "drain"))
		printf("%s: %s; what runs there moves to other nodes\n", node,
		       cli_jstr(answer, "state", "?"));
	else
		printf("%s: %s\n", node, cli_jstr(answer, "state", "?"));
	json_decref(answer);
	return 0;
}

int cmd_nodes(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	const char *verb = NULL, *node = NULL;
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
	if (optind < argc) {
		verb = argv[optind];
		if (strcmp(verb, "drain") && strcmp(verb, "undrain")) {
			cli_error("unknown subcommand '%s' of 'dispatch nodes' (drain or undrain)", verb);
			return EXIT_USAGE;
		}
		if (argc - optind != 2)
			return cli_usage(usage);
		node = argv[optind + 1];
		if (!cli_is_id(node, 'n')) {
			cli_error("'%s' is not a node ID (n-N)", node);
			return EXIT_USAGE;
		}
	}
	if (client_connect(&c, opt.url, opt.token) < 0)
		r = -1;
	else if (verb)
		r = set_drained(c, verb, node, opt.json);
	else if ((r = client_get_json(&doc, c, "/v1/nodes")) == 0 && opt.json)
		cli_print_json(doc);
	else if (r == 0)
		print_nodes(doc);
	if (r < 0)
		cli_error("%s", err_msg());
	json_decref(doc);
	client_free(c);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}
