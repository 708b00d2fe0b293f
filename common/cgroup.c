/* cgroup.c - the control groups of cgroup.h: the agent's base, a group per run, killing and removing it. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>   /* CGROUP2_SUPER_MAGIC */
#include <linux/openat2.h> /* struct open_how, RESOLVE_NO_SYMLINKS */
#include <linux/sched.h>   /* struct clone_args, CLONE_INTO_CGROUP */
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int say(char *why, size_t len, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The reason into why, with strerror(e) when e: -1. */
static int say(char *why, size_t len, int e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, len, fmt, ap);
	va_end(ap);
	if (e && n >= 0 && (size_t)n < len)
		snprintf(why + n, len - (size_t)n, ": %s", strerror(e));
	return -1;
}

/* Writes text to the control file name in dirfd (one write: kernfs takes it whole): 0, or -1 (errno). */
static int put(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW), e;
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, text, strlen(text));
	e = w < 0 ? errno : EIO;
	close(fd);
	if (w == (ssize_t)strlen(text))
		return 0;
	errno = e;
	return -1;
}

int cgroup_enter(int dirfd)
{
	return put(dirfd, "cgroup.procs", "0");
}

/*
 * A raw clone3(): the child skips glibc's fork handlers and keeps the
 * parent's thread id in its thread control block. That is fine for the
 * single-threaded dispatch-run, whose child only makes system calls, writes
 * to stderr and execs (and for the agent's probe, whose child only exits):
 * keep it so.
 */
pid_t cgroup_fork(int dirfd, int *must_enter)
{
	struct clone_args ca = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)dirfd};
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));

	*must_enter = 0;
	if (pid >= 0 || (errno != ENOSYS && errno != EINVAL && errno != E2BIG && errno != EPERM))
		return (pid_t)pid;
	/* clone3() refused: qemu-user, seccomp filters (systemd's RestrictNamespaces=, container runtimes). */
	*must_enter = 1;
	return fork();
}

int cgroup_kill(int dirfd)
{
	return put(dirfd, "cgroup.kill", "1");
}

/* 1 when the group's cgroup.events (open in fd) says it holds no process, 0 when it does, -1 (errno). */
static int is_empty(int fd)
{
	char text[256];
	ssize_t n;
	const char *p;

	do
		n = pread(fd, text, sizeof(text) - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	text[n] = '\0';
	for (p = text; (p = strstr(p, "populated ")) != NULL; p++)
		if (p == text || p[-1] == '\n')
			return p[10] == '0';
	errno = EPROTO;
	return -1;
}

int cgroup_wait_empty(int dirfd, int timeout_ms)
{
	int fd = openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r, e;
	int64_t end = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	if (fd < 0)
		return -1;
	/* A change of cgroup.events wakes poll() with POLLPRI; the slices only bound a missed one. */
	while ((r = is_empty(fd)) == 0) {
		int64_t left = end - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLPRI};

		if (left <= 0)
			break;
		if (poll(&p, 1, left < 50 ? (int)left : 50) < 0 && errno != EINTR) {
			r = -1;
			break;
		}
	}
	e = errno;
	close(fd);
	errno = e;
	return r;
}

/* path's directory into parent (len bytes; "/" for a path right below the root): its last component, or NULL. */
static const char *split(const char *path, char *parent, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (!slash || n >= len || !slash[1])
		return NULL;
	memcpy(parent, path, n);
	parent[n] = '\0';
	if (n == 0)
		snprintf(parent, len, "/");
	return slash + 1;
}

/* mkdir of path's parent directory (one level): 0, also when it exists, or -1 (errno). */
static int make_parent(const char *path)
{
	char parent[CGROUP_PATH_MAX];

	if (!split(path, parent, sizeof(parent))) {
		errno = ENOENT;
		return -1;
	}
	return mkdir(parent, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

int cgroup_open_run(const char *path)
{
	int fd, e, w, made = mkdir(path, 0755) == 0;

	/* The agent's base, made when it started, may have been removed meanwhile: made again. */
	if (!made && errno == ENOENT && make_parent(path) == 0)
		made = mkdir(path, 0755) == 0;
	if (!made && errno != EEXIST)
		return -1;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	if (made)
		return fd;
	/* Left by a run of the same name whose supervisor was killed: what it holds is not this run's. */
	if (cgroup_kill(fd) < 0 || (w = cgroup_wait_empty(fd, 2000)) < 0) {
		e = errno;
	} else if (w == 0) {
		e = EBUSY;
	} else {
		return fd;
	}
	close(fd);
	errno = e;
	return -1;
}

/*
 * The group name in the directory pfd: what is in it is killed and waited
 * for (at most timeout_ms), then the groups below it (objects cannot make
 * any: their directories are root's) and the group go. By descriptors only.
 * 0 (also when there was no such group), or -1 (errno).
 */
static int remove_at(int pfd, const char *name, int timeout_ms)
{
	struct dirent *de;
	int fd, dfd, w, e = 0;
	DIR *d;

	if ((fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (cgroup_kill(fd) < 0 || (w = cgroup_wait_empty(fd, timeout_ms)) < 0)
		e = errno;
	else if (w == 0)
		e = EBUSY;
	if ((dfd = dup(fd)) >= 0 && (d = fdopendir(dfd)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_type == DT_DIR && strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0 && !e)
				e = errno;
		closedir(d);
	} else if (dfd >= 0) {
		close(dfd);
	}
	close(fd);
	if (unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
		return 0;
	errno = e ? e : errno;
	return -1;
}

int cgroup_remove(const char *path, int timeout_ms)
{
	char parent[CGROUP_PATH_MAX];
	const char *name = split(path, parent, sizeof(parent));
	int pfd, r, e;

	if (!name) {
		errno = EINVAL;
		return -1;
	}
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	r = remove_at(pfd, name, timeout_ms);
	e = errno;
	close(pfd);
	errno = e;
	return r;
}

/* BASE's name: dispatch-agent.<16 hex digits>. */
static int is_base_name(const char *name)
{
	static const char prefix[] = "dispatch-agent.";
	size_t n = strlen(prefix);

	if (strncmp(name, prefix, n) != 0 || strlen(name + n) != 16)
		return 0;
	for (const char *p = name + n; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

int cgroup_remove_base(const char *path, int timeout_ms)
{
	char parent[CGROUP_PATH_MAX];
	const char *name = path[0] == '/' ? split(path, parent, sizeof(parent)) : NULL;
	struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
	struct statfs sf;
	int pfd, r, e;

	if (!name || !is_base_name(name)) {
		errno = EINVAL;
		return -1;
	}
	/* Through no symbolic link, on a cgroup2 file system, and from there on by descriptors only. */
	if ((pfd = (int)syscall(SYS_openat2, AT_FDCWD, parent, &how, sizeof(how))) < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstatfs(pfd, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		close(pfd);
		errno = EINVAL;
		return -1;
	}
	r = remove_at(pfd, name, timeout_ms);
	e = errno;
	close(pfd);
	errno = e;
	return r;
}

/* Undoes the octal escapes (\040 and the like) of a mountinfo field, in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* This process's group in the unified hierarchy ("0::/path"), into out: 0, or -1. */
static int own_group(char *out, size_t len)
{
	char line[CGROUP_PATH_MAX + 16];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int r = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			if (line[3] == '/' && (size_t)snprintf(out, len, "%s", line + 3) < len)
				r = 0;
			break;
		}
	fclose(f);
	return r;
}

/*
 * Where the group `own` is in the file system: a cgroup2 mount whose root
 * is own or above it. 0 with the directory in out, -1 when none shows it.
 */
static int group_dir(const char *own, char *out, size_t len)
{
	char line[2 * CGROUP_PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int r = -1;

	if (!f)
		return -1;
	while (r < 0 && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
		char *field[5], *sep = strstr(line, " - "), *save = NULL, *tok = line;
		size_t n = 0, rl;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		while (n < 5 && (tok = strtok_r(n ? NULL : line, " ", &save)) != NULL)
			field[n++] = tok;
		if (n < 5)
			continue;
		unescape(field[3]);
		unescape(field[4]);
		rl = strcmp(field[3], "/") ? strlen(field[3]) : 0;
		if (rl && (strncmp(own, field[3], rl) != 0 || (own[rl] != '/' && own[rl] != '\0')))
			continue;
		if ((size_t)snprintf(out, len, "%s%s", field[4], strcmp(own + rl, "/") ? own + rl : "") < len)
			r = 0;
	}
	fclose(f);
	return r;
}

/*
 * Puts a child that only exits into a group under base, the way dispatch-run
 * will: 1 by clone3(), 0 by fork() and cgroup.procs, -1 (errno) when
 * neither works. A process that can make groups may still be unable to
 * move processes into them (the common ancestor's cgroup.procs).
 */
static int probe(const char *base)
{
	char path[CGROUP_PATH_MAX + 16];
	int fd, must_enter, st, e = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/.probe", base);
	if ((fd = cgroup_open_run(path)) < 0)
		return -1;
	pid = cgroup_fork(fd, &must_enter);
	if (pid == 0)
		_exit(must_enter && cgroup_enter(fd) < 0 ? 1 : 0);
	if (pid < 0)
		e = errno;
	else if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		e = EACCES;
	close(fd);
	rmdir(path);
	errno = e;
	return e ? -1 : !must_enter;
}

int cgroup_base_name(const char *work_dir, char *out, size_t len)
{
	char real[PATH_MAX];
	uint64_t h = UINT64_C(14695981039346656037);

	if (!realpath(work_dir, real))
		return -1;
	/* FNV-1a: a name of its own for each work directory, the same at every start. */
	for (const char *p = real; *p; p++)
		h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
	if ((size_t)snprintf(out, len, "dispatch-agent.%016llx", (unsigned long long)h) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int cgroup_agent_base(const char *work_dir, char *out, size_t len, int *fast, char *why, size_t whylen)
{
	char name[64], own[CGROUP_PATH_MAX], dir[CGROUP_PATH_MAX], kill_file[CGROUP_PATH_MAX + 16];
	int made, r;

	if (cgroup_base_name(work_dir, name, sizeof(name)) < 0)
		return say(why, whylen, errno, "cannot resolve '%s'", work_dir);
	if (own_group(own, sizeof(own)) < 0)
		return say(why, whylen, 0, "no cgroup v2 group in /proc/self/cgroup");
	if (group_dir(own, dir, sizeof(dir)) < 0)
		return say(why, whylen, 0, "no cgroup2 mount shows the group '%s'", own);
	if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
		return say(why, whylen, 0, "the group's path is too long");
	made = mkdir(out, 0755) == 0;
	if (!made && errno != EEXIST)
		return say(why, whylen, errno, "cannot make the group '%s'", out);
	snprintf(kill_file, sizeof(kill_file), "%s/cgroup.kill", out);
	if (access(kill_file, F_OK) < 0)
		r = say(why, whylen, 0, "the kernel has no cgroup.kill (Linux 5.14)");
	else if ((r = probe(out)) < 0)
		r = say(why, whylen, errno, "cannot put a process into a group in '%s'", out);
	if (r < 0) {
		if (made)
			rmdir(out);
		return -1;
	}
	*fast = r;
	return 0;
}
