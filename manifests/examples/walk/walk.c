/* walk.c - a long computation whose whole state is portable: a checkpointable random walk.
 *
 * Each step advances a xorshift64* generator (64-bit integers) and a
 * double-precision accumulator. Everything the loop needs lives in the
 * SDK's state, so the walk can be stopped on one ISA and continued on
 * another, and ends bit-identical to an uninterrupted run. A fork index
 * picks a different stream, so forks diverge deterministically.
 *
 * State in:  steps (i64), seed (u64), scale (f64), label (str), big (u64),
 *            sleep_us (i64: pause every 1024 steps), checkpoint_every (i64 steps),
 *            ballast_kib (i64: a blob of that many KiB of noise carried along
 *            unchanged, for a state too large to travel inside a message)
 * Checkpoints: when asked (migration), when the manifest's interval is due,
 * and every checkpoint_every steps.
 * State out: i, x, acc, plus isa, state_ok and the inputs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"

/* What the manifest's state must hold when it arrives; see manifests/examples/walk.json. */
#define BIG_EXPECTED 18446744073709551557ULL /* the largest 64-bit prime: above INT64_MAX */

static uint64_t next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ULL;
}

/* A fork takes its own stream from here on: mixing in the fork index is enough. */
static void diverge(uint64_t *x, int64_t at)
{
	*x ^= (uint64_t)dispatch_fork_index() * 0xbf58476d1ce4e5b9ULL;
	*x = *x ? *x : 1;
	dispatch_set_i64("fork", dispatch_fork_index());
	dispatch_set_i64("fork_step", at);
}

/* Noise that zstd cannot shrink, from its own generator: the walk's stream is untouched. */
static void add_ballast(int64_t kib)
{
	size_t n = kib > 0 && kib <= 1 << 20 ? (size_t)kib * 128 : 0;
	uint64_t *v = n ? malloc(n * sizeof(*v)) : NULL, s = 0x2545f4914f6cdd1dULL;

	if (!v)
		return;
	for (size_t k = 0; k < n; k++)
		v[k] = next(&s);
	dispatch_set_blob("ballast", DISPATCH_U64, v, n);
	free(v);
}

static void pause_us(int64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };

	if (us > 0)
		nanosleep(&ts, NULL);
}

int main(void)
{
	int64_t steps, i, sleep_us, checkpoint_every, fork_at;
	uint64_t x;
	double acc, scale;

	if (dispatch_init() < 0)
		return 1;
	steps = dispatch_get_i64("steps", 1000000);
	sleep_us = dispatch_get_i64("sleep_us", 0);
	checkpoint_every = dispatch_get_i64("checkpoint_every", 0);
	scale = dispatch_get_f64("scale", 1.0);
	i = dispatch_get_i64("i", 0);
	/*
	 * A fresh start seeds from the manifest and the fork index; a
	 * continuation resumes. A fork (a continuation with another fork index)
	 * diverges from its parent at the step it continues from. A reference
	 * run that says "fork_at": N does the same at step N without stopping,
	 * so forks can be compared with uninterrupted runs.
	 */
	fork_at = dispatch_get_i64("fork_at", -1);
	if (dispatch_has("x")) {
		x = dispatch_get_u64("x", 1);
		acc = dispatch_get_f64("acc", 0);
		if (dispatch_fork_index() != dispatch_get_i64("fork", 0))
			diverge(&x, i);
	} else {
		x = dispatch_get_u64("seed", 88172645463325252ULL) +
		    (uint64_t)(fork_at >= 0 ? 0 : dispatch_fork_index()) * 0x9e3779b97f4a7c15ULL;
		x = x ? x : 1;
		acc = 0;
		dispatch_set_i64("state_ok", dispatch_get_u64("big", 0) == BIG_EXPECTED &&
						     !strcmp(dispatch_get_str("label", ""), "grüße") &&
						     scale == 0.1);
		dispatch_set_i64("fork", fork_at >= 0 ? 0 : dispatch_fork_index());
		add_ballast(dispatch_get_i64("ballast_kib", 0));
	}
	for (; i < steps; i++) {
		uint64_t r;
		int due = 0;

		if (i == fork_at && dispatch_fork_index() != dispatch_get_i64("fork", 0))
			diverge(&x, i);
		r = next(&x);
		acc += (double)(r >> 11) * 0x1.0p-53 * scale - 0.5 * scale;
		if ((i & 1023) == 0) {
			dispatch_progress((double)i / (double)steps);
			pause_us(sleep_us);
			due = dispatch_checkpoint_due();
		}
		if (due || dispatch_checkpoint_requested() || (checkpoint_every && i && i % checkpoint_every == 0)) {
			dispatch_set_i64("i", i + 1); /* step i is done: continue at the next one */
			dispatch_set_u64("x", x);
			dispatch_set_f64("acc", acc);
			if (dispatch_checkpoint_requested())
				dispatch_checkpoint_exit();
			dispatch_checkpoint();
		}
	}
	dispatch_set_i64("i", i);
	dispatch_set_u64("x", x);
	dispatch_set_f64("acc", acc);
	dispatch_set_str("isa", dispatch_isa());
	printf("walk: isa=%s steps=%" PRId64 " x=%016" PRIx64 " acc=%a\n", dispatch_isa(), i, x, acc);
	dispatch_finish();
}
