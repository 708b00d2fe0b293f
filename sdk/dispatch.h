/* dispatch.h - the object SDK: portable state, progress, checkpoints, results. */
#ifndef DISPATCH_SDK_H
#define DISPATCH_SDK_H

/*
 * An object is a program that dispatch starts on a node with its state
 * passed as portable data (docs/object-abi.md). The SDK reads that state,
 * reports progress, notices checkpoint requests and writes the state back,
 * so that the object can continue on a node of any ISA: little- or
 * big-endian, 32- or 64-bit. Values keep their exact bits everywhere:
 * 64-bit integers are written as decimal integers and doubles as C99
 * hexadecimal floating point, which every libc reads back exactly.
 *
 * The SDK depends on libc only, is not thread-safe (call it from one
 * thread), and never allocates after dispatch_init() except when a value
 * is set.
 */

#include <stddef.h>
#include <stdint.h>

/* The exit status that means "my state is written, continue me elsewhere". */
#define DISPATCH_EXIT_CHECKPOINTED 85

enum dispatch_type { DISPATCH_U8, DISPATCH_I32, DISPATCH_U32, DISPATCH_I64, DISPATCH_U64, DISPATCH_F32, DISPATCH_F64 };

/*
 * Reads the environment and the input state, and installs the handler for
 * checkpoint requests (SIGUSR1; SIGTERM too). Returns 0, or -1 with a
 * message on stderr when the state is unreadable; the state is then empty,
 * as for a fresh start. Without DISPATCH_* variables (run by hand) it
 * starts with an empty state. Called again, it starts over: the values
 * read or set before are dropped (tests read states one after the other).
 */
int dispatch_init(void);

/* The node's ISA ("x86_64", "s390x" ...), the fork index (0 unless forked), the instance id. */
const char *dispatch_isa(void);
int dispatch_fork_index(void);
const char *dispatch_instance(void);

/* Whether the state has key (any type). */
int dispatch_has(const char *key);

/* Readers return dflt when the key is absent or of another type. */
int64_t dispatch_get_i64(const char *key, int64_t dflt);
uint64_t dispatch_get_u64(const char *key, uint64_t dflt);
double dispatch_get_f64(const char *key, double dflt);
const char *dispatch_get_str(const char *key, const char *dflt); /* borrowed */

/*
 * Copies up to max elements of blob key into out, converted to this CPU's
 * byte order; returns the blob's element count (0 when absent), or -1 when
 * it holds another element type.
 */
long dispatch_get_blob(const char *key, enum dispatch_type type, void *out, size_t max);

/*
 * Setters return 0, or -1 when out of memory, the key is not a valid name
 * or (dispatch_set_str) the string is not UTF-8, which leaves the key as it was.
 */
int dispatch_set_i64(const char *key, int64_t v);
int dispatch_set_u64(const char *key, uint64_t v);
int dispatch_set_f64(const char *key, double v);
int dispatch_set_str(const char *key, const char *v);
int dispatch_set_blob(const char *key, enum dispatch_type type, const void *data, size_t count);

/* Reports progress, a fraction from 0 to 1; cheap to call often (rate limited). */
void dispatch_progress(double fraction);

/* Whether a checkpoint was requested (by the agent, e.g. for a migration). */
int dispatch_checkpoint_requested(void);

/*
 * Whether a periodic checkpoint is due: the manifest's "checkpoint":
 * {"interval_s": S} arrives as DISPATCH_CHECKPOINT_INTERVAL, and this is
 * true once S seconds have passed since the start or the last checkpoint.
 * Cheap to call often. The object then calls dispatch_checkpoint().
 */
int dispatch_checkpoint_due(void);

/*
 * Writes the current state as a checkpoint (atomically) without stopping;
 * the agent uploads it. Returns 0 or -1.
 */
int dispatch_checkpoint(void);

/* Writes the state and exits with DISPATCH_EXIT_CHECKPOINTED. */
_Noreturn void dispatch_checkpoint_exit(void);

/* Writes the state as the final result and exits 0. */
_Noreturn void dispatch_finish(void);

#endif
