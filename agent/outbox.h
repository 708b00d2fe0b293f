/* outbox.h - events waiting for the dispatcher: in order, bounded, surviving an outage. */
#ifndef DISPATCH_AGENT_OUTBOX_H
#define DISPATCH_AGENT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conn.h"
#include "store.h"

/*
 * While the dispatcher cannot be reached, objects keep running and their
 * events wait here. The queue is bounded: a new progress event replaces
 * the instance's queued one, and beyond OUTBOX_MAX_EVENTS events or
 * OUTBOX_MAX_BYTES of log text the oldest log and progress events are
 * dropped. Checkpoint and exit events are never dropped (there are few).
 * An event can name a blob (a state bundle) that is uploaded before the
 * event is sent; the blob stays pinned in the store until then.
 */
#define OUTBOX_MAX_EVENTS 4096
#define OUTBOX_MAX_BYTES (4u << 20)

typedef struct outbox outbox;

/* st (borrowed) holds the blobs events name. *out is new. */
int outbox_new(outbox **out, store *st);
/* Unpins what is still queued. NULL is fine. */
void outbox_free(outbox *o);

/* Queues an event (stolen) of an instance generation; blob (may be NULL) is uploaded first. */
int outbox_add(outbox *o, const char *instance, uint64_t generation, json_t *event, const char *blob);

/* Events queued, those in a request under way included. */
size_t outbox_len(const outbox *o);

/* Events queued and not in a request under way. */
size_t outbox_sendable(const outbox *o);

/* Drops every queued event of the instance generation (it was superseded). */
void outbox_forget(outbox *o, const char *instance, uint64_t generation);

/* Whether an exit event of the instance generation is queued. */
int outbox_has_exit(const outbox *o, const char *instance, uint64_t generation);

/* [{"instance", "generation"}] of the queued exit events (new reference). */
json_t *outbox_exits(const outbox *o);

/*
 * What happened since the last outbox_save(): OUTBOX_SENT, events were
 * delivered (a save keeps a restarted agent from sending them again), and
 * OUTBOX_URGENT, a checkpoint or exit event was queued or delivered (save
 * now: a crash must neither lose nor repeat it).
 */
enum { OUTBOX_SENT = 1 << 0, OUTBOX_URGENT = 1 << 1 };
int outbox_changes(const outbox *o);

/*
 * Writes what is still queued to path (atomically, mode 0600), so that
 * events survive an agent that stops or crashes, together with runs
 * (borrowed, may be NULL): the agent's note of what it has turned into
 * events so far, kept as is. Nothing to write removes path. durable: fsync
 * too (a crash of the agent needs only the rename). The blobs stay in the
 * store.
 */
int outbox_save(outbox *o, const char *path, const json_t *runs, int durable);

/*
 * Queues again what outbox_save() wrote; *runs (may be NULL) is set to its
 * runs (a new reference, NULL when none). A missing file is fine. The file
 * stays until the next save. Entries that do not look right, or whose blob
 * is no longer stored, are dropped.
 */
int outbox_load(outbox *o, const char *path, json_t **runs);

/*
 * Bundles of at most max bytes are sent inside their events (what the
 * dispatcher said it takes when the agent joined); larger ones, or all
 * with 0 (the default), are uploaded first.
 */
void outbox_set_inline_max(outbox *o, size_t max);

/*
 * How many instance generations' events the dispatcher takes in one
 * request ("batch_max" of the join answer); 0 (the default) or 1: one,
 * in the single form, for a dispatcher that predates batches.
 */
void outbox_set_batch_max(outbox *o, unsigned max);

/*
 * Sends the queue in order through c: each POST /v1/agent/events carries
 * the events of up to batch_max runs of the same instance generation
 * (docs/api.md), so that what several runs queued meanwhile costs one
 * request and one commit. Stops at the first ERR_NET or ERR_AUTH and
 * returns it (the rest stays queued); events the dispatcher refuses are
 * dropped, and for a 409 ("stale generation") stale() is called so the
 * agent can stop that run. Returns 0 when the queue is empty.
 */
int outbox_flush(outbox *o, conn *c, void (*stale)(void *ud, const char *instance, uint64_t generation),
		 void *ud);

/*
 * The same in two steps, for a request sent by another thread while the
 * agent goes on (sender.h); one request at a time. outbox_take() makes the
 * next request from the head of the queue (*out, NULL when nothing is
 * queued; ERR_EXISTS while one is under way). Its events stay queued, in
 * flight: they are saved, coalescing and dropping pass them by, and
 * outbox_forget() marks them instead of removing them. Bundles too large to
 * ride inside their events are uploaded through c first; their ERR_NET or
 * ERR_AUTH is returned when nothing could be taken.
 */
struct outbox_req;
int outbox_take(outbox *o, conn *c, struct outbox_req **out);

/* The request's body (JSON text, borrowed), to POST to /v1/agent/events; NULL: nothing to send. */
const char *outbox_req_body(const struct outbox_req *q);

/*
 * Acts on the answer to q and frees it: r is the request's outcome (0 when
 * nothing was sent) and resp (borrowed, may be NULL) its body. After
 * ERR_NET, ERR_AUTH or ERR_NOMEM the events stay queued for the next
 * request; otherwise they leave the queue as outbox_flush() says.
 */
void outbox_settle(outbox *o, struct outbox_req *q, int r, json_t *resp,
		   void (*stale)(void *ud, const char *instance, uint64_t generation), void *ud);

#endif
