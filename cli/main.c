/* main.c - `dispatch`: global options and the command table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"
#include "log.h"
#include "source.h"

#ifndef DISPATCH_VERSION
#define DISPATCH_VERSION "0"
#endif

static const struct cli_command commands[] = {
	{ "build", cmd_build, "build every object of a manifest for every target" },
	{ "artifacts", cmd_artifacts, "export built executables into a directory" },
	{ "toolchains", cmd_toolchains, "list the targets and whether their compilers are installed" },
};

static void print_help(FILE *f)
{
	fprintf(f, "usage: dispatch [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'dispatch COMMAND --help' describes a command.\n");
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dispatch: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage(const char *text)
{
	fputs(text, stderr);
	return EXIT_USAGE;
}

long cli_parse_count(const char *s, long max)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	v = strtol(s, &end, 10);
	if (*end || v < 1 || v > max)
		return -1;
	return v;
}

const char *cli_bytes(char *buf, size_t len, unsigned long long n)
{
	if (n >= 10ULL << 20)
		snprintf(buf, len, "%llu MiB", n >> 20);
	else if (n >= 10ULL << 10)
		snprintf(buf, len, "%llu KiB", n >> 10);
	else
		snprintf(buf, len, "%llu B", n);
	return buf;
}

int main(int argc, char **argv)
{
	int r;

	log_init("dispatch", LOG_INFO);
	if (argc < 2)
		return print_help(stderr), EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_help(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("dispatch %s\n", DISPATCH_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (source_global_init() < 0) {
			cli_error("%s", err_msg());
			return EXIT_FAIL;
		}
		r = commands[i].fn(argc - 1, argv + 1);
		source_global_shutdown();
		return r;
	}
	cli_error("unknown command '%s' (see 'dispatch --help')", argv[1]);
	return EXIT_USAGE;
}
