/* instances.h - the runs of this node: start and stop messages in, events out. */
#ifndef DISPATCH_AGENT_INSTANCES_H
#define DISPATCH_AGENT_INSTANCES_H

#include <poll.h>
#include <stddef.h>

#include <jansson.h>

#include "conn.h"
#include "outbox.h"
#include "protocol.h"
#include "run.h"
#include "store.h"

/*
 * For a start message: fetch the artifact and the state into the store
 * (verified), unpack them into the run's directory, start the object and
 * queue a "running" event; any failure becomes an exit event with code -1
 * and the reason. While it runs: progress lines become progress events
 * (the newest replaces an unsent one), a "checkpoint N" line packs and
 * queues the state, the log is relayed every few seconds. At its exit the
 * state is packed (exit 0 or 85) and the exit event queued. A stop message
 * asks for a checkpoint (SIGUSR1) or kills the process group.
 */
typedef struct instances instances;

/* Everything borrowed and kept for the lifetime of the table. */
struct instances_env {
	conn *c;
	store *st;
	outbox *ob;
	const struct run_config *rc;
	/* Called at every start, failure to start and exit (may be NULL). */
	void (*report)(void *ud, const char *event, const char *instance, uint64_t generation,
		       const char *detail);
	void *ud;
};

int instances_new(instances **out, const struct instances_env *env);
/* Kills and removes every run. NULL is fine. */
void instances_free(instances *t);

size_t instances_count(const instances *t);

/* Acts on a parsed start or stop message; problems are reported as events and logged. */
void instances_handle(instances *t, const struct proto_msg *m);

/* Asks every run for a checkpoint (agent shutdown) or kills them all. */
void instances_stop_all(instances *t, enum proto_stop_mode mode);

/* Forgets a run the dispatcher says is stale: kills it, keeps nothing. */
void instances_drop(instances *t, const char *instance, uint64_t generation);

/* The descriptors to poll (at most 2 per run); returns how many were written. */
size_t instances_pollfds(instances *t, struct pollfd *fds, size_t max);

/* Handles the descriptors instances_pollfds() wrote and poll() marked. */
void instances_ready(instances *t, const struct pollfd *fds, size_t n);

/* Checks every run for an exit (after SIGCHLD, for kernels without pidfds). */
void instances_reap(instances *t);

/* Relays logs and enforces time limits; returns the next time (run_now()) it wants a call, 0: none. */
double instances_tick(instances *t, double now);

/* [{"instance", "generation"}] of the running instances (new reference). */
json_t *instances_running(const instances *t);

#endif
