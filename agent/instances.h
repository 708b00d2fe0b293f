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
 * state is packed (exit 0 or 85), the exit event queued and persisted, and
 * the directory removed. A stop message asks for a checkpoint (SIGUSR1) or
 * kills the process group.
 *
 * Objects do not depend on the agent (run.h): instances_free() leaves them
 * running, and instances_adopt() in the next agent takes over what it finds
 * in WORK/inst, including exits that happened in between. Progress lines
 * are noticed through one inotify instance; runs it cannot watch, or
 * without a pidfd, are looked at every second.
 */
typedef struct instances instances;

/* Everything borrowed and kept for the lifetime of the table. */
struct instances_env {
	conn *c;
	store *st;
	outbox *ob;
	const struct run_config *rc;
	/* Called at every start, failure to start, adoption and exit (may be NULL). */
	void (*report)(void *ud, const char *event, const char *instance, uint64_t generation,
		       const char *detail);
	/*
	 * Saves the outbox with instances_cursors() now (may be NULL). Called
	 * once an exit is queued and before the run's directory goes: a later
	 * agent then finds the exit either still to report or in the saved
	 * outbox, never both and never neither.
	 */
	int (*persist)(void *ud);
	void *ud;
};

int instances_new(instances **out, const struct instances_env *env);
/* Frees the table; objects keep running (see above). NULL is fine. */
void instances_free(instances *t);

/*
 * Takes over the runs an earlier agent left in WORK/inst: running ones
 * (a "running" event is queued again) and exited ones (their exit is
 * reported now), except those whose exit the outbox already holds.
 * cursors (borrowed, may be NULL) is what instances_cursors() returned
 * before the restart. Directories with nothing to take over are removed.
 * Returns the number of runs taken over.
 */
size_t instances_adopt(instances *t, const json_t *cursors);

/* {"<instance>-<generation>": run_cursor()} of every run, to be saved with the outbox (new reference). */
json_t *instances_cursors(const instances *t);

size_t instances_count(const instances *t);

/* Acts on a parsed start or stop message; problems are reported as events and logged. */
void instances_handle(instances *t, const struct proto_msg *m);

/* Asks every run for a checkpoint (agent shutdown) or kills them all. */
void instances_stop_all(instances *t, enum proto_stop_mode mode);

/* Forgets a run the dispatcher says is stale: kills it, keeps nothing. */
void instances_drop(instances *t, const char *instance, uint64_t generation);

/* The descriptors to poll (one per run, plus one); returns how many were written. */
size_t instances_pollfds(instances *t, struct pollfd *fds, size_t max);

/* Handles the descriptors instances_pollfds() wrote and poll() marked. */
void instances_ready(instances *t, const struct pollfd *fds, size_t n);

/* Checks every run for an exit (after SIGCHLD). */
void instances_reap(instances *t);

/*
 * Relays logs, looks at unwatched runs and removes the directories of runs
 * that ended a moment ago; returns the next time (run_now()) it wants a
 * call, 0: none.
 */
double instances_tick(instances *t, double now);

/* [{"instance", "generation"}] of the running instances (new reference). */
json_t *instances_running(const instances *t);

#endif
