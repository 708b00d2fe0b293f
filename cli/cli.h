/* cli.h - what the subcommands of `dispatch` share. */
#ifndef DISPATCH_CLI_H
#define DISPATCH_CLI_H

#include <stdio.h>

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

/* Prints "dispatch: error: ..." with the last recorded error. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints usage text to stderr and returns EXIT_USAGE. */
int cli_usage(const char *text);

/* Parses a positive integer option; returns -1 when it is not one. */
long cli_parse_count(const char *s, long max);

/* Formats a byte count: "812 KiB". */
const char *cli_bytes(char *buf, size_t len, unsigned long long n);

#endif
