/* cmd_cancel.c - `dispatch cancel`: stop a job. */
#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "error.h"

static const char usage[] =
	"usage: dispatch cancel JOB [--json] [--url URL] [--token TOKEN]\n"
	"\n"
	"Stops every instance of the job (j-N) that has not finished: running\n"
	"objects are killed and their state is not kept. Finished instances and\n"
	"their results stay.\n"
	"\n"
	"  --json         print the dispatcher's answer as JSON\n" CLI_REMOTE_HELP;

int cmd_cancel(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
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
	if (argc - optind != 1)
		return cli_usage(usage);
	if (!cli_is_id(argv[optind], 'j')) {
		cli_error("'%s' is not a job ID (j-N)", argv[optind]);
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 ||
	    client_post_json(&doc, c, NULL, "/v1/jobs/%s/cancel", argv[optind]) < 0) {
		cli_error("%s", err_msg());
		client_free(c);
		return EXIT_FAIL;
	}
	if (opt.json)
		cli_print_json(doc);
	else
		printf("job %s: %s\n", cli_jstr(doc, "job", argv[optind]),
		       cli_jstr(doc, "state", "cancelled"));
	json_decref(doc);
	client_free(c);
	return EXIT_OK;
}
