/* cpu.c - ISA from the compiler, levels from CPUID or the kernel's hwcaps, resources from the kernel. */
#include "cpu.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "error.h"

#if defined(__x86_64__) && !defined(__ILP32__)
#define CPU_ISA "x86_64"
#elif defined(__aarch64__) && !defined(__AARCH64EB__)
#define CPU_ISA "aarch64"
#elif defined(__arm__) && defined(__ARM_PCS_VFP) && !defined(__ARMEB__)
#define CPU_ISA "armhf"
#elif defined(__s390x__)
#define CPU_ISA "s390x"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define CPU_ISA "ppc64le"
#elif defined(__riscv) && __riscv_xlen == 64
#define CPU_ISA "riscv64"
#endif

/* Bits of AT_HWCAP/AT_HWCAP2, from each ISA's arch/<isa>/include/uapi/asm/hwcap.h. */
#define ARM64_HWCAP_ATOMICS (1u << 8)
#define ARM64_HWCAP_FPHP (1u << 9)
#define ARM64_HWCAP_ASIMDHP (1u << 10)
#define ARM64_HWCAP_DCPOP (1u << 16)
#define ARM64_HWCAP2_SVE2 (1u << 1)
#define ARM_HWCAP_NEON (1u << 12)
#define ARM_HWCAP_VFPv4 (1u << 16)
#define S390_HWCAP_VXRS_EXT (1u << 13)	   /* vector enhancements 1: z14 */
#define S390_HWCAP_VXRS_EXT2 (1u << 15)	   /* vector enhancements 2: z15 */
#define PPC_FEATURE2_ARCH_3_00 0x00800000u /* POWER9 */
#define PPC_FEATURE2_ARCH_3_1 0x00040000u  /* POWER10 */

#define X86_V2                                                                                               \
	(CPU_X86_CX16 | CPU_X86_LAHF | CPU_X86_POPCNT | CPU_X86_SSE3 | CPU_X86_SSE41 | CPU_X86_SSE42 |       \
	 CPU_X86_SSSE3)
#define X86_V3                                                                                               \
	(X86_V2 | CPU_X86_AVX | CPU_X86_AVX2 | CPU_X86_BMI1 | CPU_X86_BMI2 | CPU_X86_F16C | CPU_X86_FMA |    \
	 CPU_X86_LZCNT | CPU_X86_MOVBE)
#define X86_V4                                                                                               \
	(X86_V3 | CPU_X86_AVX512F | CPU_X86_AVX512BW | CPU_X86_AVX512CD | CPU_X86_AVX512DQ | CPU_X86_AVX512VL)

static const char *const isas[] = {"x86_64", "aarch64", "armhf", "s390x", "ppc64le", "riscv64", NULL};

const char *cpu_isa(void)
{
#ifdef CPU_ISA
	return CPU_ISA;
#else
	return NULL;
#endif
}

const char *const *cpu_isas(void)
{
	return isas;
}

#if defined(__x86_64__)
static uint64_t read_xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static uint32_t x86_features(void)
{
	unsigned a = 0, b = 0, c = 0, d = 0, max;
	uint32_t f = 0;
	uint64_t xcr0 = 0;
	int osxsave;

	max = __get_cpuid_max(0, NULL);
	if (max < 1 || !__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	f |= c & bit_CMPXCHG16B ? CPU_X86_CX16 : 0;
	f |= c & bit_POPCNT ? CPU_X86_POPCNT : 0;
	f |= c & bit_SSE3 ? CPU_X86_SSE3 : 0;
	f |= c & bit_SSE4_1 ? CPU_X86_SSE41 : 0;
	f |= c & bit_SSE4_2 ? CPU_X86_SSE42 : 0;
	f |= c & bit_SSSE3 ? CPU_X86_SSSE3 : 0;
	f |= c & bit_F16C ? CPU_X86_F16C : 0;
	f |= c & bit_FMA ? CPU_X86_FMA : 0;
	f |= c & bit_MOVBE ? CPU_X86_MOVBE : 0;
	osxsave = (c & bit_OSXSAVE) != 0;
	if (osxsave)
		xcr0 = read_xcr0();
	/* AVX needs the OS to save the SSE and AVX registers (XCR0 bits 1, 2). */
	if (c & bit_AVX && osxsave && (xcr0 & 0x6) == 0x6)
		f |= CPU_X86_AVX;
	if (max >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		f |= b & bit_AVX2 ? CPU_X86_AVX2 : 0;
		f |= b & bit_BMI ? CPU_X86_BMI1 : 0;
		f |= b & bit_BMI2 ? CPU_X86_BMI2 : 0;
		/* AVX-512 needs opmask, upper ZMM and high ZMM state too (bits 5, 6, 7). */
		if (b & bit_AVX512F && (f & CPU_X86_AVX) && (xcr0 & 0xe6) == 0xe6)
			f |= CPU_X86_AVX512F;
		f |= b & bit_AVX512BW ? CPU_X86_AVX512BW : 0;
		f |= b & bit_AVX512CD ? CPU_X86_AVX512CD : 0;
		f |= b & bit_AVX512DQ ? CPU_X86_AVX512DQ : 0;
		f |= b & bit_AVX512VL ? CPU_X86_AVX512VL : 0;
	}
	if (__get_cpuid_max(0x80000000, NULL) >= 0x80000001 && __get_cpuid(0x80000001, &a, &b, &c, &d)) {
		f |= c & bit_LAHF_LM ? CPU_X86_LAHF : 0;
		f |= c & bit_ABM ? CPU_X86_LZCNT : 0;
	}
	return f;
}
#endif

void cpu_features_read(struct cpu_features *out)
{
	memset(out, 0, sizeof(*out));
#if defined(__x86_64__)
	out->x86 = x86_features();
#else
	out->hwcap = getauxval(AT_HWCAP);
	out->hwcap2 = getauxval(AT_HWCAP2);
#endif
}

static int has(uint64_t v, uint64_t bits)
{
	return (v & bits) == bits;
}

size_t cpu_levels(const char **out, size_t max, const char *isa, const struct cpu_features *f)
{
	const char *l[CPU_LEVELS_MAX];
	size_t n = 0;

	if (!isa) {
		return 0;
	} else if (!strcmp(isa, "x86_64")) {
		l[n++] = "baseline";
		if (has(f->x86, X86_V2))
			l[n++] = "v2";
		if (has(f->x86, X86_V3))
			l[n++] = "v3";
		if (has(f->x86, X86_V4))
			l[n++] = "v4";
	} else if (!strcmp(isa, "aarch64")) {
		l[n++] = "armv8-a";
		if (has(f->hwcap,
			ARM64_HWCAP_ATOMICS | ARM64_HWCAP_FPHP | ARM64_HWCAP_ASIMDHP | ARM64_HWCAP_DCPOP)) {
			l[n++] = "armv8.2-a";
			if (has(f->hwcap2, ARM64_HWCAP2_SVE2))
				l[n++] = "armv9-a";
		}
	} else if (!strcmp(isa, "armhf")) {
		l[n++] = "armv7-a";
		if (has(f->hwcap, ARM_HWCAP_NEON | ARM_HWCAP_VFPv4))
			l[n++] = "neon";
	} else if (!strcmp(isa, "s390x")) {
		l[n++] = "z196";
		if (has(f->hwcap, S390_HWCAP_VXRS_EXT)) {
			l[n++] = "z14";
			if (has(f->hwcap, S390_HWCAP_VXRS_EXT2))
				l[n++] = "z15";
		}
	} else if (!strcmp(isa, "ppc64le")) {
		l[n++] = "power8";
		if (has(f->hwcap2, PPC_FEATURE2_ARCH_3_00)) {
			l[n++] = "power9";
			if (has(f->hwcap2, PPC_FEATURE2_ARCH_3_1))
				l[n++] = "power10";
		}
	} else if (!strcmp(isa, "riscv64")) {
		l[n++] = "rv64gc";
	} else {
		return 0;
	}
	if (n > max)
		n = max;
	memcpy(out, l, n * sizeof(*l));
	return n;
}

int cpu_load(double *out)
{
	char text[128];
	struct sysinfo si;
	ssize_t n = -1;
	char *end;
	double v;
	int fd;

	fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	if (n > 0) {
		text[n] = '\0';
		errno = 0;
		v = strtod(text, &end);
		if (!errno && end != text && v >= 0) {
			*out = v;
			return 0;
		}
	}
	if (sysinfo(&si) < 0)
		return err_errno(ERR_IO, errno, "cannot read the load average");
	*out = (double)si.loads[0] / (double)(1u << SI_LOAD_SHIFT);
	return 0;
}

/* The CPUs this process may run on (taskset, a cgroup cpuset, systemd's CPUAffinity=), not all online ones. */
static long cpu_usable(void)
{
	cpu_set_t set;
	long n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n;
}

int cpu_detect(struct cpu_info *out, const char *isa)
{
	struct cpu_info ci = {0};
	struct cpu_features f;
	struct sysinfo si;
	const char *self = cpu_isa();

	for (const char *const *p = isas; *p && isa; p++)
		if (!strcmp(*p, isa))
			ci.isa = *p;
	if (isa && !ci.isa)
		return err_set(ERR_UNSUPPORTED, "unknown ISA '%s'", isa);
	if (!isa)
		ci.isa = self;
	if (!ci.isa)
		return err_set(ERR_UNSUPPORTED, "this agent was built for an ISA dispatch does not know");
	if (self && !strcmp(ci.isa, self)) {
		cpu_features_read(&f);
	} else {
		memset(&f, 0, sizeof(f)); /* another ISA: claim its baseline only */
	}
	ci.nlevels = cpu_levels(ci.levels, CPU_LEVELS_MAX, ci.isa, &f);
	ci.cores = cpu_usable();
	if (sysinfo(&si) == 0)
		ci.memory = (uint64_t)si.totalram * si.mem_unit;
	if (cpu_load(&ci.load) < 0)
		ci.load = 0;
	*out = ci;
	return 0;
}
