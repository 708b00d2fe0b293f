/* portable.c - writes a state of every type on one ISA and checks it, bit for bit, on another.
 *
 *   portable write   (DISPATCH_STATE_OUT=DIR): sets the values, checkpoints, exits 85
 *   portable check   (DISPATCH_STATE=DIR): reads them back, prints "ok" or what differs
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"

#define N 5

static const double doubles[N] = { 0.1, -1.0 / 3.0, 6.02214076e23, 4.9406564584124654e-324, 1.7976931348623157e308 };
static const uint64_t words[N] = { 0, 1, 0x0123456789abcdefULL, 0x8000000000000000ULL, UINT64_MAX };
static const int32_t ints[N] = { -1, 2147483647, -2147483647 - 1, 42, 0 };

static int failures;

static void expect(int ok, const char *what)
{
	if (!ok) {
		printf("MISMATCH %s\n", what);
		failures++;
	}
}

int main(int argc, char **argv)
{
	double d[N];
	uint64_t w[N];
	int32_t i32[N];

	if (dispatch_init() < 0)
		return 1;
	if (argc == 2 && !strcmp(argv[1], "write")) {
		dispatch_set_i64("i64_min", INT64_MIN);
		dispatch_set_i64("i64_max", INT64_MAX);
		dispatch_set_u64("u64_max", UINT64_MAX);
		dispatch_set_f64("pi", 3.141592653589793);
		dispatch_set_f64("tiny", 4.9406564584124654e-324);
		dispatch_set_f64("neg_zero", -0.0);
		{
			uint64_t nan_bits = 0xfff0000000000123ULL; /* a negative signalling NaN with a payload */
			double nan;
			memcpy(&nan, &nan_bits, sizeof(nan));
			dispatch_set_f64("nan_payload", nan);
		}
		dispatch_set_str("text", "grüße \"quoted\" \\ line\nbreak");
		dispatch_set_str("writer", dispatch_isa());
		dispatch_set_blob("doubles", DISPATCH_F64, doubles, N);
		dispatch_set_blob("words", DISPATCH_U64, words, N);
		dispatch_set_blob("ints", DISPATCH_I32, ints, N);
		dispatch_checkpoint_exit();
	}
	expect(dispatch_get_i64("i64_min", 0) == INT64_MIN, "i64_min");
	expect(dispatch_get_i64("i64_max", 0) == INT64_MAX, "i64_max");
	expect(dispatch_get_u64("u64_max", 0) == UINT64_MAX, "u64_max");
	expect(dispatch_get_f64("pi", 0) == 3.141592653589793, "pi");
	expect(dispatch_get_f64("tiny", 0) == 4.9406564584124654e-324, "tiny");
	{
		double z = dispatch_get_f64("neg_zero", 1.0);
		uint64_t bits;
		memcpy(&bits, &z, sizeof(bits));
		expect(bits == 0x8000000000000000ULL, "neg_zero");
		z = dispatch_get_f64("nan_payload", 1.0);
		memcpy(&bits, &z, sizeof(bits));
		expect(bits == 0xfff0000000000123ULL, "nan_payload");
	}
	expect(!strcmp(dispatch_get_str("text", ""), "grüße \"quoted\" \\ line\nbreak"), "text");
	expect(dispatch_get_blob("doubles", DISPATCH_F64, d, N) == N && !memcmp(d, doubles, sizeof(d)), "doubles");
	expect(dispatch_get_blob("words", DISPATCH_U64, w, N) == N && !memcmp(w, words, sizeof(w)), "words");
	expect(dispatch_get_blob("ints", DISPATCH_I32, i32, N) == N && !memcmp(i32, ints, sizeof(i32)), "ints");
	expect(dispatch_get_blob("ints", DISPATCH_F64, d, N) == -1, "blob type check");
	expect(dispatch_get_i64("absent", 7) == 7, "default");
	printf("%s written on %s read on %s\n", failures ? "FAILED" : "ok", dispatch_get_str("writer", "?"),
	       dispatch_isa());
	return failures ? 1 : 0;
}
