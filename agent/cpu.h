/* cpu.h - what this node offers: its ISA, the micro-architecture levels it runs, cores, memory, load. */
#ifndef DISPATCH_AGENT_CPU_H
#define DISPATCH_AGENT_CPU_H

#include <stddef.h>
#include <stdint.h>

/*
 * The agent is built once per ISA, so the ISA comes from the compiler's
 * macros. Levels are named as in toolchains/<isa>.json and listed from the
 * baseline (always present) to the best this CPU runs.
 */

#define CPU_LEVELS_MAX 8

/* x86-64 features that decide the level (CPUID, with OS support for the registers). */
enum {
	CPU_X86_CX16 = 1u << 0,
	CPU_X86_LAHF = 1u << 1,
	CPU_X86_POPCNT = 1u << 2,
	CPU_X86_SSE3 = 1u << 3,
	CPU_X86_SSE41 = 1u << 4,
	CPU_X86_SSE42 = 1u << 5,
	CPU_X86_SSSE3 = 1u << 6,
	CPU_X86_AVX = 1u << 7, /* includes OSXSAVE and XCR0 saving SSE and AVX state */
	CPU_X86_AVX2 = 1u << 8,
	CPU_X86_BMI1 = 1u << 9,
	CPU_X86_BMI2 = 1u << 10,
	CPU_X86_F16C = 1u << 11,
	CPU_X86_FMA = 1u << 12,
	CPU_X86_LZCNT = 1u << 13,
	CPU_X86_MOVBE = 1u << 14,
	CPU_X86_AVX512F = 1u << 15, /* includes XCR0 saving the opmask and ZMM state */
	CPU_X86_AVX512BW = 1u << 16,
	CPU_X86_AVX512CD = 1u << 17,
	CPU_X86_AVX512DQ = 1u << 18,
	CPU_X86_AVX512VL = 1u << 19,
};

/*
 * The raw facts the levels are derived from: CPUID bits on x86-64, the
 * kernel's AT_HWCAP and AT_HWCAP2 elsewhere (bit values of the ISA's
 * asm/hwcap.h, also defined in cpu.c so that every ISA's rules can be
 * tested on any host).
 */
struct cpu_features {
	uint32_t x86;
	uint64_t hwcap;
	uint64_t hwcap2;
};

struct cpu_info {
	const char *isa;		    /* static string */
	const char *levels[CPU_LEVELS_MAX]; /* static strings, baseline first */
	size_t nlevels;
	long cores;
	uint64_t memory; /* bytes of RAM */
	double load;	 /* 1-minute load average */
};

/* The ISA this agent was built for ("x86_64", "aarch64", ...), or NULL for an unknown one. */
const char *cpu_isa(void);

/* Every ISA dispatch knows, NULL-terminated (static). */
const char *const *cpu_isas(void);

/* Reads this CPU's features (CPUID or getauxval). */
void cpu_features_read(struct cpu_features *out);

/*
 * Fills out with the levels of isa that a CPU with features f runs,
 * baseline first; returns their number (0 for an unknown ISA). Pure.
 */
size_t cpu_levels(const char **out, size_t max, const char *isa, const struct cpu_features *f);

/* The 1-minute load average from /proc/loadavg (sysinfo() when unreadable). */
int cpu_load(double *out);

/*
 * Describes this node. isa overrides the detected ISA (--isa): then only
 * that ISA's baseline is claimed, since this CPU's features say nothing
 * about another ISA. ERR_UNSUPPORTED when the ISA is unknown.
 */
int cpu_detect(struct cpu_info *out, const char *isa);

#endif
