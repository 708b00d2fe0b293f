/* node.h - this node's identity: WORK/node.json and joining the dispatcher. */
#ifndef DISPATCH_AGENT_NODE_H
#define DISPATCH_AGENT_NODE_H

#include <stdint.h>

#include <jansson.h>

#include "conn.h"
#include "protocol.h"

#define NODE_TOKEN_MAX 512

/*
 * WORK/node.json (mode 0600) keeps the node id and node token the
 * dispatcher issued, and the sequence number of the last message handled,
 * so that a restarted agent joins again as the same node and neither
 * misses nor repeats messages. It belongs to one dispatcher URL and is
 * written durably, at joins. The sequence number moves on with every batch
 * of messages: it goes to WORK/seq ("NODE SEQ SEQ"), written without fsync,
 * which is enough for a restarted agent; after a power loss it may be
 * older, and the objects died with the machine anyway: messages seen again
 * then start runs of generations the dispatcher has moved on from, which
 * it refuses (409) and the agent kills.
 */
struct node {
	char id[PROTO_ID_MAX + 1]; /* "" before the first join */
	char token[NODE_TOKEN_MAX + 1];
	uint64_t seq;
	unsigned heartbeat_s, ttl_s; /* from the join answer */
	size_t inline_max;	     /* the largest bundle the dispatcher takes inside an event, 0: none */
	unsigned batch_max;	     /* instance generations it takes in one events request, 0: one */
};

/* Reads WORK/node.json; ERR_NOTFOUND when there is none, or it is for another dispatcher. */
int node_load(struct node *out, const char *work_dir, const char *url);

/* Writes WORK/node.json atomically and durably, mode 0600. */
int node_save(const struct node *n, const char *work_dir, const char *url);

/* Writes n->seq to WORK/seq, in place (no fsync: see above). */
int node_save_seq(const struct node *n, const char *work_dir);

/*
 * POST /v1/agent/join with body (borrowed): with the stored node token
 * first, and with join_token when there is none or the dispatcher refuses
 * it (then the node gets a new identity and seq restarts at 0). On success
 * n holds the identity and c carries the node token.
 */
int node_join(struct node *n, conn *c, const char *join_token, json_t *body);

/* Whether t can be a bearer token: 1 to 512 visible ASCII characters, no spaces. */
int node_token_is_valid(const char *t);

/* Reads a token file (the first line, surrounding white space removed). *out is new. */
int node_read_token(char **out, const char *path);

#endif
