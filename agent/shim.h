/* shim.h - dispatch-run --dir: the object's supervisor, which outlives a restart of the agent. */
#ifndef DISPATCH_SHIM_H
#define DISPATCH_SHIM_H

#include <stdint.h>

/*
 * The agent does not stay the object's parent: dispatch-run does, in the
 * manner of containerd-shim, so that killing or restarting the agent
 * leaves every object running and a new agent can take them over. The
 * supervisor
 *
 *   1. leaves the agent's session (setsid()), closes every descriptor but
 *      0-2, the status pipe and the lock, and enters DIR, the instance
 *      directory;
 *   2. forks the object: the child gets its own session (the process group
 *      the supervisor kills), a pipe to the supervisor as its progress
 *      channel (fd 3) and default signal handling, and calls child(),
 *      which sandboxes itself (sandbox.h: the parent-death signal ties it
 *      to the supervisor) and execs;
 *   3. writes DIR/pid ("SUPERVISOR OBJECT\n") before the status pipe is
 *      closed, so an agent that sees the object started finds both pids;
 *   4. appends the object's progress lines to DIR/progress: only lines the
 *      ABI defines, a progress line at most every SHIM_PROGRESS_PERIOD_MS
 *      (the newest wins; it is written before any later line), a checkpoint
 *      line repeating the previous one not at all, and nothing past
 *      SHIM_PROGRESS_MAX bytes. The file only grows: readers keep offsets;
 *   5. takes requests as signals: SIGUSR1 (and SIGTERM, SIGINT) asks the
 *      object for a checkpoint (SIGUSR1) and, grace_s later, kills its
 *      process group; SIGUSR2 kills the process group; wall_s after the
 *      start the process group is killed too;
 *   6. when the object exits, kills what is left of its process group,
 *      reaps it, reads the last progress lines and renames DIR/exit into
 *      place: "WAIT-STATUS REASON\n", REASON being "-", "killed" (SIGUSR2),
 *      "timeout" (wall_s) or "grace" (grace_s). Then it exits 0.
 *
 * With a cgroup (cgroup.h), the supervisor makes the run's control group
 * before the fork and the object enters it before anything else; every
 * kill of the process group above is also a kill of the control group,
 * and DIR/exit is written once the group is empty (a process that does not
 * die within SHIM_CGROUP_WAIT_MS is said on stderr, the run's log, and the
 * agent's sweep kills and removes the group later). Then the group is
 * removed. So nothing an
 * object started, whether or not it left the object's session, outlives
 * the run.
 *
 * lock_fd is a descriptor the agent flock()ed before the spawn; the
 * supervisor holds it until it exits, so a lock on DIR/lock that can be
 * taken means that no supervisor runs there (the pid in DIR/pid may
 * already belong to someone else). Libc only, no allocation.
 */
#define SHIM_PROGRESS_PERIOD_MS 500
#define SHIM_PROGRESS_MAX (64u << 20)
#define SHIM_LINE_MAX 255 /* the longest progress line (without its newline) */
#define SHIM_CGROUP_WAIT_MS 5000

struct shim_opts {
	const char *dir;
	const char *cgroup; /* the run's control group to make (cgroup.h), NULL: none */
	int lock_fd;	  /* -1: none */
	int status_fd;	  /* failures before the object runs are written here, -1: none */
	int keep_a, keep_b; /* descriptors the object needs (the namespaces to enter), -1: none */
	uint64_t wall_s;  /* 0: no wall-clock limit */
	uint64_t grace_s; /* 0: a checkpoint request never turns into a kill */
};

/*
 * Supervises the object that child(arg) becomes; child() runs in the new
 * process and must exec or _exit. Returns dispatch-run's exit status: 0
 * once DIR/exit is written, 127 when the object could not be started
 * (the reason went to status_fd and stderr), 1 when the exit could not be
 * recorded.
 */
int shim_run(const struct shim_opts *o, void (*child)(void *arg), void *arg);

#endif
