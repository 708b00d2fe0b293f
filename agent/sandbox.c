/* sandbox.c - the steps of sandbox.h: sessions, rlimits, namespaces, privileges, seccomp. */
#include "sandbox.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__) && !defined(__ILP32__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__arm__) && !defined(__ARMEB__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_ARM
#elif defined(__s390x__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_S390X
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__riscv) && __riscv_xlen == 64
#define SECCOMP_AUDIT_ARCH AUDIT_ARCH_RISCV64
#endif

/* clone(2)'s flags are its first argument, except on s390 (CLONE_BACKWARDS2). */
#if defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args[i]) + 4)
#else
#define ARG_LO(i) offsetof(struct seccomp_data, args[i])
#endif

#define NS_FLAGS                                                                                             \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |           \
	 CLONE_NEWCGROUP)

static int fail(char *err, size_t errlen, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (e && n < errlen)
		snprintf(err + n, errlen - n, ": %s", strerror(e));
	return -1;
}

static int set_limit(int res, uint64_t soft, uint64_t hard)
{
	struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};

	return setrlimit(res, &rl);
}

/* Closes [lo, hi]; close_range() is new (5.9) and qemu-user may not pass it on. */
static void close_span(int lo, int hi)
{
	if (lo > hi || syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0)
		return;
	for (int fd = lo; fd <= hi && fd < 65536; fd++)
		close(fd);
}

void sandbox_close_fds(int lowest, const int *keep, size_t n)
{
	int lo = lowest;

	/* Ascending, without a sort: the lowest kept descriptor above lo each time. */
	for (;;) {
		int next = INT_MAX;
		for (size_t i = 0; i < n; i++)
			if (keep[i] >= lo && keep[i] < next)
				next = keep[i];
		if (next == INT_MAX)
			break;
		close_span(lo, next - 1);
		lo = next + 1;
	}
	close_span(lo, INT_MAX);
}

static int step_limits(const struct sandbox_opts *o, char *err, size_t errlen)
{
	/* The hard CPU limit leaves a grace period between SIGXCPU and SIGKILL. */
	if (o->cpu_s && set_limit(RLIMIT_CPU, o->cpu_s, o->cpu_s + 5) < 0)
		return fail(err, errlen, errno, "cannot limit the CPU time");
	if (o->mem && set_limit(RLIMIT_AS, o->mem, o->mem) < 0)
		return fail(err, errlen, errno, "cannot limit the address space");
	if (o->fsize && set_limit(RLIMIT_FSIZE, o->fsize, o->fsize) < 0)
		return fail(err, errlen, errno, "cannot limit the file size");
	if (o->nofile && set_limit(RLIMIT_NOFILE, o->nofile, o->nofile) < 0)
		return fail(err, errlen, errno, "cannot limit the open files");
	if (set_limit(RLIMIT_CORE, 0, 0) < 0)
		return fail(err, errlen, errno, "cannot disable core dumps");
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Step 4 without root: a user namespace mapping only ourselves makes a network namespace possible. */
static int unshare_net_as_user(void)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_text("/proc/self/uid_map", map) < 0)
		return -1;
	if (write_text("/proc/self/setgroups", "deny\n") < 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return write_text("/proc/self/gid_map", map);
}

static int step_network(const struct sandbox_opts *o, int *isolated, int *shared, char *err, size_t errlen)
{
	*isolated = *shared = 0;
	if (!o->no_net)
		return 0;
	if (o->netns_fd >= 0 && setns(o->netns_fd, CLONE_NEWNET) == 0) {
		*isolated = *shared = 1;
		return 0;
	}
	if (unshare(CLONE_NEWNET) == 0) {
		*isolated = 1;
		return 0;
	}
	if (geteuid() == 0)
		return fail(err, errlen, errno, "cannot create a network namespace");
	if (unshare_net_as_user() == 0)
		return 0;
	fprintf(stderr, "dispatch-run: note: the object keeps the network: %s\n", strerror(errno));
	return 0;
}

/* Step 5: a fresh sysfs shows the new network namespace's devices only. */
static void step_mounts(const struct sandbox_opts *o, int net_isolated, int net_shared)
{
	if (!net_isolated || geteuid() != 0)
		return;
	/* The agent's mount namespace has the sysfs of the network namespace it made with it. */
	if (net_shared && o->mntns_fd >= 0 && setns(o->mntns_fd, CLONE_NEWNS) == 0)
		return;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		fprintf(stderr, "dispatch-run: note: no private /sys: %s\n", strerror(errno));
}

int sandbox_make_ns(int *netns_fd, int *mntns_fd, char *err, size_t errlen)
{
	int ready[2], hold[2], fds[2] = {-1, -1}, r = 0, st;
	char path[64], c = 0;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return fail(err, errlen, errno, "cannot create a pipe");
	if (pipe2(hold, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return fail(err, errlen, errno, "cannot create a pipe");
	}
	/* The child only makes system calls: fine in the child of a threaded process. */
	pid = fork();
	if (pid == 0) {
		char ok = 1;
		close(ready[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
		    mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			ok = 0;
		if (write(ready[1], &ok, 1) != 1)
			_exit(1);
		/* Until the parent holds the namespaces: it closes its end of hold. */
		while (read(hold[0], &ok, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	if (pid < 0) {
		r = fail(err, errlen, errno, "cannot fork");
		goto out;
	}
	while ((st = (int)read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (st != 1 || !c) {
		r = fail(err, errlen, 0, "cannot create the objects' namespaces");
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fds[0] = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	fds[1] = open(path, O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		int high = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 10) : -1;
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = high;
	}
	if (fds[0] < 0 || fds[1] < 0)
		r = fail(err, errlen, errno, "cannot open the namespaces of process %d", (int)pid);
out:
	close(ready[0]);
	close(hold[1]); /* the child ends */
	if (pid > 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	if (r < 0) {
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return r;
	}
	*netns_fd = fds[0];
	*mntns_fd = fds[1];
	return 0;
}

static int step_drop(const struct sandbox_opts *o, char *err, size_t errlen)
{
	if (!o->drop || (o->uid == getuid() && o->gid == getgid() && geteuid() == o->uid))
		return 0;
	if (geteuid() != 0)
		return fail(err, errlen, 0, "cannot change to uid %u: not running as root", (unsigned)o->uid);
	if (setgroups(0, NULL) < 0)
		return fail(err, errlen, errno, "cannot drop the supplementary groups");
	if (setresgid(o->gid, o->gid, o->gid) < 0)
		return fail(err, errlen, errno, "cannot change to gid %u", (unsigned)o->gid);
	if (setresuid(o->uid, o->uid, o->uid) < 0)
		return fail(err, errlen, errno, "cannot change to uid %u", (unsigned)o->uid);
	if (o->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return fail(err, errlen, 0, "privileges could be regained after the change to uid %u",
			    (unsigned)o->uid);
	return 0;
}

#ifdef SECCOMP_AUDIT_ARCH

#define DENY(name)                                                                                           \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_##name, 0, 1),                                              \
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

static int install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		/* x32 calls have their own numbers: refuse them all. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
#endif
		DENY(ptrace),
		DENY(mount),
		DENY(umount2),
		DENY(kexec_load),
		DENY(init_module),
		DENY(finit_module),
		DENY(delete_module),
		DENY(bpf),
		DENY(perf_event_open),
		DENY(keyctl),
		DENY(add_key),
		DENY(request_key),
		DENY(unshare),
		DENY(setns),
		DENY(reboot),
		DENY(swapon),
		DENY(swapoff),
		DENY(pivot_root),
		DENY(chroot),
		DENY(open_by_handle_at),
		DENY(userfaultfd),
#ifdef __NR_kexec_file_load
		DENY(kexec_file_load),
#endif
		/* clone3 passes its flags in memory, out of the filter's sight: libc falls back to clone. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		/* clone may not create namespaces either. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(CLONE_FLAGS_ARG)),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
		return 0;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

int sandbox_has_seccomp(void)
{
	return 1;
}

#else

static int install_filter(void)
{
	errno = ENOSYS;
	return -1;
}

int sandbox_has_seccomp(void)
{
	return 0;
}

#endif

static int apply_seccomp(const struct sandbox_opts *o, char *err, size_t errlen)
{
	const int keep[] = {o->keep_fd, o->netns_fd, o->mntns_fd};
	pid_t parent = getppid();
	int isolated, shared, r;

	/* Under a supervisor (shim.h) the object leads its own session already. */
	if (getsid(0) != getpid() && setsid() < 0 && setpgid(0, 0) < 0)
		return fail(err, errlen, errno, "cannot create a process group");
	sandbox_close_fds(4, keep, sizeof(keep) / sizeof(keep[0]));
	if ((r = step_limits(o, err, errlen)) < 0 || (r = step_network(o, &isolated, &shared, err, errlen)) < 0)
		return r;
	step_mounts(o, isolated, shared);
	if (o->netns_fd >= 0)
		close(o->netns_fd);
	if (o->mntns_fd >= 0)
		close(o->mntns_fd);
	if ((r = step_drop(o, err, errlen)) < 0)
		return r;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return fail(err, errlen, errno, "cannot set the parent-death signal");
	if (getppid() != parent)
		return fail(err, errlen, 0, "the agent is gone");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, errno, "cannot set no_new_privs");
	if (install_filter() < 0)
		fprintf(stderr, "dispatch-run: warning: no seccomp filter: %s\n", strerror(errno));
	if (o->workdir && chdir(o->workdir) < 0)
		return fail(err, errlen, errno, "cannot enter '%s'", o->workdir);
	return 0;
}

static int apply_null(const struct sandbox_opts *o, char *err, size_t errlen)
{
	sandbox_close_fds(4, &o->keep_fd, 1);
	if (o->workdir && chdir(o->workdir) < 0)
		return fail(err, errlen, errno, "cannot enter '%s'", o->workdir);
	return 0;
}

static const struct sandbox_backend backends[] = {
    {"seccomp", apply_seccomp},
    {"null", apply_null},
};

const struct sandbox_backend *sandbox_backend(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i].name, name))
			return &backends[i];
	return NULL;
}

int sandbox_apply(const struct sandbox_backend *b, const struct sandbox_opts *o, char *err, size_t errlen)
{
	err[0] = '\0';
	return b->apply(o, err, errlen);
}
