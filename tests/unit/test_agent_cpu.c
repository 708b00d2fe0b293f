/* test_agent_cpu.c - the levels the agent claims exist in toolchains/, baseline first. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sched.h>

#include "cpu.h"
#include "error.h"

/* The level names of toolchains/<isa>.json, in the file's order (new reference). */
static json_t *toolchain_levels(const char *isa)
{
	const char *src = getenv("DISPATCH_SOURCE_DIR");
	char path[4096];
	json_t *doc, *names = json_array(), *l;
	size_t i;

	snprintf(path, sizeof(path), "%s/toolchains/%s.json", src ? src : ".", isa);
	doc = json_load_file(path, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "isa")), isa);
	json_array_foreach(json_object_get(doc, "levels"), i, l)
	    json_array_append(names, json_object_get(l, "name"));
	json_decref(doc);
	assert_true(json_array_size(names) > 0);
	return names;
}

static int has_name(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v) if (!strcmp(json_string_value(v), name)) return 1;
	return 0;
}

/* levels must be a prefix of the toolchain's list: baseline first, each level implies the previous. */
static void check_prefix(const char *isa, const char **levels, size_t n)
{
	json_t *names = toolchain_levels(isa);

	assert_true(n >= 1);
	assert_true(n <= json_array_size(names));
	for (size_t i = 0; i < n; i++) {
		assert_true(has_name(names, levels[i]));
		assert_string_equal(levels[i], json_string_value(json_array_get(names, i)));
	}
	json_decref(names);
}

static void test_cpu__this_isa_is_known(void **state)
{
	const char *isa = cpu_isa();
	int found = 0;

	(void)state;
	assert_non_null(isa);
	for (const char *const *p = cpu_isas(); *p; p++)
		found |= !strcmp(*p, isa);
	assert_true(found);
}

static void test_cpu__detected_levels_exist_in_toolchains(void **state)
{
	struct cpu_info ci;

	(void)state;
	assert_int_equal(cpu_detect(&ci, NULL), 0);
	assert_string_equal(ci.isa, cpu_isa());
	check_prefix(ci.isa, ci.levels, ci.nlevels);
	for (size_t i = 0; i < ci.nlevels; i++)
		printf("# level %s\n", ci.levels[i]);
}

static void test_cpu__every_isa_rule_matches_its_toolchain(void **state)
{
	struct cpu_features none = {0}, all = {UINT32_MAX, UINT64_MAX, UINT64_MAX};
	const char *levels[CPU_LEVELS_MAX];
	size_t n;

	(void)state;
	for (const char *const *isa = cpu_isas(); *isa; isa++) {
		json_t *names = toolchain_levels(*isa);

		n = cpu_levels(levels, CPU_LEVELS_MAX, *isa, &none);
		assert_int_equal(n, 1);
		check_prefix(*isa, levels, n);
		/* Every feature: every level of the toolchain. */
		n = cpu_levels(levels, CPU_LEVELS_MAX, *isa, &all);
		assert_int_equal(n, json_array_size(names));
		check_prefix(*isa, levels, n);
		json_decref(names);
	}
}

static void test_cpu__x86_levels_need_every_feature(void **state)
{
	const uint32_t v2 = CPU_X86_CX16 | CPU_X86_LAHF | CPU_X86_POPCNT | CPU_X86_SSE3 | CPU_X86_SSE41 |
			    CPU_X86_SSE42 | CPU_X86_SSSE3;
	const uint32_t v3 = v2 | CPU_X86_AVX | CPU_X86_AVX2 | CPU_X86_BMI1 | CPU_X86_BMI2 | CPU_X86_F16C |
			    CPU_X86_FMA | CPU_X86_LZCNT | CPU_X86_MOVBE;
	struct cpu_features f = {0};
	const char *l[CPU_LEVELS_MAX];

	(void)state;
	f.x86 = v2 & ~CPU_X86_LAHF;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "x86_64", &f), 1);
	f.x86 = v2;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "x86_64", &f), 2);
	assert_string_equal(l[1], "v2");
	f.x86 = v3 & ~CPU_X86_MOVBE;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "x86_64", &f), 2);
	f.x86 = v3;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "x86_64", &f), 3);
	/* AVX-512 without the v3 features is no v4. */
	f.x86 =
	    v2 | CPU_X86_AVX512F | CPU_X86_AVX512BW | CPU_X86_AVX512CD | CPU_X86_AVX512DQ | CPU_X86_AVX512VL;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "x86_64", &f), 2);
}

static void test_cpu__hwcap_rules(void **state)
{
	struct cpu_features f = {0};
	const char *l[CPU_LEVELS_MAX];

	(void)state;
	/* aarch64: atomics, fphp, asimdhp and dcpop make armv8.2-a; SVE2 alone is not enough. */
	f.hwcap = (1u << 8) | (1u << 9) | (1u << 10);
	f.hwcap2 = 1u << 1;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "aarch64", &f), 1);
	f.hwcap |= 1u << 16;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "aarch64", &f), 3);
	assert_string_equal(l[2], "armv9-a");
	/* armhf: NEON needs VFPv4 too. */
	f = (struct cpu_features){.hwcap = 1u << 12};
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "armhf", &f), 1);
	f.hwcap |= 1u << 16;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "armhf", &f), 2);
	/* ppc64le: POWER10 implies POWER9. */
	f = (struct cpu_features){.hwcap2 = 0x00040000};
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "ppc64le", &f), 1);
	f.hwcap2 |= 0x00800000;
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "ppc64le", &f), 3);
	/* s390x: vxe is z14, vxrs_ext2 z15. */
	f = (struct cpu_features){.hwcap = 1u << 13};
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "s390x", &f), 2);
	assert_string_equal(l[1], "z14");
	assert_int_equal(cpu_levels(l, CPU_LEVELS_MAX, "vax", &f), 0);
	assert_int_equal(cpu_levels(l, 1, "x86_64", &(struct cpu_features){.x86 = UINT32_MAX}), 1);
}

static void test_cpu__isa_override_claims_baseline_only(void **state)
{
	struct cpu_info ci;

	(void)state;
	assert_int_equal(cpu_detect(&ci, "s390x"), 0);
	assert_string_equal(ci.isa, "s390x");
	assert_int_equal(ci.nlevels, 1);
	assert_string_equal(ci.levels[0], "z196");
	assert_int_equal(cpu_detect(&ci, "vax"), ERR_UNSUPPORTED);
	assert_non_null(strstr(err_msg(), "vax"));
}

static void test_cpu__resources(void **state)
{
	struct cpu_info ci;
	double load = -1;

	(void)state;
	assert_int_equal(cpu_detect(&ci, NULL), 0);
	assert_true(ci.cores >= 1);
	assert_true(ci.memory > (1u << 20));
	assert_true(ci.load >= 0);
	assert_int_equal(cpu_load(&load), 0);
	assert_true(load >= 0);
}

/* Cores are the CPUs the agent may use: pinned to one, it offers one slot. */
static void test_cpu__cores_follow_affinity(void **state)
{
	cpu_set_t all, one;
	struct cpu_info ci;
	int cpu;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	assert_int_equal(cpu_detect(&ci, NULL), 0);
	assert_int_equal(ci.cores, CPU_COUNT(&all));
	for (cpu = 0; !CPU_ISSET(cpu, &all); cpu++)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(cpu_detect(&ci, NULL), 0);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	assert_int_equal(ci.cores, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu__this_isa_is_known),
		cmocka_unit_test(test_cpu__detected_levels_exist_in_toolchains),
		cmocka_unit_test(test_cpu__every_isa_rule_matches_its_toolchain),
		cmocka_unit_test(test_cpu__x86_levels_need_every_feature),
		cmocka_unit_test(test_cpu__hwcap_rules),
		cmocka_unit_test(test_cpu__isa_override_claims_baseline_only),
		cmocka_unit_test(test_cpu__resources),
		cmocka_unit_test(test_cpu__cores_follow_affinity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
