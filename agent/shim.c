/* shim.c - the supervisor of shim.h: one object, its progress lines, its requests and its exit. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "sandbox.h"

#define EXIT_SETUP 127
#define FD_PROGRESS 3

struct shim {
	const struct shim_opts *o;
	pid_t child;
	int sigfd, pipe, out; /* signals, the progress channel, DIR/progress */
	int cg;		      /* the run's control group, -1: none */
	char line[SHIM_LINE_MAX + 1];
	size_t len;
	int skip;			 /* the line being read is too long: no line of the ABI is */
	char pending[SHIM_LINE_MAX + 1]; /* the newest progress line, not written yet */
	char last[SHIM_LINE_MAX + 1];	 /* the last checkpoint (or finished) line written */
	uint64_t written;
	int64_t next_progress, wall_at, grace_at; /* CLOCK_MONOTONIC ms, 0: none */
	const char *reason;			  /* why the process group was killed */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* now + s seconds, 0 (never) for 0 or a time too far away to matter. */
static int64_t deadline(int64_t now, uint64_t s)
{
	return s && s < (uint64_t)(INT64_MAX - now) / 1000 ? now + (int64_t)s * 1000 : 0;
}

static int64_t earliest(int64_t a, int64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static int setup_failed(const struct shim_opts *o, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failure before the object runs: the agent reads the reason on the status pipe. */
static int setup_failed(const struct shim_opts *o, int e, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = strlen(msg);
	if (e)
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(e));
	fprintf(stderr, "dispatch-run: %s\n", msg);
	if (o->status_fd >= 0 && write(o->status_fd, msg, strlen(msg)) < 0)
		return EXIT_SETUP;
	return EXIT_SETUP;
}

/* Writes text to name through tmp and a rename: readers see all of it or nothing. No fsync: a
 * machine that goes down takes the object with it. */
static int write_file(const char *name, const char *tmp, const char *text)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600), e;
	size_t n = strlen(text);
	ssize_t w;

	if (fd < 0)
		return -1;
	do
		w = write(fd, text, n);
	while (w < 0 && errno == EINTR);
	e = w < 0 ? errno : EIO;
	if (close(fd) < 0 || w != (ssize_t)n || rename(tmp, name) < 0) {
		e = w == (ssize_t)n ? errno : e;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

/* Appends one line; a single write() each, so a reader sees a line whole or not yet. */
static void put_line(struct shim *s, const char *line)
{
	char buf[SHIM_LINE_MAX + 1];
	size_t n = strlen(line);
	ssize_t w;

	if (s->out < 0 || n > SHIM_LINE_MAX || s->written + n + 1 > SHIM_PROGRESS_MAX)
		return;
	memcpy(buf, line, n);
	buf[n] = '\n';
	do
		w = write(s->out, buf, n + 1);
	while (w < 0 && errno == EINTR);
	if (w > 0)
		s->written += (uint64_t)w;
}

static void flush_progress(struct shim *s, int64_t now)
{
	if (!s->pending[0])
		return;
	put_line(s, s->pending);
	s->pending[0] = '\0';
	s->next_progress = now + SHIM_PROGRESS_PERIOD_MS;
}

/* The agent parses the lines again: this only keeps the file small. */
static void on_line(struct shim *s, int64_t now)
{
	const char *l = s->line;

	if (!strncmp(l, "progress ", 9)) {
		memcpy(s->pending, l, s->len + 1);
		if (now >= s->next_progress)
			flush_progress(s, now);
	} else if ((!strncmp(l, "checkpoint ", 11) || !strcmp(l, "finished")) && strcmp(l, s->last) != 0) {
		flush_progress(s, now);
		put_line(s, l);
		memcpy(s->last, l, s->len + 1);
	}
}

/* Reads what the progress channel holds without blocking; at its end the channel is closed. */
static void read_pipe(struct shim *s, int64_t now)
{
	char chunk[4096];
	ssize_t n;

	while (s->pipe >= 0) {
		n = read(s->pipe, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(s->pipe);
			s->pipe = -1;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] != '\n') {
				if (s->len < SHIM_LINE_MAX)
					s->line[s->len++] = chunk[i] ? chunk[i] : '?';
				else
					s->skip = 1;
				continue;
			}
			s->line[s->len] = '\0';
			if (!s->skip)
				on_line(s, now);
			s->len = 0;
			s->skip = 0;
		}
	}
}

/* Everything of the object: its process group, and its control group with whatever left the session. */
static void kill_all(struct shim *s)
{
	kill(-s->child, SIGKILL);
	if (s->cg >= 0)
		cgroup_kill(s->cg);
}

static void kill_group(struct shim *s, const char *reason)
{
	if (!s->reason)
		s->reason = reason;
	kill_all(s);
	kill(s->child, SIGKILL);
}

/* Acts on the signals received; 1 once the object has exited and is reaped (*status). */
static int handle_signals(struct shim *s, int64_t now, int *status)
{
	struct signalfd_siginfo si;
	siginfo_t ci = {0};

	while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGUSR2:
			kill_group(s, "killed");
			break;
		case SIGUSR1:
		case SIGTERM:
		case SIGINT:
			/* The object is not reaped before the loop ends: its pid is still its own. */
			kill(s->child, SIGUSR1);
			if (!s->grace_at)
				s->grace_at = deadline(now, s->o->grace_s);
			break;
		default: /* SIGCHLD (looked at below), SIGHUP */
			break;
		}
	}
	/* Look without reaping: while the leader is a zombie its pid (and group id) cannot be reused. */
	if (waitid(P_PID, (id_t)s->child, &ci, WEXITED | WNOHANG | WNOWAIT) < 0) {
		if (errno == EINTR)
			return 0;
		*status = SIGKILL; /* cannot happen: the child is ours */
		return 1;
	}
	if (ci.si_pid == 0)
		return 0;
	kill_all(s); /* strays of the object's process group, and of its control group */
	while (waitpid(s->child, status, 0) < 0 && errno == EINTR)
		;
	return 1;
}

/* In the new process: default signal handling, a session, the progress channel on fd 3, then the object. */
static _Noreturn void start_child(const struct shim_opts *o, int enter_cg, int wr, void (*child)(void *arg),
				  void *arg)
{
	sigset_t none;

	/* Without CLONE_INTO_CGROUP: first, as root still, so that nothing the object does can leave it. */
	if (enter_cg >= 0 && cgroup_enter(enter_cg) < 0)
		_exit(setup_failed(o, errno, "cannot enter the control group '%s'", o->cgroup));
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own session and process group, whatever the sandbox: the supervisor kills the group. */
	if (setsid() < 0)
		_exit(setup_failed(o, errno, "cannot create a session for the object"));
	if (wr == FD_PROGRESS ? fcntl(wr, F_SETFD, 0) < 0 : dup2(wr, FD_PROGRESS) < 0)
		_exit(setup_failed(o, errno, "cannot set up the progress channel"));
	child(arg);
	_exit(EXIT_SETUP);
}

static int supervise(struct shim *s)
{
	int status = 0;

	s->wall_at = deadline(now_ms(), s->o->wall_s);
	for (;;) {
		struct pollfd fds[2] = {{.fd = s->sigfd, .events = POLLIN},
					{.fd = s->pipe, .events = POLLIN}};
		int64_t now = now_ms(), next = earliest(s->wall_at, s->grace_at), wait;

		if (s->pending[0])
			next = earliest(next, s->next_progress);
		wait = !next ? -1 : next <= now ? 0 : next - now < INT_MAX ? next - now : INT_MAX;
		if (poll(fds, 2, (int)wait) < 0 && errno != EINTR)
			usleep(10000); /* ENOMEM: try again soon */
		now = now_ms();
		if (fds[1].revents)
			read_pipe(s, now);
		if (s->pending[0] && now >= s->next_progress)
			flush_progress(s, now);
		if (s->wall_at && now >= s->wall_at) {
			s->wall_at = 0;
			kill_group(s, "timeout");
		}
		if (s->grace_at && now >= s->grace_at) {
			s->grace_at = 0;
			kill_group(s, "grace");
		}
		if (handle_signals(s, now, &status))
			return status;
	}
}

/* The run is over: once nothing is left in its control group, the group goes too. */
static void end_group(struct shim *s)
{
	int w;

	if (s->cg < 0)
		return;
	cgroup_kill(s->cg);
	w = cgroup_wait_empty(s->cg, SHIM_CGROUP_WAIT_MS);
	close(s->cg);
	s->cg = -1;
	if (w == 1 && rmdir(s->o->cgroup) == 0)
		return;
	if (w == 1)
		fprintf(stderr, "dispatch-run: cannot remove the control group '%s': %s\n", s->o->cgroup,
			strerror(errno));
	else
		fprintf(stderr, "dispatch-run: processes of the object are still in '%s'%s%s\n", s->o->cgroup,
			w < 0 ? ": " : "", w < 0 ? strerror(errno) : "");
}

int shim_run(const struct shim_opts *o, void (*child)(void *arg), void *arg)
{
	const int keep[] = {o->status_fd, o->lock_fd, o->keep_a, o->keep_b};
	struct shim s = {.o = o, .sigfd = -1, .pipe = -1, .out = -1, .cg = -1};
	char text[64];
	struct stat st;
	sigset_t set;
	int p[2], status, must_enter = 0;

	if (setsid() < 0)
		return setup_failed(o, errno, "cannot create a session");
	sandbox_close_fds(3, keep, sizeof(keep) / sizeof(keep[0]));
	if (o->lock_fd >= 0 && fcntl(o->lock_fd, F_SETFD, FD_CLOEXEC) < 0)
		return setup_failed(o, errno, "bad descriptor for --lock-fd");
	if (chdir(o->dir) < 0)
		return setup_failed(o, errno, "cannot enter '%s'", o->dir);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN); /* the agent may be gone when the status pipe is written */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (s.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return setup_failed(o, errno, "cannot create a signalfd");
	s.out = open("progress", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s.out < 0 || fstat(s.out, &st) < 0)
		return setup_failed(o, errno, "cannot open '%s/progress'", o->dir);
	s.written = (uint64_t)st.st_size;
	if (o->cgroup && (s.cg = cgroup_open_run(o->cgroup)) < 0)
		return setup_failed(o, errno, "cannot make the control group '%s'", o->cgroup);
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;
		end_group(&s);
		return setup_failed(o, e, "cannot create a pipe");
	}
	s.child = s.cg >= 0 ? cgroup_fork(s.cg, &must_enter) : fork();
	if (s.child == 0)
		start_child(o, must_enter ? s.cg : -1, p[1], child, arg);
	close(p[1]);
	if (s.child < 0) {
		int e = errno;
		end_group(&s);
		return setup_failed(o, e, "cannot fork");
	}
	/* Only the object enters the namespaces: the supervisor need not keep them. */
	if (o->keep_a >= 0)
		close(o->keep_a);
	if (o->keep_b >= 0)
		close(o->keep_b);
	s.pipe = p[0];
	fcntl(s.pipe, F_SETFL, O_NONBLOCK);
	snprintf(text, sizeof(text), "%d %d\n", (int)getpid(), (int)s.child);
	if (write_file("pid", "pid.tmp", text) < 0) {
		int e = errno;
		kill_group(&s, "killed");
		while (waitpid(s.child, NULL, 0) < 0 && errno == EINTR)
			;
		end_group(&s);
		return setup_failed(o, e, "cannot write '%s/pid'", o->dir);
	}
	/* The agent reads the status pipe to its end: now the object's exec() ends it. */
	if (o->status_fd >= 0)
		close(o->status_fd);
	status = supervise(&s);
	read_pipe(&s, now_ms());
	flush_progress(&s, now_ms());
	end_group(&s);
	snprintf(text, sizeof(text), "%d %s\n", status, s.reason ? s.reason : "-");
	if (write_file("exit", "exit.tmp", text) < 0) {
		fprintf(stderr, "dispatch-run: cannot write '%s/exit': %s\n", o->dir, strerror(errno));
		return 1;
	}
	return 0;
}
