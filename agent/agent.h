/* agent.h - the agent's life: join, the event loop, heartbeats, a clean stop. */
#ifndef DISPATCH_AGENT_AGENT_H
#define DISPATCH_AGENT_AGENT_H

#include <stdint.h>
#include <sys/types.h>

/*
 * One thread runs everything but the long poll: a poll() on a signalfd
 * (SIGTERM, SIGINT, SIGHUP, SIGCHLD), the listener's wake pipe, and each
 * run's progress pipe and pidfd, with a timeout for the next heartbeat,
 * log relay, time limit or retry. Idle, it wakes only for heartbeats.
 *
 * SIGTERM (or SIGINT) stops cleanly: every object is asked to checkpoint,
 * their states are uploaded and their exits reported, then the agent
 * exits. A second signal kills the objects at once.
 */
struct agent_config {
	const char *url;	/* the dispatcher */
	const char *join_token; /* NULL when node.json holds an identity */
	const char *work_dir;
	const char *name;      /* the node's name (host name by default) */
	const char *isa;       /* NULL: this build's ISA */
	uint64_t cache_max;    /* bytes of artifacts and states kept */
	unsigned heartbeat_s;  /* 0: as the dispatcher says */
	unsigned wait_s;       /* long-poll wait */
	unsigned stop_grace_s; /* checkpoint requests: SIGKILL after this */
	const char *ca_file;   /* NULL: the system's CAs */
	int drop;	       /* run objects as uid/gid */
	uid_t uid;
	gid_t gid;
	const char *launcher; /* dispatch-run */
	int json;	      /* report events as JSON lines on stdout */
};

/* Runs the agent until it is told to stop. 0, or an error when it could not start. */
int agent_main(const struct agent_config *cfg);

#endif
