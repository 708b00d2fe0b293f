/* core.h - the dispatcher's shared context: store, CAS, settings and the core lock. */
#ifndef DISPATCH_CORE_H
#define DISPATCH_CORE_H

#include <pthread.h>
#include <stdint.h>

#include "cas.h"
#include "store.h"

struct waiter;
struct toolchain_set;

/*
 * One per process. Everything below `lock` is guarded by it: the HTTP
 * thread, the build thread and the timer thread take it for each
 * transition and never hold it across I/O to other machines or a build.
 */
struct core {
	char *state_dir;
	char *cache_dir;      /* the builder's cache; its CAS holds every blob */
	char *jobs_dir;
	char *logs_dir;
	char *toolchains_dir; /* NULL: the default */
	struct toolchain_set *toolchains; /* loaded once, read only */
	char operator_hash[65];
	char join_hash[65];
	double heartbeat_s;
	double ttl_s;
	int build_jobs;

	pthread_mutex_t lock;
	pthread_cond_t build_cond;
	store *db;
	cas *blobs;
	struct waiter *waiters; /* suspended long polls, by node */
	int build_wanted;       /* a job needs (more) builds */
	double *seen;           /* last time each node id was heard from, not yet in the store */
	int64_t *acked;         /* messages each node id acknowledged, not yet deleted */
	size_t nseen;
	int stopping;
};

void core_lock(struct core *c);
void core_unlock(struct core *c);

/* Seconds since the epoch, with sub-second precision. */
double core_now(void);

/* Appends to an instance's history (inside the caller's transaction). */
void core_history(struct core *c, int64_t instance, const char *event, int64_t node, const char *isa,
		  const char *detail);

/*
 * Nodes are heard from on every poll and event: remembering that in memory
 * and writing it to the store once a second keeps an fsync off every poll.
 */
void core_seen(struct core *c, int64_t node, double when);
void core_seen_flush(struct core *c);

/*
 * A node acknowledged its messages up to seq. Deleting them is cleanup,
 * not state (a poll only ever returns messages above its "after"), so it
 * waits for core_seen_flush() instead of costing an fsync per poll.
 */
void core_acked(struct core *c, int64_t node, int64_t seq);

/* Writes 64 hex characters of fresh randomness (a token) into out[65]. */
int core_token(char out[65]);

#endif
