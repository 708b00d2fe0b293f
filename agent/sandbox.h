/* sandbox.h - confines the process that is about to become an object. */
#ifndef DISPATCH_SANDBOX_H
#define DISPATCH_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * dispatch-run calls sandbox_apply() in the process that becomes the
 * object, just before its execve(): with --dir (the agent's way, see
 * shim.h) in the child of the supervisor, without it in dispatch-run
 * itself. The "seccomp" backend takes these steps, in this order, so that
 * each one still has the authority it needs and nothing is left afterwards:
 *
 *   1. setsid(): a new session and process group, so that the agent can
 *      signal or kill the object with every descendant at once (the
 *      supervisor has already put it in the run's control group, cgroup.h,
 *      which also holds the descendants that leave the session)
 *   2. close every descriptor above the progress channel (fd 3) and the
 *      status pipe: the object inherits stdin, stdout, stderr and fd 3 only
 *   3. rlimits: CPU seconds, address space, file size, open files; no core
 *      dumps
 *   4. a private network namespace (only a downed loopback). With
 *      netns_fd, the one the agent made for its objects (sandbox_make_ns()):
 *      entering it costs a setns(), where creating one costs milliseconds
 *      and tearing it down more under load. Otherwise a new one; as root
 *      this must work; otherwise it is tried through a user namespace that
 *      maps the caller's own uid, and a failure is reported on stderr but
 *      does not stop the object (an unprivileged agent cannot do better)
 *   5. a private mount namespace with a fresh /sys, so that
 *      /sys/class/net describes the private network (root only, best
 *      effort): with mntns_fd the agent's (its /sys is the shared network
 *      namespace's), else a new one. Then netns_fd and mntns_fd are closed
 *   6. drop privileges, when root and a uid is given: setgroups(0),
 *      setresgid(), setresuid(), then check that root cannot be regained
 *   7. PR_SET_PDEATHSIG(SIGKILL): the object dies with its parent, the
 *      supervisor (set after the uid change, which clears it), so that no
 *      object runs unaccounted for; the agent itself may come and go
 *   8. PR_SET_NO_NEW_PRIVS: no setuid binary or file capability can give
 *      back what was dropped
 *   9. a seccomp filter denying a short list of system calls an object has
 *      no use for (ptrace, mount, namespaces, modules, keyrings, bpf, ...)
 *      and every call of another ABI (x32, or 32-bit calls from a 64-bit
 *      process). Installing it can fail, e.g. under qemu-user, which does
 *      not emulate seccomp: then a one-line warning goes to stderr and the
 *      object runs without it
 *  10. chdir() into the work directory (as the object's user)
 *
 * Objects that share the agent's namespaces see the same empty network
 * (a downed loopback: no traffic, not even between them) and the same
 * abstract unix socket names, as they share /tmp, their uid and each
 * other's signals already: objects are confined from the node, not from
 * each other.
 *
 * The "null" backend (dispatch-run --no-sandbox, for debugging) only
 * closes descriptors and changes the directory.
 *
 * The code is libc-only and does not allocate, so that dispatch-run stays
 * tiny and starts in well under a millisecond.
 */

struct sandbox_opts {
	int drop; /* 1: change to uid/gid (only possible as root) */
	uid_t uid;
	gid_t gid;
	uint64_t cpu_s;	     /* RLIMIT_CPU seconds, 0: unlimited */
	uint64_t mem;	     /* RLIMIT_AS bytes, 0: unlimited */
	uint64_t fsize;	     /* RLIMIT_FSIZE bytes, 0: unlimited */
	uint64_t nofile;     /* RLIMIT_NOFILE, 0: keep */
	int no_net;	     /* 1: private network namespace */
	int netns_fd;	     /* the network namespace to enter, -1: a new one */
	int mntns_fd;	     /* the mount namespace to enter (with netns_fd), -1: a new one */
	int keep_fd;	     /* one more descriptor to keep open (the status pipe), -1: none */
	const char *workdir; /* NULL: stay */
};

struct sandbox_backend {
	const char *name;
	/* Applies the steps; 0, or -1 with a message in err. */
	int (*apply)(const struct sandbox_opts *o, char *err, size_t errlen);
};

/* The backend called name ("seccomp" or "null"), or NULL. Borrowed. */
const struct sandbox_backend *sandbox_backend(const char *name);

/* Applies backend b; on failure err holds "cannot STEP: reason". */
int sandbox_apply(const struct sandbox_backend *b, const struct sandbox_opts *o, char *err, size_t errlen);

/* Closes every descriptor from lowest up, except the n in keep (-1 entries are ignored). */
void sandbox_close_fds(int lowest, const int *keep, size_t n);

/*
 * Makes the namespaces objects share (steps 4 and 5): an empty network
 * namespace and a mount namespace whose /sys shows it (mount events of
 * the host still propagate into it). A child process creates them and
 * is gone on return; *netns_fd and *mntns_fd (close-on-exec, above fd 9)
 * keep them alive. Needs root. 0, or -1 with a message in err.
 */
int sandbox_make_ns(int *netns_fd, int *mntns_fd, char *err, size_t errlen);

/* Whether this build has a seccomp filter for its ISA. */
int sandbox_has_seccomp(void);

#endif
