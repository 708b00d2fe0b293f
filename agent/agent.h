/* agent.h - the agent's life: join, the event loop, heartbeats, a clean stop. */
#ifndef DISPATCH_AGENT_AGENT_H
#define DISPATCH_AGENT_AGENT_H

#include <stdint.h>
#include <sys/types.h>

/*
 * One thread runs everything but the long poll (listen.h) and the posting
 * of events (sender.h): a poll() on a signalfd (SIGTERM, SIGINT, SIGHUP,
 * SIGUSR2, SIGCHLD), the listener's and the sender's wake pipes, an inotify
 * instance for the runs' progress files and each run's pidfd, with a
 * timeout for the next heartbeat, log relay, save or retry. Idle, it wakes
 * only for heartbeats.
 *
 * SIGTERM (or SIGINT) stops the agent and leaves the objects running under
 * their supervisors: the next agent on the same WORK takes them over and
 * joins again saying so, and the dispatcher sees nothing but a short
 * silence. The outbox is saved (with where the agent was in each run's
 * progress and log) at every checkpoint and exit and soon after every
 * delivery, so a kill -9 loses no checkpoint or exit and repeats little.
 *
 * SIGUSR2 drains the node: every object is asked to checkpoint, their
 * states are uploaded and their exits reported, then the agent exits. A
 * second SIGUSR2 kills the objects at once.
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
