/* run.h - one instance on this node: its directory, the sandboxed object process, its progress channel and
 * log. */
#ifndef DISPATCH_AGENT_RUN_H
#define DISPATCH_AGENT_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "buf.h"
#include "protocol.h"

/*
 * WORK/inst/<instance>-<generation>/ holds
 *   instance.json            what a later agent needs to take the run over
 *   meta.json, bin/<entry>   the artifact, extracted (root-owned, read-only for the object)
 *   state/                   the state to start from (DISPATCH_STATE)
 *   out/                     where the object writes its state (DISPATCH_STATE_OUT)
 *   cwd/                     its working directory, HOME and TMPDIR
 *   log                      its stdout and stderr
 *   lock, pid, progress, exit  its supervisor's (shim.h)
 * out/ and cwd/ belong to the object's user. The launcher (dispatch-run
 * --dir, see shim.h), started with posix_spawn(), stays as the object's
 * supervisor: the object does not depend on the agent, and an agent that
 * stops or crashes leaves it running for the next one, which takes the run
 * over with run_adopt(). The agent reads the progress lines from
 * DIR/progress at an offset (a run_cursor() keeps the offsets across
 * restarts) and learns of the exit from the supervisor's pidfd.
 */
typedef struct run run;

/* What an artifact may unpack to. */
#define RUN_ARTIFACT_LIMITS                                                                                  \
	{                                                                                                    \
		.max_total = UINT64_C(1) << 30, .max_entries = 1000                                          \
	}

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
	int netns_fd, mntns_fd; /* namespaces every object enters (sandbox_make_ns()), 0: none, each makes its own */
	const char *cgroup_base; /* each run's control group is made in here (cgroup.h), NULL: none */
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
 * is new: free with run_free() or run_discard().
 */
int run_new(run **out, const struct run_config *cfg, const struct proto_msg *start);

/*
 * Takes over the run an earlier agent left in WORK/inst/<name>: its object
 * still runs, or has exited (run_reap() then says so at once). cursor
 * (borrowed, may be NULL) is what run_cursor() said before the restart.
 * ERR_NOTFOUND when there is nothing to take over (the earlier agent
 * stopped before the object ran), ERR_INVALID for a damaged directory:
 * remove it (fs_rm_rf) then.
 */
int run_adopt(run **out, const struct run_config *cfg, const char *name, const json_t *cursor);

/*
 * Frees the run and its descriptors, not its object: one that still runs
 * keeps running, and keeps its directory for a later run_adopt(). The
 * directory of a run that never started, or whose exit run_reap() returned,
 * is renamed to WORK/inst/.gone-NAME, for run_sweep() to remove once the
 * exit is reported (a run adopted later never sees it). NULL is fine.
 */
void run_free(run *r);

/*
 * Removes the directories of freed runs (WORK/inst/.gone-*), at most max
 * of them: how many it removed, or an error when WORK/inst cannot be read.
 * One that cannot go yet is logged and ends the call: it is tried again
 * at the next.
 */
int run_sweep(const struct run_config *cfg, int max);

/*
 * When the agent starts, after taking runs over: removes the control groups
 * (cfg->cgroup_base, cgroup.h) of runs that have no directory in
 * WORK/inst, killing what is left in them. run_sweep() removes a run's
 * group with its directory.
 */
void run_sweep_groups(const struct run_config *cfg);

/*
 * Makes the spare run directories that are missing (WORK/inst/.spare-K,
 * a few): run_new() renames one into place instead of creating a
 * directory tree and the run's files. Off the path of a start: after
 * one, or when the agent starts (which removes the spares it finds, as
 * every other dot-entry of WORK/inst). At most max of them: how many it
 * made, or the first error.
 */
int run_make_spares(const char *work_dir, int max);

/* Kills the object if it still runs (its whole process group), removes the directory, frees. NULL is fine. */
void run_discard(run *r);

const char *run_instance(const run *r);
uint64_t run_generation(const run *r);
const char *run_dir(const run *r);
const char *run_name(const run *r); /* "<instance>-<generation>", the directory's name */
pid_t run_pid(const run *r);	    /* the object's, -1 when unknown */

/*
 * Extracts the artifact (unless artifact_path is NULL: see
 * run_use_tree()) and the state bundle (when state_path is not NULL) with
 * the safe extractor and checks meta.json: ERR_UNSUPPORTED when it was
 * built for another ISA, ERR_NOTFOUND when bin/<entry> is missing.
 */
int run_unpack(run *r, const char *artifact_path, const char *state_path);

/*
 * Runs the artifact from tree, where it is unpacked already (the store's
 * read-only tree of the blob digest, shared by every run of it), instead
 * of a copy in the run's directory; checks meta.json as run_unpack() does.
 * digest goes into instance.json, so that a later agent taking the run
 * over pins the blob as long as the run lasts.
 */
int run_use_tree(run *r, const char *tree, const char *digest);

/* The digest of the shared tree the run uses (run_use_tree()), "" when it has its own copy. */
const char *run_artifact(const run *r);

/*
 * Writes instance.json and starts the object through its supervisor, which
 * also enforces the wall-clock limit and the stop grace period. A failure
 * before the object runs ("cannot execute 'bin/x': ...") is an error here,
 * not an exit status.
 */
int run_start(run *r);

/* The supervisor's pidfd, readable once it has exited; -1 when unavailable (then poll run_reap()). */
int run_pidfd(const run *r);

/* Adds an inotify watch (on the inotify instance fd) for new progress lines. */
int run_watch(run *r, int fd);
/* The watch descriptor, -1 when there is none. */
int run_watch_id(const run *r);

/* Parses one progress line (without its newline). ERR_INVALID for lines the ABI does not define. */
int run_parse_line(struct run_note *out, const char *line);

/*
 * Reads the progress lines written since the last call and calls fn for
 * each valid one; unknown lines are skipped. Returns 1 when the object has
 * exited (run_reap()) and every line is read, else 0.
 */
int run_read_progress(run *r, void (*fn)(void *ud, run *r, const struct run_note *note), void *ud);

/*
 * 1 and *out once the object has exited (its supervisor killed the strays
 * of its process group and recorded the exit), 0 while it runs. A
 * supervisor that died without recording the exit took the object with it:
 * that is reported as a kill.
 */
int run_reap(run *r, struct run_exit *out);

/* Waits up to timeout_ms for the exit (tests, shutdown); ERR_LIMIT when it still runs. */
int run_wait(run *r, struct run_exit *out, int timeout_ms);

/*
 * Asks the supervisor for a checkpoint (the object gets SIGUSR1, and
 * SIGKILL when still running after the grace period) or to kill the whole
 * process group. Works the same on an adopted run.
 */
int run_stop(run *r, enum proto_stop_mode mode);

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

/* Whether out/state.json exists: without it run_pack_state() has nothing to pack (ERR_NOTFOUND). */
int run_has_state(const run *r);

/*
 * Appends to out up to max bytes of log written since the last call, cut at
 * a character boundary. Relaying stops after 1 MiB per instance; with final
 * set, the last 64 KiB of what was not relayed follow a note saying how
 * much was skipped.
 */
int run_read_log(run *r, struct buf *out, size_t max, int final);

/*
 * Where the agent is in the run's progress lines and log, for run_adopt()
 * after a restart: {"progress", "log", "log_sent", "log_capped"} (new
 * reference).
 */
json_t *run_cursor(const run *r);

/* CLOCK_MONOTONIC in seconds. */
double run_now(void);

/* The earlier of two times, where 0 means "none". */
double run_earliest(double a, double b);

/* poll()'s timeout in ms until next (run_now() time; 0: none, then -1: no timeout, never a busy 0). */
int run_poll_timeout(double next, double now);

#endif
