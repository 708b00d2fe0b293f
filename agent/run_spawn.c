/* run_spawn.c - run_start(): the launcher's command line, environment and descriptors. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "run_int.h"

/*
 * The launcher's descriptors: 0 /dev/null, 1 and 2 the log, 4 its status
 * pipe, which is close-on-exec in the launcher and the object: the agent
 * reads it to its end, and any text there is the reason the object could
 * not be started; 5 DIR/lock, flock()ed here, which the supervisor holds
 * for as long as it lives; 6 and 7 the network and mount namespaces the
 * objects share, when the agent made them. The supervisor gives the object
 * its progress channel on fd 3 (DISPATCH_PROGRESS_FD).
 */
#define FD_PROGRESS 3
#define FD_STATUS 4
#define FD_LOCK 5
#define FD_NETNS 6
#define FD_MNTNS 7
#define STATUS_MAX 1024
#define ARGV_FIXED 40 /* launcher options before "--" */
#define NUMS 14	      /* numbers among them */

/* Moves fd above the range the child's file actions write to, keeping it close-on-exec. */
static int lift(int *fd)
{
	int n;

	if (*fd > FD_MNTNS)
		return 0;
	n = fcntl(*fd, F_DUPFD_CLOEXEC, 10);
	if (n < 0)
		return err_errno(ERR_IO, errno, "cannot duplicate a descriptor");
	close(*fd);
	*fd = n;
	return 0;
}

static char *kv(const char *k, const char *v)
{
	size_t n = strlen(k) + strlen(v) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s=%s", k, v);
	return s;
}

static char **make_env(const run *r)
{
	const char *qemu = getenv("QEMU_LD_PREFIX");
	char gen[24], fork[24], fd[8], ckpt[24];
	char **env = calloc(14, sizeof(*env));
	size_t n = 0;

	if (!env)
		return NULL;
	snprintf(gen, sizeof(gen), "%" PRIu64, r->generation);
	snprintf(fork, sizeof(fork), "%" PRId64, r->fork_index);
	snprintf(fd, sizeof(fd), "%d", FD_PROGRESS);
	env[n++] = kv("PATH", "/usr/local/bin:/usr/bin:/bin");
	env[n++] = kv("HOME", r->cwd_dir);
	env[n++] = kv("TMPDIR", r->cwd_dir);
	env[n++] = kv("LANG", "C.UTF-8");
	env[n++] = kv("DISPATCH_STATE", r->state_dir);
	env[n++] = kv("DISPATCH_STATE_OUT", r->out_dir);
	env[n++] = kv("DISPATCH_PROGRESS_FD", fd);
	env[n++] = kv("DISPATCH_INSTANCE", r->instance);
	env[n++] = kv("DISPATCH_FORK_INDEX", fork);
	env[n++] = kv("DISPATCH_GENERATION", gen);
	env[n++] = kv("DISPATCH_ISA", r->cfg.isa);
	if (r->checkpoint_s) {
		snprintf(ckpt, sizeof(ckpt), "%" PRIu64, r->checkpoint_s);
		env[n++] = kv("DISPATCH_CHECKPOINT_INTERVAL", ckpt);
	}
	/* An agent emulated by qemu-user (scripts/foreign) finds foreign libraries through this: so must
	 * the launcher and dynamically linked objects it starts. */
	if (qemu)
		env[n++] = kv("QEMU_LD_PREFIX", qemu);
	for (size_t i = 0; i < n; i++)
		if (!env[i]) {
			strv_free(env);
			return NULL;
		}
	return env;
}

/* Appends "name VALUE" when value is not 0; nums[k] holds the text. Returns the next k. */
static size_t add_num(const char **v, size_t *n, char nums[][24], size_t k, const char *name, uint64_t value)
{
	if (!value)
		return k;
	snprintf(nums[k], 24, "%" PRIu64, value);
	v[(*n)++] = name;
	v[(*n)++] = nums[k];
	return k + 1;
}

/* The launcher's argv; nums provides the storage for numbers. */
static char **make_argv(const run *r, const char *exe, const char *cgroup, char nums[NUMS][24])
{
	size_t nargs = 0, n = 0, k = 0;
	const char **v;

	while (r->args[nargs])
		nargs++;
	v = calloc(ARGV_FIXED + nargs + 2, sizeof(*v));
	if (!v)
		return NULL;
	v[n++] = r->cfg.launcher;
	v[n++] = "--dir";
	v[n++] = r->dir;
	v[n++] = "--status-fd";
	snprintf(nums[k], 24, "%d", FD_STATUS);
	v[n++] = nums[k++];
	v[n++] = "--lock-fd";
	snprintf(nums[k], 24, "%d", FD_LOCK);
	v[n++] = nums[k++];
	if (cgroup) {
		v[n++] = "--cgroup";
		v[n++] = cgroup;
	}
	if (r->cfg.no_sandbox)
		v[n++] = "--no-sandbox";
	if (r->cfg.no_net)
		v[n++] = "--no-net";
	if (r->cfg.no_net && r->cfg.netns_fd > 0 && r->cfg.mntns_fd > 0) {
		v[n++] = "--netns-fd";
		snprintf(nums[k], 24, "%d", FD_NETNS);
		v[n++] = nums[k++];
		v[n++] = "--mntns-fd";
		snprintf(nums[k], 24, "%d", FD_MNTNS);
		v[n++] = nums[k++];
	}
	if (r->cfg.drop) {
		v[n++] = "--uid";
		snprintf(nums[k], 24, "%u", (unsigned)r->cfg.uid);
		v[n++] = nums[k++];
		v[n++] = "--gid";
		snprintf(nums[k], 24, "%u", (unsigned)r->cfg.gid);
		v[n++] = nums[k++];
	}
	k = add_num(v, &n, nums, k, "--cpu", r->limits.cpu_s);
	k = add_num(v, &n, nums, k, "--mem", r->limits.memory);
	k = add_num(v, &n, nums, k, "--fsize", r->cfg.fsize);
	k = add_num(v, &n, nums, k, "--nofile", r->cfg.nofile);
	k = add_num(v, &n, nums, k, "--wall", r->limits.wall_s);
	k = add_num(v, &n, nums, k, "--grace", r->grace_s);
	v[n++] = "--workdir";
	v[n++] = r->cwd_dir;
	v[n++] = "--";
	v[n++] = exe;
	for (size_t i = 0; i < nargs; i++)
		v[n++] = r->args[i];
	return (char **)v;
}

/* Reads the launcher's status pipe to its end: "" when the object was executed. */
static void read_status(int fd, char *msg, size_t len)
{
	size_t got = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, msg + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == len - 1)
			break;
	}
	msg[got] = '\0';
}

/* The object's pid from DIR/pid, for the log; -1 when it cannot be read. */
static pid_t object_pid(const run *r)
{
	struct buf text = BUF_INIT(64);
	char *path = fs_join(r->dir, "pid");
	long shim = 0, obj = -1;

	if (path && fs_read_file(&text, path, 64) == 0 && sscanf(buf_str(&text), "%ld %ld", &shim, &obj) != 2)
		obj = -1;
	buf_release(&text);
	free(path);
	return obj > 0 && obj <= INT_MAX ? (pid_t)obj : -1;
}

int run_start(run *r)
{
	int logfd = -1, lockfd = -1, status[2] = {-1, -1}, fa_ok = 0, attr_ok = 0, e = 0, st;
	char nums[NUMS][24], rel[PROTO_ENTRY_MAX + 8], msg[STATUS_MAX];
	char *exe = NULL, *logpath = NULL, *lockpath = NULL, *cgroup = NULL, **env = NULL, **argv = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid;

	if (r->started)
		return err_set(ERR_EXISTS, "instance '%s' is already started", r->instance);
	if (!r->root)
		return err_set(ERR_INVALID, "instance '%s' has no artifact", r->instance);
	snprintf(rel, sizeof(rel), "bin/%s", r->entry);
	exe = fs_join(r->root, rel);
	logpath = fs_join(r->dir, "log");
	lockpath = fs_join(r->dir, "lock");
	cgroup = r->cfg.cgroup_base ? fs_join(r->cfg.cgroup_base, r->name) : NULL;
	env = make_env(r);
	argv = exe && (cgroup || !r->cfg.cgroup_base) ? make_argv(r, exe, cgroup, nums) : NULL;
	if (!exe || !logpath || !lockpath || !env || !argv) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Before the spawn: whatever happens next, a later agent knows what runs there. */
	if ((e = run_save_instance(r)) < 0)
		goto out;
	logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (logfd < 0) {
		e = err_errno(ERR_IO, errno, "cannot create '%s'", logpath);
		goto out;
	}
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		e = err_errno(ERR_IO, errno, "cannot lock '%s'", lockpath);
		goto out;
	}
	if (pipe2(status, O_CLOEXEC) < 0) {
		e = err_errno(ERR_IO, errno, "cannot create a pipe");
		goto out;
	}
	if ((e = lift(&logfd)) < 0 || (e = lift(&lockfd)) < 0 || (e = lift(&status[1])) < 0)
		goto out;
	if ((errno = posix_spawn_file_actions_init(&fa)) != 0) {
		e = err_errno(ERR_NOMEM, errno, "cannot prepare the launcher");
		goto out;
	}
	fa_ok = 1;
	if ((errno = posix_spawnattr_init(&attr)) != 0) {
		e = err_errno(ERR_NOMEM, errno, "cannot prepare the launcher");
		goto out;
	}
	attr_ok = 1;
	sigemptyset(&none);
	sigfillset(&all);
	/* The object starts with default dispositions and nothing blocked, whatever the agent does. */
	if ((errno = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (errno = posix_spawn_file_actions_adddup2(&fa, logfd, 1)) ||
	    (errno = posix_spawn_file_actions_adddup2(&fa, logfd, 2)) ||
	    (errno = posix_spawn_file_actions_adddup2(&fa, status[1], FD_STATUS)) ||
	    (errno = posix_spawn_file_actions_adddup2(&fa, lockfd, FD_LOCK)) ||
	    (r->cfg.no_net && r->cfg.netns_fd > 0 && r->cfg.mntns_fd > 0 &&
	     ((errno = posix_spawn_file_actions_adddup2(&fa, r->cfg.netns_fd, FD_NETNS)) ||
	      (errno = posix_spawn_file_actions_adddup2(&fa, r->cfg.mntns_fd, FD_MNTNS)))) ||
	    (errno = posix_spawnattr_setsigmask(&attr, &none)) ||
	    (errno = posix_spawnattr_setsigdefault(&attr, &all)) ||
	    (errno = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))) {
		e = err_errno(ERR_IO, errno, "cannot prepare the launcher");
		goto out;
	}
	if ((errno = posix_spawn(&pid, r->cfg.launcher, &fa, &attr, argv, env)) != 0) {
		e = err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno,
			      "cannot start the launcher '%s'", r->cfg.launcher);
		goto out;
	}
	close(status[1]);
	status[1] = -1;
	read_status(status[0], msg, sizeof(msg));
	if (msg[0]) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		e = err_set(ERR_CHILD, "instance '%s' did not start: %s", r->instance, msg);
		goto out;
	}
	r->started = r->child = 1;
	r->shim = pid;
	r->pid = object_pid(r);
	r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	run_open_outputs(r);
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	for (int i = 0; i < 2; i++)
		if (status[i] >= 0)
			close(status[i]);
	if (logfd >= 0)
		close(logfd);
	if (lockfd >= 0)
		close(lockfd); /* the supervisor holds the lock now */
	free(exe);
	free(logpath);
	free(lockpath);
	free(cgroup);
	strv_free(env);
	free(argv);
	return e;
}
