/* launcher.c - dispatch-run: the sandbox (sandbox.h), then the object; its supervisor with --dir (shim.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"
#include "shim.h"

/*
 * The agent posix_spawn()s this program instead of forking itself: a
 * posix_spawn() of a small static-free binary costs a fraction of a
 * millisecond whatever the agent's size, and the sandbox code runs in a
 * process that has nothing else to do. With --status-fd, a failure before
 * the object runs is written to that descriptor (close-on-exec), so the
 * agent learns "cannot execute 'x': ..." rather than an anonymous exit 127.
 * The agent passes --dir: then this process stays as the object's
 * supervisor (shim.h) and the object is its child.
 */

#define EXIT_SETUP 127

static const char usage[] =
    "usage: dispatch-run [--uid N --gid N] [--cpu S] [--mem BYTES] [--fsize BYTES] [--nofile N]\n"
    "                    [--no-net [--netns-fd FD [--mntns-fd FD]]] [--workdir DIR] [--status-fd FD]\n"
    "                    [--no-sandbox]\n"
    "                    [--dir INSTDIR [--lock-fd FD] [--wall S] [--grace S] [--cgroup GROUP]]\n"
    "                    -- PROGRAM ARGS...\n"
    "\n"
    "Runs PROGRAM confined: a new session, rlimits, a private network namespace (--no-net),\n"
    "another user (--uid/--gid, as root), no_new_privs and a seccomp filter, in DIR.\n"
    "--netns-fd and --mntns-fd name namespaces to enter instead (the agent's, shared by its objects).\n"
    "--no-sandbox only changes the directory (for debugging).\n"
    "With --dir, stays as PROGRAM's supervisor: its progress lines (fd 3) go to\n"
    "INSTDIR/progress, its exit to INSTDIR/exit; SIGUSR1 asks it for a checkpoint\n"
    "(killed --grace S later), SIGUSR2 kills it, and so does the end of --wall S.\n"
    "--cgroup makes GROUP (a cgroup v2 directory) and runs PROGRAM in it: every process it\n"
    "starts is killed with it and when it exits, even one that left its session.\n";

static int status_fd = -1;

static _Noreturn void die(const char *msg)
{
	fprintf(stderr, "dispatch-run: %s\n", msg);
	if (status_fd >= 0 && write(status_fd, msg, strlen(msg)) < 0)
		_exit(EXIT_SETUP);
	_exit(EXIT_SETUP);
}

static _Noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void die_usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dispatch-run: %s\n%s", msg, usage);
	_exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end;
	uintmax_t v;

	errno = 0;
	v = strtoumax(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > UINT64_MAX)
		die_usage("bad number for %s", opt);
	return (uint64_t)v;
}

/* Resolves prog through the PATH of the environment when it has no '/'. */
static const char *resolve(const char *prog, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p;

	if (strchr(prog, '/'))
		return prog;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && (size_t)snprintf(buf, len, "%.*s/%s", (int)n, p, prog) < len &&
		    access(buf, X_OK) == 0)
			return buf;
		p += n;
		p += *p == ':';
	}
	return prog;
}

struct object {
	const struct sandbox_backend *b;
	const struct sandbox_opts *o;
	char **argv;
};

/* Confines this process and executes the object; returns only through die(). */
static _Noreturn void exec_object(void *arg)
{
	const struct object *ob = arg;
	char err[512], path[PATH_MAX], msg[PATH_MAX + 600];
	const char *prog;

	if (sandbox_apply(ob->b, ob->o, err, sizeof(err)) < 0)
		die(err);
	prog = resolve(ob->argv[0], path, sizeof(path));
	execv(prog, ob->argv);
	snprintf(msg, sizeof(msg), "cannot execute '%s': %s", ob->argv[0], strerror(errno));
	die(msg);
}

static int parse_fd(const char *opt, const char *s)
{
	int fd = (int)parse_u64(opt, s);

	if (fd < 3 || fd > 65535 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		die_usage("bad descriptor for %s", opt);
	return fd;
}

int main(int argc, char **argv)
{
	enum {
		O_UID = 256,
		O_GID,
		O_CPU,
		O_MEM,
		O_FSIZE,
		O_NOFILE,
		O_NONET,
		O_WORKDIR,
		O_STATUS,
		O_NOSB,
		O_DIR,
		O_LOCK,
		O_WALL,
		O_GRACE,
		O_NETNS,
		O_MNTNS,
		O_CGROUP
	};
	static const struct option longopts[] = {
	    {"uid", required_argument, NULL, O_UID},
	    {"gid", required_argument, NULL, O_GID},
	    {"cpu", required_argument, NULL, O_CPU},
	    {"mem", required_argument, NULL, O_MEM},
	    {"fsize", required_argument, NULL, O_FSIZE},
	    {"nofile", required_argument, NULL, O_NOFILE},
	    {"no-net", no_argument, NULL, O_NONET},
	    {"workdir", required_argument, NULL, O_WORKDIR},
	    {"status-fd", required_argument, NULL, O_STATUS},
	    {"no-sandbox", no_argument, NULL, O_NOSB},
	    {"dir", required_argument, NULL, O_DIR},
	    {"lock-fd", required_argument, NULL, O_LOCK},
	    {"wall", required_argument, NULL, O_WALL},
	    {"grace", required_argument, NULL, O_GRACE},
	    {"netns-fd", required_argument, NULL, O_NETNS},
	    {"mntns-fd", required_argument, NULL, O_MNTNS},
	    {"cgroup", required_argument, NULL, O_CGROUP},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sandbox_opts o = {.keep_fd = -1, .netns_fd = -1, .mntns_fd = -1};
	struct shim_opts so = {.lock_fd = -1, .status_fd = -1, .keep_a = -1, .keep_b = -1};
	struct object ob = {.b = sandbox_backend("seccomp"), .o = &o};
	int c, have_uid = 0, have_gid = 0;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case O_UID:
			o.uid = (uid_t)parse_u64("--uid", optarg);
			have_uid = 1;
			break;
		case O_GID:
			o.gid = (gid_t)parse_u64("--gid", optarg);
			have_gid = 1;
			break;
		case O_CPU:
			o.cpu_s = parse_u64("--cpu", optarg);
			break;
		case O_MEM:
			o.mem = parse_u64("--mem", optarg);
			break;
		case O_FSIZE:
			o.fsize = parse_u64("--fsize", optarg);
			break;
		case O_NOFILE:
			o.nofile = parse_u64("--nofile", optarg);
			break;
		case O_NONET:
			o.no_net = 1;
			break;
		case O_WORKDIR:
			o.workdir = optarg;
			break;
		case O_STATUS:
			status_fd = so.status_fd = o.keep_fd = parse_fd("--status-fd", optarg);
			break;
		case O_NOSB:
			ob.b = sandbox_backend("null");
			break;
		case O_DIR:
			so.dir = optarg;
			break;
		case O_LOCK:
			so.lock_fd = parse_fd("--lock-fd", optarg);
			break;
		case O_WALL:
			so.wall_s = parse_u64("--wall", optarg);
			break;
		case O_GRACE:
			so.grace_s = parse_u64("--grace", optarg);
			break;
		case O_NETNS:
			o.netns_fd = so.keep_a = parse_fd("--netns-fd", optarg);
			break;
		case O_MNTNS:
			o.mntns_fd = so.keep_b = parse_fd("--mntns-fd", optarg);
			break;
		case O_CGROUP:
			if (optarg[0] != '/')
				die_usage("%s", "--cgroup wants an absolute path");
			so.cgroup = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc)
		die_usage("%s", "no program given");
	if (have_uid != have_gid)
		die_usage("%s", "--uid and --gid go together");
	if (!so.dir && (so.lock_fd >= 0 || so.wall_s || so.grace_s || so.cgroup))
		die_usage("%s", "--lock-fd, --wall, --grace and --cgroup need --dir");
	o.drop = have_uid;
	ob.argv = argv + optind;
	if (so.dir)
		return shim_run(&so, exec_object, &ob);
	exec_object(&ob);
}
