/* main.c - `dispatch`: global options and the command table. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	{ "submit", cmd_submit, "send a manifest and its sources to the dispatcher as a job" },
	{ "status", cmd_status, "show jobs, one job's builds and instances, or one instance" },
	{ "nodes", cmd_nodes, "list the nodes of the cluster; drain one or put it back" },
	{ "logs", cmd_logs, "print the output of an instance" },
	{ "result", cmd_result, "print or download the final state of an instance" },
	{ "cancel", cmd_cancel, "stop every unfinished instance of a job" },
	{ "stop", cmd_stop, "checkpoint an instance and hold it" },
	{ "continue", cmd_continue, "run a stopped instance again, anywhere or on a given node or ISA" },
	{ "migrate", cmd_migrate, "move an instance to another node or ISA through a checkpoint" },
	{ "fork", cmd_fork, "start copies of an instance from its latest checkpoint" },
	{ "up", cmd_up, "start a local cluster: dispatchd, a native agent and emulated ones" },
	{ "down", cmd_down, "stop the local cluster" },
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

int cli_parse_timeout(long *out, const char *s)
{
	long v = cli_parse_count(s, 30L * 86400);

	if (v < 0) {
		cli_error("--timeout: '%s' is not a number of seconds from 1 to %ld", s, 30L * 86400);
		return -1;
	}
	*out = v;
	return 0;
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

int cli_remote_option(struct cli_remote *r, int c, const char *usage, int json_ok)
{
	switch (c) {
	case CLI_OPT_URL: r->url = optarg; return 1;
	case CLI_OPT_TOKEN: r->token = optarg; return 1;
	case CLI_OPT_JSON:
		if (!json_ok)
			return 0;
		r->json = 1;
		return 1;
	case CLI_OPT_HELP: fputs(usage, stdout); return -1;
	default: return 0;
	}
}

int cli_is_id(const char *s, char prefix)
{
	size_t n;

	if (!s || s[0] != prefix || s[1] != '-')
		return 0;
	n = strspn(s + 2, "0123456789");
	return n > 0 && n <= 19 && s[2 + n] == '\0';
}

int cli_is_isa(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-");
	return n > 0 && n <= 16 && s[n] == '\0';
}

void cli_print_json(const json_t *doc)
{
	json_dumpf(doc, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
}

const char *cli_jstr(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : dflt;
}

/* Seconds since the epoch, or -1 when t is not a number. */
static double epoch_s(const json_t *t)
{
	double v;

	if (!json_is_number(t))
		return -1;
	v = json_number_value(t);
	return v > 1e11 ? v / 1000 : v;
}

const char *cli_time(char *buf, size_t len, const json_t *t)
{
	double v = epoch_s(t);
	time_t secs = (time_t)v;
	struct tm tm;

	if (json_is_string(t))
		snprintf(buf, len, "%s", json_string_value(t));
	else if (v < 0 || !localtime_r(&secs, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
	return buf;
}

const char *cli_ago(char *buf, size_t len, const json_t *t)
{
	double v = epoch_s(t), d = (double)time(NULL) - v;

	if (v < 0 || d < -5 || d >= 86400)
		return cli_time(buf, len, t);
	if (d < 1)
		snprintf(buf, len, "now");
	else if (d < 120)
		snprintf(buf, len, "%.0f s ago", d);
	else if (d < 7200)
		snprintf(buf, len, "%.0f min ago", d / 60);
	else
		snprintf(buf, len, "%.0f h ago", d / 3600);
	return buf;
}

const char *cli_target(char *buf, size_t len, const json_t *obj)
{
	const char *isa = cli_jstr(obj, "isa", NULL), *level = cli_jstr(obj, "level", NULL);

	if (isa && level)
		snprintf(buf, len, "%s:%s", isa, level);
	else
		snprintf(buf, len, "%s", isa ? isa : "-");
	return buf;
}

double cli_progress(const json_t *obj)
{
	const json_t *p = json_object_get(obj, "progress");
	double v;

	if (!json_is_number(p))
		return -1;
	v = json_number_value(p);
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

long long cli_count(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_array(v))
		return (long long)json_array_size(v);
	return -1;
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

int cli_instance_arg(const char **id, int argc, char **argv, const char *usage)
{
	if (argc - optind != 1)
		return cli_usage(usage);
	if (!cli_is_id(argv[optind], 'i')) {
		cli_error("'%s' is not an instance ID (i-N)", argv[optind]);
		return EXIT_USAGE;
	}
	*id = argv[optind];
	return 0;
}
