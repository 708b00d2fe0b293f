/* cmd_up.c - `dispatch up`: a local cluster to try dispatch on. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cluster.h"
#include "error.h"

static const char usage[] =
	"usage: dispatch up [--emulate ISA[,ISA...]] [--dir DIR] [--port N] [--timeout S]\n"
	"\n"
	"Starts a local cluster on loopback: dispatchd, one native agent and one\n"
	"agent per emulated ISA (aarch64, armhf, s390x, ppc64le) — the agent\n"
	"cross-built for that ISA by scripts/foreign, running under qemu-user.\n"
	"Later dispatch commands find it without --url or --token.\n"
	"\n"
	"      --emulate LIST   ISAs to emulate, e.g. aarch64,armhf,s390x\n"
	"      --dir DIR        where its state and logs live\n"
	"                       (default /var/lib/dispatch/cluster for root,\n"
	"                       else $XDG_STATE_HOME/dispatch/cluster)\n"
	"      --port N         dispatchd's port (default: any free one)\n"
	"      --timeout S      how long to wait for every node to join (default 90)\n"
	"\n"
	"'dispatch down' stops it and everything it runs.\n";

int cmd_up(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "emulate", required_argument, NULL, 'e' },
		{ "dir", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cluster_opts o = { 0 };
	long v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'e': o.emulate = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'p':
			if ((v = cli_parse_count(optarg, 65535)) < 0) {
				cli_error("--port: '%s' is not a port", optarg);
				return EXIT_USAGE;
			}
			o.port = (int)v;
			break;
		case 't':
			if ((v = cli_parse_count(optarg, 3600)) < 0) {
				cli_error("--timeout: '%s' is not a number of seconds", optarg);
				return EXIT_USAGE;
			}
			o.timeout_s = (double)v;
			break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage(usage);
		}
	}
	if (optind != argc)
		return cli_usage(usage);
	if (cluster_up(&o) < 0) {
		cli_error("%s", err_msg());
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
