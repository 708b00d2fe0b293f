/* cmd_toolchains.c - `dispatch toolchains`: the targets and their compilers. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "builder.h"
#include "cli.h"
#include "error.h"
#include "toolchain.h"

static const char usage[] =
	"usage: dispatch toolchains [--json] [--toolchains DIR] [--cache DIR]\n"
	"\n"
	"Lists every ISA dispatch can build for, its tuning levels, whether its\n"
	"compiler is installed (and which Debian package provides it if not),\n"
	"and whether this machine can run its binaries (natively or via qemu-user).\n";

/* Whether binaries of this ISA run here: natively, or through binfmt_misc. */
static const char *runner(const struct toolchain *tc)
{
	char path[256];

	if (!strcmp(tc->triple, "x86_64-linux-gnu") && sizeof(void *) == 8) {
#if defined(__x86_64__)
		return "native";
#endif
	}
	snprintf(path, sizeof(path), "/proc/sys/fs/binfmt_misc/%s", tc->qemu);
	return access(path, F_OK) == 0 ? tc->qemu : "none";
}

int cmd_toolchains(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "toolchains", required_argument, NULL, 'C' },
		{ "cache", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *cache = NULL;
	struct toolchain_set *set = NULL;
	json_t *arr = NULL;
	int c, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'J': json = 1; break;
		case 'C': dir = optarg; break;
		case 'c': cache = optarg; break;
		case 'h': fputs(usage, stdout); return EXIT_OK;
		default: return cli_usage(usage);
		}
	}
	if (optind != argc)
		return cli_usage(usage);
	if (toolchain_set_load(&set, dir ? dir : toolchain_default_dir()) < 0) {
		cli_error("%s", err_msg());
		return EXIT_FAIL;
	}
	arr = json_array();
	if (!json)
		printf("%-9s %-10s %-9s %-10s %s\n", "ISA", "STATUS", "COMPILER", "RUNS VIA", "LEVELS");
	for (size_t i = 0; i < set->count; i++) {
		struct toolchain *tc = &set->items[i];
		json_t *levels = json_array();
		char lv[256] = "";

		toolchain_probe(tc, cache ? cache : builder_default_cache_dir(), 1);
		for (size_t j = 0; j < tc->nlevels; j++) {
			json_array_append_new(levels, json_string(tc->levels[j].name));
			snprintf(lv + strlen(lv), sizeof(lv) - strlen(lv), "%s%s", j ? " " : "", tc->levels[j].name);
		}
		if (json) {
			json_t *o = json_pack("{sssssssbsosssisssi}", "isa", tc->isa, "triple", tc->triple,
					      "compiler", tc->cc, "available", tc->available, "levels", levels,
					      "package", tc->package, "bits", tc->bits, "endian", tc->endian,
					      "elf_machine", tc->elf_machine);
			json_object_set_new(o, "version", tc->version ? json_string(tc->version) : json_null());
			json_object_set_new(o, "runs_via", json_string(runner(tc)));
			if (!tc->available)
				json_object_set_new(o, "why", json_string(tc->why ? tc->why : "unavailable"));
			json_array_append_new(arr, o);
			continue;
		}
		json_decref(levels);
		printf("%-9s %-10s %-9s %-10s %s\n", tc->isa, tc->available ? "available" : "missing",
		       tc->version ? tc->version : "-", runner(tc), lv);
		if (!tc->available)
			printf("          %s\n", tc->why ? tc->why : "unavailable");
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	}
	json_decref(arr);
	toolchain_set_free(set);
	return EXIT_OK;
}
