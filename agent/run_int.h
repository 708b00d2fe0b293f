/* run_int.h - the layout of struct run, shared by run.c, run_spawn.c and run_out.c only. */
#ifndef DISPATCH_AGENT_RUN_INT_H
#define DISPATCH_AGENT_RUN_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"
#include "run.h"

struct run {
	struct run_config cfg;
	char instance[PROTO_ID_MAX + 1];
	uint64_t generation;
	int64_t fork_index;
	struct proto_limits limits;
	char entry[PROTO_ENTRY_MAX + 1];
	char **args; /* NULL-terminated */

	char *dir, *state_dir, *out_dir, *cwd_dir;
	int made_dir;

	pid_t pid; /* the launcher, then (same process) the object */
	int pidfd;
	int progress;	/* read end of the progress channel */
	char line[256]; /* the progress line being read */
	size_t line_len;
	int line_skip;

	double started_at, stop_at; /* run_now() */
	int killed, timed_out, grace_expired;
	int exited;
	struct run_exit exit;

	int log_rd;	   /* the log, for relaying */
	uint64_t log_pos;  /* where relaying goes on in the log */
	uint64_t log_sent; /* bytes relayed so far */
	int log_capped;	   /* 1: the relay budget is spent; 2: the tail is being relayed */
};

void strv_free(char **v);

#endif
