/* sender.h - the sender thread: posts the agent's event requests while its event loop goes on. */
#ifndef DISPATCH_AGENT_SENDER_H
#define DISPATCH_AGENT_SENDER_H

#include <jansson.h>

#include "conn.h"

/*
 * A POST of events waits for the dispatcher's commit (an fsync): done on
 * the event loop, every exit and every start would wait for it. The sender
 * owns a conn of its own and sends one request at a time, handed over as
 * JSON text; the loop learns of the answer through sender_fd() and takes
 * it with sender_take(). Meanwhile the loop starts objects, reads their
 * exits and queues what they report, which the next request carries: the
 * busier the node, the more each request (and each commit) holds.
 */
typedef struct sender sender;

/* Starts the thread; c is stolen (freed by sender_stop()). */
int sender_start(sender **out, conn *c);

/* Interrupts a request under way, joins the thread and frees everything; NULL is fine. */
void sender_stop(sender *s);

/* Readable when the request under way has been answered (borrowed). */
int sender_fd(const sender *s);

/* Sends body (JSON text, copied) with POST to path; ERR_EXISTS while another is under way. */
int sender_post(sender *s, const char *path, const char *body);

/*
 * The outcome of the answered request: 0 or the conn's error code (its
 * message in err_msg()), and *resp its body (new reference, may be NULL).
 * 1 while it is still under way (or none was posted). Drains sender_fd().
 */
int sender_take(sender *s, json_t **resp);

/* Sets the bearer token of the following requests. Thread-safe. */
int sender_set_token(sender *s, const char *token);

#endif
