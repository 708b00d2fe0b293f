/* cli.h - what the subcommands of `dispatch` share. */
#ifndef DISPATCH_CLI_H
#define DISPATCH_CLI_H

#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

/* Exit codes of every command. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

int cmd_build(int argc, char **argv);
int cmd_artifacts(int argc, char **argv);
int cmd_toolchains(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_result(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_continue(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_fork(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);

/* The options of every command that talks to dispatchd, as getopt_long values. */
enum { CLI_OPT_URL = 0x100, CLI_OPT_TOKEN, CLI_OPT_JSON, CLI_OPT_HELP };

#define CLI_REMOTE_OPTIONS                                           \
	{ "url", required_argument, NULL, CLI_OPT_URL },             \
	{ "token", required_argument, NULL, CLI_OPT_TOKEN },         \
	{ "help", no_argument, NULL, CLI_OPT_HELP }

#define CLI_REMOTE_HELP                                                                       \
	"  --url URL      the dispatcher, e.g. https://198.18.0.1:7443 (else DISPATCH_URL,\n"  \
	"                 else 'url = ...' in ~/.config/dispatch/config)\n"                      \
	"  --token TOKEN  the operator token (else DISPATCH_TOKEN, DISPATCH_TOKEN_FILE,\n"      \
	"                 'token = ...' or 'token_file = ...' in the config file; a flag\n"      \
	"                 is visible to other users in ps: prefer the file)\n"                \
	"  DISPATCH_CA    a CA file to trust for https (a dispatcher's own certificate)\n"

/* The remote options' values. */
struct cli_remote {
	const char *url;
	const char *token;
	int json;
};

/*
 * Handles the remote options and --help (and --json when json_ok) for
 * getopt_long's result c. Returns 1 when c was one of them, 0 when it
 * was not, -1 after --help was printed (exit 0).
 */
int cli_remote_option(struct cli_remote *r, int c, const char *usage, int json_ok);

/* Whether s is an ID of the kind prefix: "j-12" for 'j', "i-3" for 'i'. */
int cli_is_id(const char *s, char prefix);

/* Takes the command's single INSTANCE argument: 0, or an exit code after saying what is wrong. */
int cli_instance_arg(const char **id, int argc, char **argv, const char *usage);

/* Whether s can name an ISA (as the dispatcher accepts them): 1 to 16 of [A-Za-z0-9_.+-]. */
int cli_is_isa(const char *s);

/* Prints doc (borrowed) as indented JSON on stdout. */
void cli_print_json(const json_t *doc);

/* A string member of obj, or dflt when absent, null or not a string (borrowed). */
const char *cli_jstr(const json_t *obj, const char *key, const char *dflt);

/*
 * Formats a time from the API: seconds since the epoch (integer or real;
 * values past 1e11 are taken as milliseconds) as local "2024-11-24 17:20:01",
 * a string as it is, anything else as "-".
 */
const char *cli_time(char *buf, size_t len, const json_t *t);

/* Like cli_time(), but recent times relative: "4 s ago", "3 min ago". */
const char *cli_ago(char *buf, size_t len, const json_t *t);

/* "isa:level" from the "isa" and "level" members of obj, "isa" alone, or "-". */
const char *cli_target(char *buf, size_t len, const json_t *obj);

/* The "progress" member of obj as a fraction from 0 to 1, or -1 when there is none. */
double cli_progress(const json_t *obj);

/* The number of a member that is a count or an array ("instances": 3 or [...]), or -1. */
long long cli_count(const json_t *obj, const char *key);

/* Prints "dispatch: error: ..." with the last recorded error. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints usage text to stderr and returns EXIT_USAGE. */
int cli_usage(const char *text);

/* Parses a positive integer option; returns -1 when it is not one. */
long cli_parse_count(const char *s, long max);

/*
 * Parses the seconds of --timeout S (1 to 30 days) into *out. Prints why
 * and returns -1 when s is not one.
 */
int cli_parse_timeout(long *out, const char *s);

/* Formats a byte count: "812 KiB". */
const char *cli_bytes(char *buf, size_t len, unsigned long long n);

#endif
