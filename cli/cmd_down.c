/* cmd_down.c - `dispatch down`: stop the local cluster of `dispatch up`. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "cluster.h"
#include "error.h"

static const char usage[] =
	"usage: dispatch down [--dir DIR]\n"
	"\n"
	"Stops the local cluster that 'dispatch up' started: its agents, dispatchd\n"
	"and any object still running in it, with whatever the objects started\n"
	"(the agents' control groups hold it; they are removed too). Its state and\n"
	"logs stay in DIR.\n";

int cmd_down(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	int c, n;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage(usage);
		}
	}
	if (optind != argc)
		return cli_usage(usage);
	if ((n = cluster_down(dir)) < 0) {
		cli_error("%s", err_msg());
		return EXIT_FAIL;
	}
	printf("%s\n", n ? "local cluster stopped" : "no local cluster was running");
	return EXIT_OK;
}
