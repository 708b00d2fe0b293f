/* fuzz.h - the libFuzzer entry points, shared by the harnesses and replay_main.c. */
#ifndef DISPATCH_FUZZ_H
#define DISPATCH_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
