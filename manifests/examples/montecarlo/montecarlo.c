/*
 * montecarlo: estimates pi by throwing N pseudo-random points at a quarter
 * circle.  Everything in the result path is integer arithmetic, so the
 * output is bit-identical on every architecture dispatch targets.
 *
 *   montecarlo [N]        N samples, default 20000000
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compile-time arch name: the binary reports what it was built for, which
 * under qemu-user is also what it runs as. */
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

/* Checked at run time rather than from macros: it proves what the CPU (or
 * emulator) actually does with memory. */
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

/* xorshift64* (Vigna): tiny, fast and defined purely by 64-bit integer ops,
 * so every ISA (including 32-bit armhf, which synthesises 64-bit multiply)
 * produces the same stream. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Du;
}

/* 31-bit coordinates keep x*x + y*y below 2^63, so the circle test cannot
 * overflow a uint64_t.  The high bits are used because they are the best
 * quality bits of xorshift64*. */
#define COORD_BITS 31
#define RADIUS_SQ ((uint64_t)1 << (2 * COORD_BITS))

/* Largest N for which the decimal expansion below (remainder * 10) cannot
 * overflow. */
#define MAX_SAMPLES ((uint64_t)1 << 59)

int main(int argc, char **argv)
{
	uint64_t n = 20000000;

	if (argc > 2 || (argc == 2 && (parse_u64(argv[1], &n) || n == 0 ||
				       n > MAX_SAMPLES))) {
		fprintf(stderr, "usage: %s [SAMPLES]\n"
				"  SAMPLES: 1..%llu, default 20000000\n",
			argv[0], (unsigned long long)MAX_SAMPLES);
		return 2;
	}

	uint64_t inside = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = rng_next() >> (64 - COORD_BITS);
		uint64_t y = rng_next() >> (64 - COORD_BITS);
		inside += x * x + y * y < RADIUS_SQ;
	}

	/* pi ~= 4 * inside / n, printed by long division (12 decimals,
	 * truncated) so no floating point, and no printf rounding, touches the
	 * result. */
	uint64_t num = inside * 4; /* inside <= n <= 2^59: no overflow */
	char digits[16];
	uint64_t rem = num % n;
	for (int i = 0; i < 12; i++) {
		rem *= 10;
		digits[i] = (char)('0' + rem / n);
		rem %= n;
	}
	digits[12] = '\0';

	printf("arch=%s endian=%s bits=%d\n", arch_name(), endian_name(),
	       (int)(sizeof(void *) * 8));
	printf("object=montecarlo result=pi:%llu.%s,inside:%llu,samples:%llu\n",
	       (unsigned long long)(num / n), digits,
	       (unsigned long long)inside, (unsigned long long)n);
	return 0;
}
