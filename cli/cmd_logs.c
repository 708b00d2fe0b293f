/* cmd_logs.c - `dispatch logs`: what an instance wrote, and with --follow what it writes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "error.h"
#include "follow.h"

/* The dispatcher keeps the first 1 MiB; the rest is headroom. */
#define LOGS_MAX (4u << 20)

static const char usage[] =
	"usage: dispatch logs INSTANCE [--follow [--timeout S]] [--url URL] [--token TOKEN]\n"
	"\n"
	"Prints the standard output and error of an instance (i-N) as its agents\n"
	"relayed them, across every node it ran on: the first 1 MiB the\n"
	"dispatcher keeps.\n"
	"\n"
	"  -f, --follow   go on printing what the instance writes (agents relay it\n"
	"                 every two seconds) until it is done, failed or cancelled;\n"
	"                 its changes of state, node and generation go to stderr\n"
	"  --timeout S    with --follow: give up after S seconds (exit 1); default:\n"
	"                 no limit (Ctrl-C ends it, exit 0)\n"
	"\n" CLI_REMOTE_HELP;

/*
 * Writes what the dispatcher has of the log past *offset to stdout and moves
 * *offset on. *interrupted: the write was cut short by a signal (Ctrl-C
 * while stdout was blocked, e.g. a pager), not a failure of its own.
 */
static int print_new(client *c, const char *id, size_t *offset, int *interrupted)
{
	struct buf text = BUF_INIT(LOGS_MAX);
	int r = client_get_text(&text, c, "/v1/instances/%s/logs?offset=%zu", id, *offset);

	if (r == 0 && text.len && (fwrite(buf_str(&text), 1, text.len, stdout) != text.len || fflush(stdout) != 0)) {
		*interrupted = errno == EINTR;
		r = err_set(ERR_IO, "cannot write the log to standard output");
	}
	if (r == 0)
		*offset += text.len;
	buf_release(&text);
	return r;
}

/* How long a follow waits, after a cancel, for the agent to relay the last of the log. */
#define CANCEL_GRACE_S 10.0

struct follow_logs {
	client *c;
	const char *id;
	size_t offset;
	int failed;	    /* the log could not be read or written: the follow ends with that error */
	int interrupted;    /* a write was cut short by Ctrl-C: the follow ends quietly */
	double cancelled_at; /* when the follow saw the instance cancelled, 0: not yet */
};

/*
 * Whether a cancelled instance's log is complete: the agent has reported the
 * run's end (a "stopped" entry after the "cancelled" one), or it was not on
 * a node when it was cancelled, or the agent has been given long enough.
 */
static int cancel_settled(const json_t *inst, struct follow_logs *f)
{
	const json_t *history = json_object_get(inst, "history"), *h;
	int settled = 0;
	size_t i;

	json_array_foreach(history, i, h) {
		const char *event = cli_jstr(h, "event", "");
		if (!strcmp(event, "cancelled"))
			settled = !json_is_string(json_object_get(h, "node")) && !json_is_integer(json_object_get(h, "node"));
		else if (!strcmp(event, "stopped"))
			settled = 1;
	}
	if (!f->cancelled_at)
		f->cancelled_at = follow_now();
	return settled || follow_now() - f->cancelled_at >= CANCEL_GRACE_S;
}

/*
 * follow_instance()'s check, at each poll: the log so far. The wait is over
 * once the instance has ended and its log is complete: the agent relays the
 * last of the log before the exit that makes an instance done or failed; a
 * cancel is decided by the dispatcher at once, and the agent's last relay
 * comes with its report of the end (see cancel_settled()).
 */
static int logs_check(const json_t *inst, void *arg)
{
	struct follow_logs *f = arg;
	const char *state = cli_jstr(inst, "state", "");
	int r = print_new(f->c, f->id, &f->offset, &f->interrupted);

	if (r == ERR_NET)
		return 0; /* the dispatcher is away a moment: follow_instance() rides that out */
	if (r < 0) {
		f->failed = !f->interrupted;
		return r;
	}
	if (!strcmp(state, "cancelled"))
		return cancel_settled(inst, f);
	return !strcmp(state, "done") || !strcmp(state, "failed");
}

int cmd_logs(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 'T' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	struct follow_logs f = { 0 };
	json_t *inst = NULL;
	long timeout_s = 0;
	int ch, r, follow = 0, rc = EXIT_OK;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f", longopts, NULL)) != -1) {
		if (ch == 'f') {
			follow = 1;
			continue;
		}
		if (ch == 'T') {
			if (cli_parse_timeout(&timeout_s, optarg) < 0)
				return EXIT_USAGE;
			continue;
		}
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
	if (timeout_s && !follow) {
		cli_error("--timeout only applies with --follow");
		return EXIT_USAGE;
	}
	f.id = argv[optind];
	if (client_connect(&f.c, opt.url, opt.token) < 0) {
		cli_error("%s", err_msg());
		return EXIT_FAIL;
	}
	if (!follow)
		r = print_new(f.c, f.id, &f.offset, &f.interrupted);
	else if ((r = follow_instance(&inst, f.c, f.id, (double)timeout_s, logs_check, &f)) == ERR_IO && !f.failed)
		r = 0; /* Ctrl-C or SIGTERM: the way out of a follow */
	if (r < 0) {
		cli_error("%s", err_msg());
		rc = EXIT_FAIL;
	}
	json_decref(inst);
	client_free(f.c);
	return rc;
}
