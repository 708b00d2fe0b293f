/* cluster.c - starting and stopping the local cluster of `dispatch up`/`down`. */
#include "cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "cgroup.h"
#include "client.h"
#include "error.h"
#include "fsutil.h"

#ifndef DISPATCH_SOURCE_DIR
#define DISPATCH_SOURCE_DIR "."
#endif

#define PIDS_FILE "pids"
#define PROCS_MAX 16

extern char **environ;

struct isa_info {
	const char *isa, *debarch;
};

static const struct isa_info foreign[] = {
	{ "aarch64", "arm64" }, { "armhf", "armhf" }, { "s390x", "s390x" }, { "ppc64le", "ppc64el" },
};

const char *cluster_default_dir(void)
{
	static char path[4096];
	const char *env = getenv("DISPATCH_CLUSTER_DIR"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (env && *env)
		return env;
	/* Root's home is closed to the unprivileged user objects run as. */
	if (geteuid() == 0)
		return "/var/lib/dispatch/cluster";
	if (xdg && *xdg)
		snprintf(path, sizeof(path), "%s/dispatch/cluster", xdg);
	else
		snprintf(path, sizeof(path), "%s/.local/state/dispatch/cluster", home && *home ? home : "/tmp");
	return path;
}

char *cluster_config_path(void)
{
	char *p = fs_join(cluster_default_dir(), "config");

	if (p && access(p, R_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* The directory this executable is in (new), for finding its siblings. */
static char *self_dir(void)
{
	char *exe = realpath("/proc/self/exe", NULL), *slash;

	if (!exe)
		return NULL;
	slash = strrchr(exe, '/');
	*slash = '\0';
	return exe;
}

/* Finds a program next to dispatch, in the build tree, or in PATH (new string). */
static char *find_program(const char *name, const char *build_subdir)
{
	char *dir = self_dir(), path[4096];

	if (dir) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (access(path, X_OK) == 0) {
			free(dir);
			return strdup(path);
		}
		snprintf(path, sizeof(path), "%s/../%s/%s", dir, build_subdir, name);
		free(dir);
		if (access(path, X_OK) == 0)
			return realpath(path, NULL);
	}
	return NULL;
}

static int spawn(pid_t *pid, char *const argv[], char *const env[], const char *log)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* A session of its own: the cluster outlives the terminal that started it. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
	r = posix_spawn(pid, argv[0], &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return r == 0 ? 0 : err_errno(ERR_IO, r, "cannot start '%s'", argv[0]);
}

static int alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

static int read_pids(pid_t *pids, int max, const char *dir)
{
	char *path = fs_join(dir, PIDS_FILE);
	FILE *f = path ? fopen(path, "re") : NULL;
	int n = 0;
	long v;

	free(path);
	if (!f)
		return 0;
	while (n < max && fscanf(f, "%ld", &v) == 1)
		pids[n++] = (pid_t)v;
	fclose(f);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits until the dispatcher has written its URL. */
static int wait_url(struct buf *url, const char *state_dir, pid_t pid, double timeout)
{
	char *path = fs_join(state_dir, "dispatchd.url");
	int r = ERR_LIMIT;

	for (double t = 0; t < timeout && path; t += 0.05) {
		buf_reset(url);
		if (fs_read_file(url, path, 4096) == 0 && url->len) {
			r = 0;
			break;
		}
		if (!alive(pid)) {
			r = ERR_CHILD;
			break;
		}
		sleep_ms(50);
	}
	free(path);
	if (r == ERR_CHILD)
		return err_set(ERR_CHILD, "dispatchd exited at start; see its log in '%s/..'", state_dir);
	return r < 0 ? err_set(ERR_LIMIT, "dispatchd did not start within %.0f s", timeout) : 0;
}

/* Waits until n nodes are up, printing them. */
static int wait_nodes(const char *url, const char *token, int n, double timeout)
{
	client *cl = NULL;
	json_t *ans = NULL;
	size_t up = 0;
	int r;

	if ((r = client_new(&cl, url, token, "the local cluster")) < 0)
		return r;
	for (double t = 0; t < timeout; t += 0.25) {
		json_decref(ans);
		ans = NULL;
		up = 0;
		if (client_get_json(&ans, cl, "/v1/nodes") == 0) {
			size_t i;
			json_t *node;
			json_array_foreach(json_object_get(ans, "nodes"), i, node)
				up += !strcmp(json_string_value(json_object_get(node, "state")) ?: "", "up");
			if ((int)up >= n)
				break;
		}
		sleep_ms(250);
	}
	if ((int)up >= n) {
		size_t i;
		json_t *node;
		printf("%-6s %-22s %-8s %-10s %s\n", "NODE", "NAME", "ISA", "LEVEL", "CORES");
		json_array_foreach(json_object_get(ans, "nodes"), i, node)
			printf("%-6s %-22s %-8s %-10s %lld\n", json_string_value(json_object_get(node, "id")),
			       json_string_value(json_object_get(node, "name")),
			       json_string_value(json_object_get(node, "isa")),
			       json_string_value(json_object_get(node, "level")) ?: "-",
			       (long long)json_integer_value(json_object_get(node, "cores")));
	} else {
		r = err_set(ERR_LIMIT, "only %zu of %d nodes joined within %.0f s; see the agent logs", up, n, timeout);
	}
	json_decref(ans);
	client_free(cl);
	return r;
}

int cluster_up(const struct cluster_opts *o)
{
	const char *dir = o->dir ? o->dir : cluster_default_dir();
	char *dispatchd = find_program("dispatchd", "dispatcher"), *agent = find_program("dispatch-agent", "agent");
	char path[4200], listen[64], state[4096], join_file[4200], token_file[4200];
	struct buf url = BUF_INIT(4096), token = BUF_INIT(4096), conf = BUF_INIT(8192);
	pid_t pids[PROCS_MAX];
	int npids = 0, nodes = 0, r = 0;
	FILE *pf = NULL;

	if (read_pids(pids, PROCS_MAX, dir) > 0 && alive(pids[0])) {
		r = err_set(ERR_EXISTS, "a local cluster is already up in '%s' (run 'dispatch down' first)", dir);
		goto out;
	}
	if (!dispatchd || !agent) {
		r = err_set(ERR_NOTFOUND, "cannot find %s next to this dispatch or in its build tree",
			    !dispatchd ? "dispatchd" : "dispatch-agent");
		goto out;
	}
	/* Objects run as another user: they must be able to reach their agent's directory. */
	snprintf(state, sizeof(state), "%s/dispatchd", dir);
	if ((r = fs_mkdir_p(dir, 0711)) < 0 || (r = fs_mkdir_p(state, 0700)) < 0)
		goto out;
	chmod(dir, 0711);
	snprintf(path, sizeof(path), "%s/%s", dir, PIDS_FILE);
	pf = fopen(path, "we");
	if (!pf) {
		r = err_errno(ERR_IO, errno, "cannot write '%s'", path);
		goto out;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", o->port);
	snprintf(path, sizeof(path), "%s/dispatchd.log", dir);
	{
		char *argv[] = { dispatchd, "--state-dir", state, "--listen", listen, NULL };
		if ((r = spawn(&pids[npids], argv, environ, path)) < 0)
			goto out;
		fprintf(pf, "%ld\n", (long)pids[npids++]);
		fflush(pf);
	}
	if ((r = wait_url(&url, state, pids[0], 15)) < 0)
		goto out;
	snprintf(join_file, sizeof(join_file), "%s/join.token", state);
	snprintf(token_file, sizeof(token_file), "%s/operator.token", state);
	buf_printf(&conf, "# written by dispatch up; removed by dispatch down\nurl = %s\ntoken_file = %s\n",
		   buf_str(&url), token_file);
	snprintf(path, sizeof(path), "%s/config", dir);
	if ((r = fs_write_atomic(path, conf.data, conf.len, 0600)) < 0)
		goto out;

	/* The native agent, then one per emulated ISA. */
	for (int i = -1; i < (int)(sizeof(foreign) / sizeof(foreign[0])); i++) {
		const char *isa = i < 0 ? "native" : foreign[i].isa;
		char work[4096], name[64], log[4096], bin[4096], ld[4200];
		char *env[4] = { NULL };
		int e = 0;

		if (i >= 0) {
			const char *list = o->emulate ? o->emulate : "";
			size_t n = strlen(isa);
			const char *p = strstr(list, isa);
			if (!p || (p != list && p[-1] != ',') || (p[n] != '\0' && p[n] != ','))
				continue;
			snprintf(bin, sizeof(bin), "%s/build-%s/agent/dispatch-agent", DISPATCH_SOURCE_DIR, isa);
			if (access(bin, X_OK) != 0) {
				r = err_set(ERR_NOTFOUND, "no %s agent at '%s' (build it with scripts/foreign %s)", isa,
					    bin, isa);
				goto out;
			}
			snprintf(ld, sizeof(ld), "QEMU_LD_PREFIX=%s/.cache/sysroot/%s", DISPATCH_SOURCE_DIR,
				 foreign[i].debarch);
			env[e++] = ld;
		} else {
			snprintf(bin, sizeof(bin), "%s", agent);
		}
		env[e++] = "PATH=/usr/local/bin:/usr/bin:/bin";
		snprintf(name, sizeof(name), "local-%s", isa);
		snprintf(work, sizeof(work), "%s/agent-%s", dir, isa);
		snprintf(log, sizeof(log), "%s/agent-%s.log", dir, isa);
		if ((r = fs_mkdir_p(work, 0711)) < 0)
			goto out;
		chmod(work, 0711);
		char *argv[] = { bin, "--dispatcher", (char *)buf_str(&url), "--join-token-file", join_file,
				 "--work-dir", work, "--name", name, NULL };
		if (npids == PROCS_MAX || (r = spawn(&pids[npids], argv, env, log)) < 0)
			goto out;
		fprintf(pf, "%ld\n", (long)pids[npids++]);
		fflush(pf);
		nodes++;
	}
	printf("dispatchd at %s, state in %s\n", buf_str(&url), dir);
	if ((r = fs_read_file(&token, token_file, 4096)) < 0)
		goto out;
	token.len = strcspn(buf_str(&token), "\r\n");
	token.data[token.len] = '\0';
	r = wait_nodes(buf_str(&url), buf_str(&token), nodes, o->timeout_s > 0 ? o->timeout_s : 90);
out:
	if (pf)
		fclose(pf);
	if (r < 0 && npids > 0)
		cluster_down(dir);
	buf_release(&url);
	buf_release(&token);
	buf_release(&conf);
	free(dispatchd);
	free(agent);
	return r;
}

/* A directory or file of the cluster that down may act on: not a symbolic link, the caller's, not writable by others. */
static int trusted(const struct stat *st, int want_dir)
{
	return (want_dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode)) && st->st_uid == geteuid() &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/*
 * The agents' control groups (each names its in WORK/cgroup): whatever runs
 * in them goes, also what an object detached from its session and moved out
 * of the cluster's directory, and so do the groups. A group is only taken
 * when the agent's directory and its file are the caller's own and the
 * group's name is the one an agent on that directory makes.
 */
static void kill_groups(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		char work[4096], file[4200], text[CGROUP_PATH_MAX + 1], name[64];
		const char *base;
		struct stat st;
		ssize_t n;
		int fd;

		if (strncmp(e->d_name, "agent-", 6) != 0 ||
		    (size_t)snprintf(work, sizeof(work), "%s/%s", dir, e->d_name) >= sizeof(work) ||
		    lstat(work, &st) < 0 || !trusted(&st, 1))
			continue;
		snprintf(file, sizeof(file), "%s/cgroup", work);
		if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
			continue; /* an agent without control groups */
		n = fstat(fd, &st) == 0 && trusted(&st, 0) ? read(fd, text, sizeof(text) - 1) : -1;
		close(fd);
		if (n <= 0) {
			fprintf(stderr, "dispatch: ignoring '%s': not a file of yours, or empty\n", file);
			continue;
		}
		text[n] = '\0';
		text[strcspn(text, "\n")] = '\0';
		base = strrchr(text, '/');
		if (cgroup_base_name(work, name, sizeof(name)) < 0 || !base || strcmp(base + 1, name) != 0) {
			fprintf(stderr, "dispatch: ignoring '%s': '%s' is not the control group of an agent on '%s'\n",
				file, text, work);
			continue;
		}
		if (cgroup_remove_base(text, 2000) < 0)
			fprintf(stderr, "dispatch: cannot remove the control group '%s'%s: %s\n", text,
				errno == EINVAL ? " (not a cgroup2 directory reached without symbolic links)" : "",
				strerror(errno));
	}
	if (d)
		closedir(d);
}

/* Objects outlive their agent by design; those still working in the cluster's directory go too. */
static void kill_leftovers(const char *dir)
{
	char *root = realpath(dir, NULL);
	DIR *d = opendir("/proc");
	struct dirent *e;

	while (root && d && (e = readdir(d)) != NULL) {
		char link[64], cwd[4096];
		ssize_t n;
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		if (pid <= 1 || pid == getpid())
			continue;
		snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
		n = readlink(link, cwd, sizeof(cwd) - 1);
		if (n <= 0)
			continue;
		cwd[n] = '\0';
		if (!strncmp(cwd, root, strlen(root)) && (cwd[strlen(root)] == '/' || cwd[strlen(root)] == '\0'))
			kill(pid, SIGKILL);
	}
	if (d)
		closedir(d);
	free(root);
}

int cluster_down(const char *dir)
{
	pid_t pids[PROCS_MAX];
	int n, left;
	char *path;

	struct stat st;

	if (!dir)
		dir = cluster_default_dir();
	/* Its pids and control groups are killed as named there: only in a directory nobody else can write. */
	if (lstat(dir, &st) == 0 && !trusted(&st, 1))
		return err_set(ERR_INVALID, "refusing to stop the cluster in '%s': it is not a directory of this user's "
				"that only this user can write",
			       dir);
	n = read_pids(pids, PROCS_MAX, dir);
	/* Agents first, so that they do not spend their last seconds reconnecting. */
	for (int i = n - 1; i >= 0; i--)
		if (alive(pids[i]))
			kill(pids[i], SIGTERM);
	for (int t = 0; t < 100; t++) {
		left = 0;
		for (int i = 0; i < n; i++)
			left += alive(pids[i]) && waitpid(pids[i], NULL, WNOHANG) == 0;
		if (!left)
			break;
		sleep_ms(100);
	}
	for (int i = 0; i < n; i++)
		if (alive(pids[i]))
			kill(pids[i], SIGKILL);
	/* The supervisors first: one still running could make the agent's group again. */
	kill_leftovers(dir);
	kill_groups(dir);
	path = fs_join(dir, PIDS_FILE);
	if (path)
		unlink(path);
	free(path);
	path = fs_join(dir, "config");
	if (path)
		unlink(path);
	free(path);
	return n;
}
