/* scheduler.h - (functions sched_*) instances and nodes: placement, start/stop messages, events, lost nodes. */
#ifndef DISPATCH_SCHEDULER_H
#define DISPATCH_SCHEDULER_H

#include <stdint.h>

#include <jansson.h>

#include "core.h"

/*
 * All functions run with the core lock held and make their changes in one
 * store transaction each.
 *
 * An instance moves pending -> starting -> running -> done | failed |
 * checkpointed; a stop (checkpoint) or a lost node sends it back to pending
 * with its last checkpoint, and each placement increments its generation,
 * so reports from an older generation are refused.
 */

/* Places pending instances on nodes with free slots, idle nodes first. */
void sched_pass(struct core *c);

/*
 * State bundles up to this size travel inside the messages and events that
 * name them (base64, "state_bundle" in a start message, "bundle" in a
 * checkpoint or exit event): no separate blob upload or download.
 */
#define SCHED_INLINE_MAX (64u << 10)

/* Queues a message for a node and wakes its long poll. */
int sched_send(struct core *c, int64_t node, json_t *msg);

#define SCHED_EVENTS_MAX 1000 /* events in one request */
#define SCHED_BATCHES_MAX 256 /* instance generations in one request */

/*
 * Applies an agent's events for one instance generation ({"instance",
 * "generation", "events"}), then places what a freed slot allows. Returns
 * an HTTP status; err explains a 4xx.
 */
unsigned sched_events(struct core *c, int64_t node, const json_t *body, char *err, size_t errlen);

/*
 * The same for several instance generations in one request ("batches":
 * an array of such objects), in order, each in a savepoint of its own: a
 * stale (409) or refused (4xx) batch undoes only its own events. 200 with
 * *results (new reference) holding {"status": N} or {"status": N,
 * "error": "..."} per batch, in order; a 4xx for the request as a whole
 * (not an array, too many batches or events) with err and *results unset.
 */
unsigned sched_events_batches(struct core *c, int64_t node, const json_t *batches, json_t **results, char *err,
			      size_t errlen);

/*
 * Compares what an agent runs with what the store says: stale generations
 * are told to stop; after a (re)join, instances the agent no longer has go
 * back to pending.
 */
void sched_reconcile(struct core *c, int64_t node, const json_t *running, int joined);

/* Declares nodes without a heartbeat for ttl lost; their instances continue elsewhere. */
void sched_check_nodes(struct core *c, double now);

/* Recomputes a job's state from its instances. */
void sched_job_state(struct core *c, int64_t job);

/* Cancels a job: stops its active instances. */
int sched_cancel_job(struct core *c, int64_t job);

/* The best level of isa that the node's level list (JSON array, best last) allows, among built ones. */
const char *sched_best_level(const char *levels_json, json_t *built_levels);

#endif
