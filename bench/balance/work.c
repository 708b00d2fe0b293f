/* work.c - the object of bench/balance.sh: uneven, checkpointable CPU work.
 *
 * Instance k (k = offset + stride * fork index) does units * weight(k) steps
 * of a xorshift64* generator and a double accumulator, weight(k) in 1..5, so
 * the instances of one job differ up to 5-fold in length. It reports progress
 * every 4096 steps and checkpoints when asked, so the balancer can move it.
 *
 * State in:  units (i64), offset (i64), stride (i64)
 * State out: k, steps, i, x (u64), acc (f64), isa
 */
#include <stdint.h>

#include "dispatch.h"

/* Also in bench/balance.sh, which adds up the work. */
static int64_t work_weight(int64_t k)
{
	return 1 + (k * 7 + 3) % 5;
}

int main(void)
{
	int64_t k, steps, i;
	uint64_t x;
	double acc;

	if (dispatch_init() < 0)
		return 1;
	k = dispatch_get_i64("offset", 0) + dispatch_get_i64("stride", 1) * dispatch_fork_index();
	steps = dispatch_get_i64("units", 1000000) * work_weight(k);
	i = dispatch_get_i64("i", 0);
	x = dispatch_get_u64("x", 88172645463325252ULL + (uint64_t)k * 0x9e3779b97f4a7c15ULL);
	acc = dispatch_get_f64("acc", 0);
	for (; i < steps; i++) {
		uint64_t r;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		r = x * 2685821657736338717ULL;
		acc += (double)(r >> 11) * 0x1.0p-53 - 0.5;
		if ((i & 4095) == 0) {
			dispatch_progress((double)i / (double)steps);
			if (dispatch_checkpoint_requested()) {
				dispatch_set_i64("i", i + 1);
				dispatch_set_u64("x", x);
				dispatch_set_f64("acc", acc);
				dispatch_checkpoint_exit();
			}
		}
	}
	dispatch_set_i64("k", k);
	dispatch_set_i64("steps", steps);
	dispatch_set_i64("i", i);
	dispatch_set_u64("x", x);
	dispatch_set_f64("acc", acc);
	dispatch_set_str("isa", dispatch_isa());
	dispatch_finish();
}
