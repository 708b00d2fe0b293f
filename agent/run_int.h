/* run_int.h - the layout of struct run, shared by run.c, run_spawn.c, run_adopt.c and run_out.c only. */
#ifndef DISPATCH_AGENT_RUN_INT_H
#define DISPATCH_AGENT_RUN_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "protocol.h"
#include "run.h"

#define RUN_LINE_MAX 255 /* a progress line, without its newline */

struct run {
	struct run_config cfg;
	char instance[PROTO_ID_MAX + 1];
	uint64_t generation;
	int64_t fork_index;
	uint64_t checkpoint_s;
	struct proto_limits limits;
	unsigned grace_s; /* the stop grace period its supervisor was given */
	char entry[PROTO_ENTRY_MAX + 1];
	char **args; /* NULL-terminated */

	char *dir, *state_dir, *out_dir, *cwd_dir;
	char *root;				  /* holds meta.json and bin/<entry>: dir, or a shared tree */
	char artifact[DIGEST_HEX_LEN + 1]; /* the shared tree's blob, "" when root is dir */
	const char *name; /* the last part of dir */
	int made_dir;

	int started;  /* a supervisor was started, by this agent or an earlier one */
	int child;    /* the supervisor is this process's child (not adopted) */
	pid_t shim;   /* the supervisor (dispatch-run), -1 when unknown */
	pid_t pid;    /* the object, -1 when unknown */
	int pidfd;    /* the supervisor's */
	int progress; /* DIR/progress, for reading */
	uint64_t progress_pos;
	int wd; /* inotify watch on DIR/progress */

	int exited;
	int checkpoint_asked; /* a stop asked for a checkpoint: the exit will carry the state */
	struct run_exit exit;

	int log_rd;	   /* the log, for relaying */
	uint64_t log_pos;  /* where relaying goes on in the log */
	uint64_t log_sent; /* bytes relayed so far */
	int log_capped;	   /* 1: the relay budget is spent; 2: the tail is being relayed */
};

void strv_free(char **v);

/* Allocates a run for WORK/inst/<name> with its paths; NULL when out of memory. */
run *run_alloc(const struct run_config *cfg, const char *name);

/* Opens DIR/progress and DIR/log for reading, when they exist. */
void run_open_outputs(run *r);

/* Whether the supervisor has exited (reaped when it was this process's child): 1, 0, or an error. */
int run_shim_gone(run *r);

/* Writes DIR/instance.json. */
int run_save_instance(const run *r);

#endif
