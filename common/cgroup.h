/* cgroup.h - a control group (cgroup v2) per run: whatever an object starts goes with it. */
#ifndef DISPATCH_CGROUP_H
#define DISPATCH_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A process group holds an object's descendants only until one of them
 * calls setsid(): then a kill of the group misses it, and it outlives its
 * run, holding on to the run's directories. A control group cannot be left
 * that way: the object runs as another user and cannot write to the
 * cgroup.procs files that would move it out (an object of the agent's own
 * user, without --run-as, could). So, where the kernel offers cgroup v2
 * with cgroup.kill (Linux 5.14) and the agent may make groups:
 *
 *   - the agent makes BASE = <the cgroup2 mount><its own group>/
 *     dispatch-agent.<hash of the work directory> when it starts
 *     (cgroup_agent_base()): one per work directory, the same after a
 *     restart, so a later agent finds the groups of the runs it takes over;
 *   - dispatch-run (the supervisor, shim.h) makes BASE/<run name> before it
 *     forks the object (cgroup_open_run()) and forks it into the group
 *     (cgroup_fork(): clone3() with CLONE_INTO_CGROUP, so the object is in
 *     it from its first instruction);
 *   - every kill of the object is also a cgroup.kill of its group
 *     (cgroup_kill()), and when the object exits, what it left there is
 *     killed and waited for (cgroup_wait_empty()) before its exit is
 *     written: a run that has ended has no process left. Then the group is
 *     removed;
 *   - the agent removes the group of a run it sweeps, should it still be
 *     there (a supervisor killed with -9), and the groups of runs that are
 *     gone when it starts (cgroup_remove()).
 *
 * Starting, the agent puts a child into a group as dispatch-run will
 * (cgroup_agent_base()): it logs where the groups are, and whether
 * clone3() works there.
 *
 * No controller is enabled: the groups only hold processes, so they may
 * sit beside the agent's own processes in its group (under systemd the
 * unit needs Delegate=yes to own its subtree). Without cgroup v2, or
 * without the right to make groups, runs are contained by their process
 * group alone, as before; the agent says so when it starts.
 *
 * Libc only; what dispatch-run uses (cgroup_open_run(), cgroup_fork(),
 * cgroup_enter(), cgroup_kill(), cgroup_wait_empty()) does not allocate.
 */

#define CGROUP_PATH_MAX 4096

/*
 * The agent's BASE for work_dir, made when missing, into out (len bytes),
 * after a child was put into a group there as dispatch-run will put
 * objects: *fast is 1 when clone3() did it, 0 when only the slow fallback
 * of cgroup_fork() works. 0, or -1 with why (whylen bytes) saying what is
 * missing.
 */
int cgroup_agent_base(const char *work_dir, char *out, size_t len, int *fast, char *why, size_t whylen);

/*
 * Makes the group at path, or empties one of that name left behind; its
 * directory opened (O_DIRECTORY, close-on-exec), or -1 (errno).
 */
int cgroup_open_run(const char *path);

/*
 * fork() into the group dirfd: clone3() with CLONE_INTO_CGROUP. Where
 * clone3() is refused (qemu-user does not emulate it; seccomp filters such
 * as systemd's RestrictNamespaces= or a container runtime's answer ENOSYS
 * or EPERM), a plain fork() with *must_enter set: the child calls
 * cgroup_enter() itself, first thing. That costs the start a grace period
 * of RCU (about 12 ms on the machine of docs/benchmarks.md): moving a
 * process through cgroup.procs takes, for writing, a lock that every fork
 * takes for reading; CLONE_INTO_CGROUP does not. Returns as fork() does.
 */
pid_t cgroup_fork(int dirfd, int *must_enter);

/* Moves the calling process into the group dirfd: 0, or -1 (errno). */
int cgroup_enter(int dirfd);

/* SIGKILL to every process in the group dirfd, even those starting meanwhile: 0, or -1 (errno). */
int cgroup_kill(int dirfd);

/* Waits at most timeout_ms for the group to hold no process: 1 empty, 0 not yet, -1 (errno). */
int cgroup_wait_empty(int dirfd, int timeout_ms);

/*
 * Kills what is left in the group at path (and below it), waits at most
 * timeout_ms for it to go and removes the group: 0 (also when there was
 * none), -1 (errno; EBUSY: processes are still in it). Not for dispatch-run
 * (it allocates).
 */
int cgroup_remove(const char *path, int timeout_ms);

/* BASE's last component for work_dir: "dispatch-agent.<16 hex digits>". 0, or -1 (errno). */
int cgroup_base_name(const char *work_dir, char *out, size_t len);

/*
 * cgroup_remove() for an agent's BASE: every process in it and its runs'
 * groups is killed (cgroup.kill takes the subtree), then the runs' groups
 * and BASE are removed. Refuses (EINVAL) an absolute path whose last component is
 * not dispatch-agent.<16 hex digits>, whose directory is not on a cgroup2
 * file system, or that goes through a symbolic link (openat2()
 * RESOLVE_NO_SYMLINKS; after that only descriptors are used). Not for
 * dispatch-run (it allocates).
 */
int cgroup_remove_base(const char *path, int timeout_ms);

#endif
