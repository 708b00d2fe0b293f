/* run.h - one instance on this node: its directory, the sandboxed object process, its progress channel and
 * log. */
#ifndef DISPATCH_AGENT_RUN_H
#define DISPATCH_AGENT_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "protocol.h"

/*
 * WORK/inst/<instance>-<generation>/ holds
 *   meta.json, bin/<entry>   the artifact, extracted (root-owned, read-only for the object)
 *   state/                   the state to start from (DISPATCH_STATE)
 *   out/                     where the object writes its state (DISPATCH_STATE_OUT)
 *   cwd/                     its working directory, HOME and TMPDIR
 *   log                      its stdout and stderr
 * out/ and cwd/ belong to the object's user. The object is started
 * through the launcher (dispatch-run, see sandbox.h) with posix_spawn();
 * the progress channel is a pipe on its descriptor 3. The agent's event
 * loop polls run_progress_fd() and run_pidfd().
 */
typedef struct run run;

struct run_config {
	const char *work_dir; /* instances live in WORK/inst */
	const char *launcher; /* the dispatch-run executable */
	const char *isa;      /* DISPATCH_ISA; artifacts built for another ISA are refused */
	int drop;	      /* run objects as uid/gid (the agent is root) */
	uid_t uid;
	gid_t gid;
	int no_net;	       /* a private network namespace (the default) */
	int no_sandbox;	       /* dispatch-run --no-sandbox: for tests and debugging only */
	uint64_t fsize;	       /* largest file an object may write, 0: no limit */
	uint64_t nofile;       /* open files, 0: inherit */
	unsigned stop_grace_s; /* after a checkpoint request, SIGKILL when still running after this */
};

enum run_note_kind { RUN_NOTE_PROGRESS = 1, RUN_NOTE_CHECKPOINT, RUN_NOTE_FINISHED };

struct run_note {
	enum run_note_kind kind;
	double progress;     /* RUN_NOTE_PROGRESS: 0..1 */
	uint64_t checkpoint; /* RUN_NOTE_CHECKPOINT: its number */
};

struct run_exit {
	int code;	  /* the exit status; 128 + signal when killed */
	int signo;	  /* the signal that killed it, else 0 */
	int checkpointed; /* exit 85: its state is in out/ */
	char error[256];  /* why it failed, "" for exit 0 and 85 */
};

/*
 * Creates the instance directory for a start message (borrowed: what is
 * needed is copied); an old directory of the same name is replaced. *out
 * is new: free with run_free().
 */
int run_new(run **out, const struct run_config *cfg, const struct proto_msg *start);

/* Kills the object's process group if it still runs, reaps it, removes the directory. NULL is fine. */
void run_free(run *r);

const char *run_instance(const run *r);
uint64_t run_generation(const run *r);
const char *run_dir(const run *r);
pid_t run_pid(const run *r);

/*
 * Extracts the artifact (and the state bundle, when state is not NULL)
 * with the safe extractor and checks meta.json: ERR_UNSUPPORTED when it
 * was built for another ISA, ERR_NOTFOUND when bin/<entry> is missing.
 */
int run_unpack(run *r, const char *artifact_path, const char *state_path);

/*
 * Starts the object. A failure of the launcher before the object runs
 * ("cannot execute 'bin/x': ...") is an error here, not an exit status.
 */
int run_start(run *r);

/* Descriptors to poll: the progress channel (-1 after its end) and a pidfd (-1 when unavailable). */
int run_progress_fd(const run *r);
int run_pidfd(const run *r);

/* Parses one progress line (without its newline). ERR_INVALID for lines the ABI does not define. */
int run_parse_line(struct run_note *out, const char *line);

/*
 * Reads what the progress channel holds without blocking and calls fn for
 * each valid line; lines longer than 255 bytes and unknown lines are
 * skipped. Returns 1 at the channel's end, else 0.
 */
int run_read_progress(run *r, void (*fn)(void *ud, run *r, const struct run_note *note), void *ud);

/* 1 and *out when the object has exited (reaped, strays of its process group killed), 0 while it runs. */
int run_reap(run *r, struct run_exit *out);

/* Waits up to timeout_ms for the exit (tests, shutdown); ERR_LIMIT when it still runs. */
int run_wait(run *r, struct run_exit *out, int timeout_ms);

/* A checkpoint request (SIGUSR1; SIGKILL after the grace period) or a kill of the whole process group. */
int run_stop(run *r, enum proto_stop_mode mode);
int run_signal(run *r, int sig);

/*
 * Enforces the wall-clock limit and the stop grace period at time now
 * (CLOCK_MONOTONIC seconds) and returns the next time it needs to be called,
 * or 0 for never.
 */
double run_check_time(run *r, double now);

/*
 * Packs out/ into dest (a tar.zst bundle). ERR_NOTFOUND when out/ holds no
 * state.json. While the object runs, a checkpoint is packed only when no
 * file in out/ is newer than state.json and nothing changed during the
 * packing (ERR_CONFLICT after a few tries: the object is busy writing its
 * next checkpoint). When objects run as another user, the packing runs as that
 * user too, so that links the object planted cannot make the agent read
 * files the object could not.
 */
int run_pack_state(run *r, const char *dest);

/*
 * Appends to out up to max bytes of log written since the last call, cut at
 * a character boundary. Relaying stops after 1 MiB per instance; with final
 * set, the last 64 KiB of what was not relayed follow a note saying how
 * much was skipped.
 */
int run_read_log(run *r, struct buf *out, size_t max, int final);

/* CLOCK_MONOTONIC in seconds. */
double run_now(void);

#endif
