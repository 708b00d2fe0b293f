/* proc.h - run a child process sandboxed, bounded in time, output captured. */
#ifndef DISPATCH_PROC_H
#define DISPATCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

/*
 * The child is set up in this order, so that each step still has the
 * authority it needs and no more afterwards:
 *   1. new process group (so a timeout kills every descendant)
 *   2. new network namespace when net_isolate (only loopback, down); without
 *      root, inside a user namespace of its own
 *   3. stdin from /dev/null, stdout+stderr to output_path
 *   4. rlimits: CPU time, file size, core dumps off, address space
 *   5. drop to uid/gid when running as root and uid != 0
 *   6. no_new_privs, close every other descriptor, chdir, execve
 */
struct proc_opts {
	const char *const *argv;  /* argv[0] is looked up in PATH of envp */
	const char *const *envp;  /* the whole environment of the child */
	const char *cwd;          /* NULL: inherit */
	const char *output_path;  /* NULL: /dev/null; else written (see output_append) */
	int output_append;        /* 1: append to output_path instead of truncating */
	int net_isolate;          /* 1: try a private network namespace */
	uid_t uid;                /* 0: keep */
	gid_t gid;
	unsigned timeout_ms;      /* 0: none */
	uint64_t max_as;          /* address space bytes, 0: unlimited */
	uint64_t max_fsize;       /* largest file the child may write, 0: unlimited */
};

struct proc_result {
	int exit_code;    /* valid when !signaled */
	int signaled;
	int signo;
	int timed_out;
	int net_isolated; /* the network namespace was really created */
	double wall_s;
};

/*
 * Runs the child and waits for it. Returns 0 when the child ran (whatever
 * its exit status, see res), or a negative code when it could not be
 * started (ERR_NOTFOUND for a missing program).
 */
int proc_run(struct proc_result *res, const struct proc_opts *o);

/* Describes a result: "exit 2", "killed by signal 9", "timed out after 10 s". */
const char *proc_describe(const struct proc_result *res, char *buf, size_t len);

/* Finds prog in the PATH of envp (or the process's PATH). New string. */
char *proc_which(const char *prog, const char *const *envp);

/* Whether this process can create network namespaces (cached). */
int proc_can_isolate_net(void);

#endif
