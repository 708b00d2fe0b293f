/*
 * mandelbrot: renders a tile of the Mandelbrot set in double precision and
 * prints a checksum of the per-pixel iteration counts.  Only +, -, * and /
 * on doubles are used, each correctly rounded by IEEE 754; built with
 * -ffp-contract=off (no fused multiply-add) the counts, and so the result
 * line, are identical on every architecture.
 *
 *   mandelbrot [WIDTH [HEIGHT [MAXITER]]] [--ascii]   defaults 320 160 500
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

/* Strict decimal parse: strtoul alone would accept "-1", "12abc" or "". */
static int parse_dim(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Hashing the counts byte by byte in a fixed (little-endian) order keeps the
 * checksum independent of the host's endianness. */
static uint64_t fnv1a_u32(uint64_t h, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		h ^= (v >> (8 * i)) & 0xFF;
		h *= 0x100000001B3u;
	}
	return h;
}

static uint32_t escape_time(double cr, double ci, uint32_t maxiter)
{
	double zr = 0.0, zi = 0.0;
	uint32_t n = 0;
	while (n < maxiter) {
		double zr2 = zr * zr, zi2 = zi * zi;
		if (zr2 + zi2 > 4.0)
			break;
		zi = 2.0 * zr * zi + ci;
		zr = zr2 - zi2 + cr;
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	unsigned long dims[3] = {320, 160, 500};
	/* Caps keep width*height*maxiter within uint64_t and the tile in RAM. */
	const unsigned long caps[3] = {100000, 100000, 100000000};
	int npos = 0, ascii = 0, bad = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ascii") == 0)
			ascii = 1;
		else if (npos >= 3 || parse_dim(argv[i], caps[npos], &dims[npos]))
			bad = 1;
		else
			npos++;
	}
	if (bad) {
		fprintf(stderr, "usage: %s [WIDTH [HEIGHT [MAXITER]]] [--ascii]\n"
				"  defaults 320 160 500; all positive integers\n",
			argv[0]);
		return 2;
	}
	const uint32_t w = (uint32_t)dims[0], h = (uint32_t)dims[1];
	const uint32_t maxiter = (uint32_t)dims[2];

	/* On 32-bit targets w*h*4 can exceed size_t: check before malloc. */
	uint64_t pixels = (uint64_t)w * h;
	uint32_t *counts = pixels > SIZE_MAX / sizeof *counts
		? NULL : malloc((size_t)pixels * sizeof *counts);
	if (!counts) {
		fprintf(stderr, "mandelbrot: out of memory\n");
		return 1;
	}

	/* View [-2.5, 1.5] x [-1, 1]: square pixels at the default 2:1 tile, and
	 * every constant is exact in binary.  Coordinates are computed per pixel
	 * from integers rather than by accumulating a step, so rounding cannot
	 * drift along a row. */
	const double x0 = -2.5, xspan = 4.0, y0 = -1.0, yspan = 2.0;
	uint64_t total = 0, hash = 0xCBF29CE484222325u;
	for (uint32_t y = 0; y < h; y++) {
		double ci = y0 + yspan * ((double)y + 0.5) / (double)h;
		for (uint32_t x = 0; x < w; x++) {
			double cr = x0 + xspan * ((double)x + 0.5) / (double)w;
			uint32_t n = escape_time(cr, ci, maxiter);
			counts[(size_t)y * w + x] = n;
			total += n;
			hash = fnv1a_u32(hash, n);
		}
	}

	printf("arch=%s endian=%s bits=%d\n", arch_name(), endian_name(),
	       (int)(sizeof(void *) * 8));
	printf("object=mandelbrot result=%lux%lux%lu,iters:%llu,fnv1a:%016llx\n",
	       dims[0], dims[1], dims[2], (unsigned long long)total,
	       (unsigned long long)hash);

	if (ascii) {
		/* A terminal cell is about twice as tall as wide, so sample every
		 * 4th column and 8th row.  Escape times are roughly exponential
		 * near the set, so shade by bit length; '@' is inside the set. */
		static const char ramp[] = " .:-=+*#%@";
		for (uint32_t y = 0; y < h; y += 8) {
			for (uint32_t x = 0; x < w; x += 4) {
				uint32_t n = counts[(size_t)y * w + x];
				int shade = 0;
				while (shade < 8 && n >> shade)
					shade++;
				putchar(ramp[n >= maxiter ? 9 : shade]);
			}
			putchar('\n');
		}
	}
	free(counts);
	return 0;
}
