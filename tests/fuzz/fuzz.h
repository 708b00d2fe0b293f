/* fuzz.h - the libFuzzer entry points, shared by the harnesses and replay_main.c. */
#ifndef DISPATCH_FUZZ_H
#define DISPATCH_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/*
 * Runs one input. Must not keep pointers into data, must not leak, and
 * returns 0 (libFuzzer reserves other values).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional, once per process before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * A broken invariant: prints where and why, then aborts, so that libFuzzer
 * saves the input and the replay driver stops with a stack trace.
 */
#define fuzz_fail(...) fuzz_fail_at(__FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 3, 4)))
static inline _Noreturn void fuzz_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: fuzz invariant broken: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/*
 * Whether the last failure recorded a message: err_msg() never returns ""
 * (it says "unknown error" when none was set), so test for that.
 */
static inline int fuzz_has_message(void)
{
	return strcmp(err_msg(), "unknown error") != 0;
}

/*
 * Whether s[0..len) is valid UTF-8: shortest forms only, no surrogates,
 * nothing above U+10FFFF (NUL is valid). Written from the definition, so
 * that it can judge the code under test.
 */
static inline int fuzz_utf8_valid(const void *s, size_t len)
{
	const unsigned char *p = s;

	for (size_t i = 0; i < len;) {
		unsigned c = p[i], cp, n;

		if (c < 0x80) {
			i++;
			continue;
		}
		n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (n == 0 || c >= 0xf8 || len - i <= n)
			return 0;
		cp = c & (0x3f >> n);
		for (unsigned k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < (n == 1 ? 0x80u : n == 2 ? 0x800u : 0x10000u) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/*
 * With FUZZ_VERBOSE set in the environment, prints each input's outcome:
 * "ok" or the error message. For reading a corpus, not for fuzzing.
 */
#define fuzz_report(r) do { \
	static int verbose_ = -1; \
	if (verbose_ < 0) \
		verbose_ = getenv("FUZZ_VERBOSE") != NULL; \
	if (verbose_) \
		fprintf(stderr, "  -> %s\n", (r) < 0 ? err_msg() : "ok"); \
} while (0)

#endif
