/* proc.c - sandboxed child processes with a timeout. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env_get(const char *const *envp, const char *name)
{
	size_t n = strlen(name);

	if (!envp)
		return getenv(name);
	for (; *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

char *proc_which(const char *prog, const char *const *envp)
{
	const char *path = env_get(envp, "PATH");
	const char *p;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		char *cand = malloc(n + strlen(prog) + 2);

		if (!cand)
			return NULL;
		memcpy(cand, p, n);
		cand[n] = '/';
		memcpy(cand + n + 1, prog, strlen(prog) + 1);
		if (n > 0 && access(cand, X_OK) == 0)
			return cand;
		free(cand);
		p = colon ? colon + 1 : p + n;
	}
	return NULL;
}

/*
 * A private network namespace. Without root (CAP_SYS_ADMIN) a user namespace
 * of its own makes one possible: the process keeps its uid outside, files
 * are still checked against it, and it sees only its own loopback.
 */
static int unshare_net(void)
{
	if (unshare(CLONE_NEWNET) == 0)
		return 0;
	if (errno == EPERM && geteuid() != 0)
		return unshare(CLONE_NEWUSER | CLONE_NEWNET);
	return -1;
}

int proc_can_isolate_net(void)
{
	static int cached = -1;

	if (cached < 0) {
		pid_t pid = fork();
		int st = 0;

		if (pid == 0)
			_exit(unshare_net() == 0 ? 0 : 1);
		cached = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
			 WEXITSTATUS(st) == 0;
	}
	return cached;
}

/* Reports errno from the child through the status pipe, then exits. */
static void child_fail(int fd, int step)
{
	int msg[2] = { step, errno };

	if (write(fd, msg, sizeof(msg)) < 0)
		_exit(127);
	_exit(127);
}

enum { STEP_OUTPUT = 1, STEP_RLIMIT, STEP_DROP, STEP_NNP, STEP_CHDIR, STEP_EXEC };

static void set_limit(int res, uint64_t v)
{
	struct rlimit rl = { (rlim_t)v, (rlim_t)v };

	setrlimit(res, &rl);
}

static void child_run(const struct proc_opts *o, const char *prog, int status_fd, int *isolated_fd)
{
	int fd, isolated = 0;

	setpgid(0, 0);
	if (o->net_isolate && unshare_net() == 0)
		isolated = 1;
	if (write(*isolated_fd, &isolated, sizeof(isolated)) < 0)
		_exit(127);
	close(*isolated_fd);

	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		child_fail(status_fd, STEP_OUTPUT);
	close(fd);
	if (o->output_path)
		fd = open(o->output_path, O_WRONLY | O_CREAT | (o->output_append ? O_APPEND : O_TRUNC), 0644);
	else
		fd = open("/dev/null", O_WRONLY);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		child_fail(status_fd, STEP_OUTPUT);
	if (fd > 2)
		close(fd);

	if (o->timeout_ms)
		set_limit(RLIMIT_CPU, o->timeout_ms / 1000 + 1);
	if (o->max_fsize)
		set_limit(RLIMIT_FSIZE, o->max_fsize);
	if (o->max_as)
		set_limit(RLIMIT_AS, o->max_as);
	set_limit(RLIMIT_CORE, 0);

	if (geteuid() == 0 && o->uid != 0) {
		if (setgroups(0, NULL) < 0 || setgid(o->gid) < 0 || setuid(o->uid) < 0)
			child_fail(status_fd, STEP_DROP);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(status_fd, STEP_NNP);
	if (o->cwd && chdir(o->cwd) < 0)
		child_fail(status_fd, STEP_CHDIR);
	signal(SIGPIPE, SIG_DFL);
	execve(prog, (char *const *)o->argv, (char *const *)o->envp);
	child_fail(status_fd, STEP_EXEC);
}

static const char *step_name(int step)
{
	switch (step) {
	case STEP_OUTPUT: return "redirect output";
	case STEP_RLIMIT: return "set limits";
	case STEP_DROP: return "drop privileges";
	case STEP_NNP: return "set no_new_privs";
	case STEP_CHDIR: return "enter the work directory";
	case STEP_EXEC: return "execute";
	}
	return "start";
}

int proc_run(struct proc_result *res, const struct proc_opts *o)
{
	struct proc_result r = { 0 };
	int status_pipe[2] = { -1, -1 }, iso_pipe[2] = { -1, -1 };
	int pidfd = -1, st = 0, msg[2], rc = 0;
	char *prog = NULL;
	double start = now_s();
	sigset_t all, old;
	pid_t pid;
	ssize_t n;

	prog = proc_which(o->argv[0], o->envp);
	if (!prog)
		return err_set(ERR_NOTFOUND, "cannot find program '%s'", o->argv[0]);
	if (pipe2(status_pipe, O_CLOEXEC) < 0 || pipe2(iso_pipe, O_CLOEXEC) < 0) {
		rc = err_errno(ERR_IO, errno, "cannot create a pipe");
		goto out;
	}
	/* Block signals across fork so the child starts with a clean slate. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(status_pipe[0]);
		close(iso_pipe[0]);
		child_run(o, prog, status_pipe[1], &iso_pipe[1]);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		rc = err_errno(ERR_IO, errno, "cannot fork");
		goto out;
	}
	close(status_pipe[1]);
	status_pipe[1] = -1;
	close(iso_pipe[1]);
	iso_pipe[1] = -1;
	if (read(iso_pipe[0], &r.net_isolated, sizeof(r.net_isolated)) != sizeof(r.net_isolated))
		r.net_isolated = 0;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (o->timeout_ms && pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		double deadline = start + o->timeout_ms / 1000.0;
		for (;;) {
			double left = deadline - now_s();
			int pr;
			if (left <= 0) {
				r.timed_out = 1;
				kill(-pid, SIGKILL);
				break;
			}
			pr = poll(&p, 1, (int)(left * 1000) + 1);
			if (pr > 0)
				break;
			if (pr < 0 && errno != EINTR)
				break;
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* stray descendants: daemons left by a build */
	r.wall_s = now_s() - start;

	n = read(status_pipe[0], msg, sizeof(msg));
	if (n == sizeof(msg)) {
		rc = err_errno(msg[0] == STEP_EXEC && msg[1] == ENOENT ? ERR_NOTFOUND : ERR_CHILD,
			       msg[1], "cannot %s '%s'", step_name(msg[0]), o->argv[0]);
		goto out;
	}
	if (WIFSIGNALED(st)) {
		r.signaled = 1;
		r.signo = WTERMSIG(st);
	} else {
		r.exit_code = WEXITSTATUS(st);
	}
	*res = r;
out:
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < 2; i++) {
		if (status_pipe[i] >= 0)
			close(status_pipe[i]);
		if (iso_pipe[i] >= 0)
			close(iso_pipe[i]);
	}
	free(prog);
	return rc;
}

const char *proc_describe(const struct proc_result *res, char *buf, size_t len)
{
	if (res->timed_out)
		snprintf(buf, len, "timed out after %.1f s", res->wall_s);
	else if (res->signaled)
		snprintf(buf, len, "killed by signal %d (%s)", res->signo, strsignal(res->signo));
	else
		snprintf(buf, len, "exit %d", res->exit_code);
	return buf;
}
