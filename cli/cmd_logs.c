/* cmd_logs.c - `dispatch logs`: what an instance wrote. */
#include <stdio.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "error.h"

/* The dispatcher keeps the last 1 MiB; the rest is headroom. */
#define LOGS_MAX (4u << 20)

static const char usage[] =
	"usage: dispatch logs INSTANCE [--url URL] [--token TOKEN]\n"
	"\n"
	"Prints the standard output and error of an instance (i-N) as its agents\n"
	"relayed them, across every node it ran on: the last 1 MiB the\n"
	"dispatcher keeps.\n"
	"\n" CLI_REMOTE_HELP;

int cmd_logs(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	struct buf text = BUF_INIT(LOGS_MAX);
	client *c = NULL;
	int ch, r, rc = EXIT_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((r = cli_remote_option(&opt, ch, usage, 0)) < 0)
			return EXIT_OK;
		if (r == 0)
			return cli_usage(usage);
	}
	if (argc - optind != 1)
		return cli_usage(usage);
	if (!cli_is_id(argv[optind], 'i')) {
		cli_error("'%s' is not an instance ID (i-N)", argv[optind]);
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 ||
	    client_get_text(&text, c, "/v1/instances/%s/logs", argv[optind]) < 0) {
		cli_error("%s", err_msg());
		rc = EXIT_FAIL;
		goto out;
	}
	if (fwrite(buf_str(&text), 1, text.len, stdout) != text.len || fflush(stdout) != 0) {
		cli_error("cannot write the log to standard output");
		rc = EXIT_FAIL;
	}
out:
	buf_release(&text);
	client_free(c);
	return rc;
}
