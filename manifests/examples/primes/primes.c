/*
 * primes: counts the primes in [LO, HI) with a segmented sieve of
 * Eratosthenes and prints their count, their sum mod 2^64 and the largest.
 * Pure integer work: memory-bound, cache-sized segments, identical output
 * on every architecture.
 *
 *   primes [LO HI]        default 0 50000000
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arch_name(void)
{
#if defined(__x86_64__)
	return "x86_64";
#elif defined(__aarch64__)
	return "aarch64";
#elif defined(__arm__)
	return "arm";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__powerpc64__) && defined(__BYTE_ORDER__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__riscv) && defined(__riscv_xlen) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}

/* Run-time probe: reports what the CPU (or emulator) really does. */
static const char *endian_name(void)
{
	uint32_t probe = 0x01020304;
	unsigned char b[sizeof probe];
	memcpy(b, &probe, sizeof b);
	return b[0] == 0x04 ? "little" : "big";
}

/* Strict decimal parse: strtoull alone would accept "-1", "12abc" or "". */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* floor(sqrt(n)) by bisection: no libm, exact for any n handled here. */
static uint64_t isqrt(uint64_t n)
{
	uint64_t lo = 0, hi = 1u << 31; /* hi*hi > MAX_HI */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (mid * mid <= n)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* 10^13 keeps the base-prime table (sqrt(HI) bytes) small and every
 * intermediate far from uint64_t overflow. */
#define MAX_HI 10000000000000ull
/* Odd numbers only, one byte each: 64 KiB spans 128 Ki integers and stays
 * within typical L2 caches. */
#define SEG_BYTES 65536u

int main(int argc, char **argv)
{
	uint64_t lo = 0, hi = 50000000;

	if (!(argc == 1 || (argc == 3 && !parse_u64(argv[1], &lo) &&
			    !parse_u64(argv[2], &hi) && lo <= hi && hi <= MAX_HI))) {
		fprintf(stderr, "usage: %s [LO HI]\n"
				"  counts primes in [LO, HI), 0 <= LO <= HI <= %llu;"
				" default 0 50000000\n",
			argv[0], (unsigned long long)MAX_HI);
		return 2;
	}

	/* Base primes: every composite below HI has a factor <= sqrt(HI-1). */
	uint64_t root = hi > 0 ? isqrt(hi - 1) : 0;
	size_t nbase = (size_t)root + 1;
	unsigned char *is_comp = calloc(nbase, 1);
	uint32_t *base = malloc(nbase / 2 * sizeof *base + sizeof *base);
	unsigned char *seg = malloc(SEG_BYTES);
	if (!is_comp || !base || !seg) {
		fprintf(stderr, "primes: out of memory\n");
		return 1;
	}
	size_t nb = 0;
	for (size_t i = 3; i < nbase; i += 2) {
		if (is_comp[i])
			continue;
		base[nb++] = (uint32_t)i;
		if (i > nbase / i) /* i*i would pass the table (or wrap size_t) */
			continue;
		for (size_t j = i * i; j < nbase; j += 2 * i)
			is_comp[j] = 1;
	}

	uint64_t count = 0, sum = 0, largest = 0;
	/* 2 is the only even prime; the segments below hold odd numbers. */
	if (lo <= 2 && 2 < hi)
		count = 1, sum = 2, largest = 2;

	uint64_t start = lo < 3 ? 3 : lo | 1;
	for (uint64_t seg_lo = start; seg_lo < hi; seg_lo += 2 * SEG_BYTES) {
		/* seg[i] stands for seg_lo + 2*i; n covers the odd numbers < hi. */
		uint64_t left = (hi - seg_lo + 1) / 2;
		size_t n = left < SEG_BYTES ? (size_t)left : SEG_BYTES;
		uint64_t seg_end = seg_lo + 2 * (uint64_t)n;
		memset(seg, 0, n);
		for (size_t k = 0; k < nb; k++) {
			uint64_t p = base[k];
			if (p * p >= seg_end)
				break;
			/* First odd multiple of p that is >= seg_lo and >= p*p
			 * (smaller multiples have a smaller factor). */
			uint64_t m = (seg_lo + p - 1) / p * p;
			if (m < p * p)
				m = p * p;
			if (!(m & 1))
				m += p;
			/* size_t index: 64-bit loop counters are slow on armhf. */
			for (size_t j = (size_t)((m - seg_lo) / 2); j < n; j += base[k])
				seg[j] = 1;
		}
		for (size_t i = 0; i < n; i++) {
			if (seg[i])
				continue;
			uint64_t v = seg_lo + 2 * (uint64_t)i;
			count++;
			sum += v; /* wraps mod 2^64 by definition of uint64_t */
			largest = v;
		}
	}

	printf("arch=%s endian=%s bits=%d\n", arch_name(), endian_name(),
	       (int)(sizeof(void *) * 8));
	printf("object=primes result=range:%llu-%llu,count:%llu,sum:%llu,",
	       (unsigned long long)lo, (unsigned long long)hi,
	       (unsigned long long)count, (unsigned long long)sum);
	if (count)
		printf("largest:%llu\n", (unsigned long long)largest);
	else
		printf("largest:none\n");
	free(seg);
	free(base);
	free(is_comp);
	return 0;
}
