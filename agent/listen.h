/* listen.h - the listener thread: long-polls GET /v1/agent/messages and wakes the event loop. */
#ifndef DISPATCH_AGENT_LISTEN_H
#define DISPATCH_AGENT_LISTEN_H

#include <stdint.h>

#include <jansson.h>

#include "conn.h"

/*
 * The thread owns its conn (its own easy handle) and loops on
 * GET /v1/agent/messages?after=SEQ&wait=S. Each answer's messages are
 * queued and the wake descriptor becomes readable; so does a change of
 * reachability or a rejected token. Passing "after" acknowledges messages,
 * so the thread asks again only once the main thread has handled what it
 * took (listen_ack()): a message is acknowledged after it was acted on,
 * never before. When the dispatcher cannot be reached the thread waits 1 s
 * doubling to 30 s between attempts. It never sleeps to poll: the
 * dispatcher holds the request until a message arrives.
 */
typedef struct listener listener;

enum {
	LISTEN_ONLINE = 1 << 0,	 /* the last poll reached the dispatcher */
	LISTEN_CHANGED = 1 << 1, /* reachability changed since the last listen_take() */
	LISTEN_AUTH = 1 << 2,	 /* the dispatcher refused the node token */
};

/* Starts the thread. c is stolen (freed by listen_stop()); after: the last sequence number handled. */
int listen_start(listener **out, conn *c, uint64_t after, unsigned wait_s);

/* Stops and joins the thread, frees everything; NULL is fine. Prompt: it interrupts the poll. */
void listen_stop(listener *l);

/* Readable when listen_take() has news (borrowed). */
int listen_fd(const listener *l);

/*
 * Takes the queued messages (*messages: a new array reference, possibly
 * empty), the sequence number they go up to and the LISTEN_* flags, and
 * drains the wake descriptor.
 */
int listen_take(listener *l, json_t **messages, uint64_t *seq, int *flags);

/* Acknowledges every message up to seq (handled): the next poll passes it as "after". */
void listen_ack(listener *l, uint64_t seq);

/* Whether the last poll reached the dispatcher. */
int listen_online(listener *l);

/*
 * Tells the listener the dispatcher answered another request: when it is
 * waiting to retry, it retries now instead of at the end of its backoff.
 */
void listen_nudge(listener *l);

/* Sets the token and the last handled sequence number for the following polls (after a rejoin). */
int listen_set_identity(listener *l, const char *token, uint64_t after);

#endif
