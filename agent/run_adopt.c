/* run_adopt.c - what a run keeps on disk for a later agent, and taking a run over after a restart. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "run_int.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define INSTANCE_MAX (64u << 10)
#define PID_WAIT_MS 2000 /* for a supervisor started just before the earlier agent stopped */

/*
 * Not fsynced: it has to survive the agent, not the machine. A machine
 * that goes down takes the object and its supervisor with it, and a
 * directory whose instance.json did not reach the disk is removed at the
 * next start (the dispatcher continues the instance elsewhere).
 */
int run_save_instance(const run *r)
{
	json_t *j =
	    json_pack("{sssIsIsss{sIsIsI}sI}", "instance", r->instance, "generation",
		      (json_int_t)r->generation, "fork_index", (json_int_t)r->fork_index, "entry", r->entry,
		      "limits", "cpu_s", (json_int_t)r->limits.cpu_s, "memory", (json_int_t)r->limits.memory,
		      "wall_s", (json_int_t)r->limits.wall_s, "grace_s", (json_int_t)r->grace_s);
	char *text = NULL, *path = fs_join(r->dir, "instance.json"), *tmp = fs_join(r->dir, "instance.json.tmp");
	int e;

	if (j && r->artifact[0])
		json_object_set_new(j, "artifact", json_string(r->artifact));
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	/* Through a fixed temporary name: a spare directory has that file already (see run_make_spares()). */
	if (!text || !path || !tmp)
		e = err_set(ERR_NOMEM, "out of memory");
	else if ((e = fs_write_file(tmp, text, strlen(text), 0600)) == 0)
		e = fs_rename(tmp, path);
	json_decref(j);
	free(text);
	free(path);
	free(tmp);
	return e;
}

void run_open_outputs(run *r)
{
	char *progress = fs_join(r->dir, "progress"), *log = fs_join(r->dir, "log");

	if (progress && r->progress < 0)
		r->progress = open(progress, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (log && r->log_rd < 0)
		r->log_rd = open(log, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(progress);
	free(log);
}

json_t *run_cursor(const run *r)
{
	return json_pack("{sIsIsIsi}", "progress", (json_int_t)r->progress_pos, "log", (json_int_t)r->log_pos,
			 "log_sent", (json_int_t)r->log_sent, "log_capped", r->log_capped);
}

static int get_u64(const json_t *o, const char *key, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* instance.json: the run's identity and limits. It must name the run its directory is named after. */
static int load_instance(run *r)
{
	struct buf text = BUF_INIT(INSTANCE_MAX);
	char *path = fs_join(r->dir, "instance.json"), name[PROTO_ID_MAX + 32];
	const char *id, *entry;
	uint64_t fork, grace;
	json_t *j = NULL, *lim, *art;
	int e;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	if ((e = fs_read_file(&text, path, INSTANCE_MAX)) < 0)
		goto out;
	j = json_loadb(text.data ? text.data : "", text.len, 0, NULL);
	id = json_string_value(json_object_get(j, "instance"));
	entry = json_string_value(json_object_get(j, "entry"));
	lim = json_object_get(j, "limits");
	if (!id || !proto_id_is_valid(id) || !entry || !*entry || strlen(entry) > PROTO_ENTRY_MAX ||
	    strchr(entry, '/') || get_u64(j, "generation", UINT64_MAX, &r->generation) < 0 ||
	    get_u64(j, "fork_index", INT64_MAX, &fork) < 0 || get_u64(j, "grace_s", UINT_MAX, &grace) < 0 ||
	    get_u64(lim, "cpu_s", UINT64_MAX, &r->limits.cpu_s) < 0 ||
	    get_u64(lim, "memory", UINT64_MAX, &r->limits.memory) < 0 ||
	    get_u64(lim, "wall_s", UINT64_MAX, &r->limits.wall_s) < 0) {
		e = err_set(ERR_INVALID, "'%s' is damaged", path);
		goto out;
	}
	snprintf(name, sizeof(name), "%s-%" PRIu64, id, r->generation);
	if (strcmp(name, r->name) != 0) {
		e = err_set(ERR_INVALID, "'%s' describes another run ('%s')", path, name);
		goto out;
	}
	/* Written by agents that run artifacts from a shared tree: the blob to pin while the run lasts. */
	art = json_object_get(j, "artifact");
	if (art && (!json_is_string(art) || !digest_is_valid(json_string_value(art)))) {
		e = err_set(ERR_INVALID, "'%s' is damaged", path);
		goto out;
	}
	if (art)
		snprintf(r->artifact, sizeof(r->artifact), "%s", json_string_value(art));
	snprintf(r->instance, sizeof(r->instance), "%s", id);
	snprintf(r->entry, sizeof(r->entry), "%s", entry);
	r->fork_index = (int64_t)fork;
	r->grace_s = (unsigned)grace;
out:
	json_decref(j);
	buf_release(&text);
	free(path);
	return e;
}

/* 1 when nobody holds DIR/lock: no supervisor runs there (it holds the lock as long as it lives). */
static int lock_free(const run *r)
{
	char *path = fs_join(r->dir, "lock");
	int fd, e = 1;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		e = errno == ENOENT ? 1 : err_errno(ERR_IO, errno, "cannot open '%s'", path);
	} else {
		if (flock(fd, LOCK_EX | LOCK_NB) < 0)
			e = errno == EWOULDBLOCK ? 0 : err_errno(ERR_IO, errno, "cannot lock '%s'", path);
		close(fd); /* a lock taken here goes with it */
	}
	free(path);
	return e;
}

/* DIR/pid: "SUPERVISOR OBJECT\n", waiting up to wait_ms for a supervisor that is about to write it. */
static int read_pids(const run *r, pid_t *shim, pid_t *obj, int wait_ms)
{
	struct buf text = BUF_INIT(64);
	char *path = fs_join(r->dir, "pid");
	long a, b;
	int e;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	while ((e = fs_read_file(&text, path, 64)) == ERR_NOTFOUND && wait_ms > 0) {
		usleep(20000);
		wait_ms -= 20;
	}
	if (e == 0 && (sscanf(buf_str(&text), "%ld %ld", &a, &b) != 2 || a <= 0 || b <= 0 || a > INT_MAX ||
		       b > INT_MAX))
		e = err_set(ERR_INVALID, "'%s' is damaged", path);
	if (e == 0) {
		*shim = (pid_t)a;
		*obj = (pid_t)b;
	}
	buf_release(&text);
	free(path);
	return e;
}

/* Whether pid is this directory's supervisor: dispatch-run --dir works in the instance directory. */
static int is_our_shim(const run *r, pid_t pid)
{
	struct stat a, b;
	char link[64];

	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	return stat(link, &a) == 0 && stat(r->dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int run_shim_gone(run *r)
{
	struct pollfd p = {.fd = r->pidfd, .events = POLLIN};
	siginfo_t si = {0};

	if (r->child) {
		if (waitid(P_PID, (id_t)r->shim, &si, WEXITED | WNOHANG) < 0)
			return errno == ECHILD
				   ? 1
				   : err_errno(ERR_IO, errno, "cannot wait for the supervisor of '%s'",
					       r->instance);
		return si.si_pid != 0;
	}
	if (r->pidfd >= 0) {
		if (poll(&p, 1, 0) <= 0)
			return 0;
		/* Adopted by the very process that started it (a test): reap it, exactly that one. */
		waitid((idtype_t)P_PIDFD, (id_t)r->pidfd, &si, WEXITED | WNOHANG);
		return 1;
	}
	return lock_free(r);
}

int run_adopt(run **out, const struct run_config *cfg, const char *name, const json_t *cursor)
{
	run *r = run_alloc(cfg, name);
	pid_t shim = -1, obj = -1;
	uint64_t capped = 0;
	int e, gone;

	if (!r)
		return err_set(ERR_NOMEM, "out of memory");
	if ((e = load_instance(r)) < 0)
		goto fail;
	if (!(r->args = calloc(1, sizeof(*r->args)))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((e = gone = lock_free(r)) < 0)
		goto fail;
	e = read_pids(r, &shim, &obj, gone ? 0 : PID_WAIT_MS);
	if (e < 0 && gone) {
		/* No supervisor ever said it started the object: the start message comes again. */
		e = err_prefix(ERR_NOTFOUND, "instance '%s' never ran", r->instance);
		goto fail;
	}
	r->started = r->made_dir = 1;
	r->pid = obj;
	if (!gone && shim > 0) {
		r->pidfd = (int)syscall(SYS_pidfd_open, shim, 0);
		/* Verified after the pidfd is open: then the pidfd cannot name a newcomer with the same pid.
		 */
		if (is_our_shim(r, shim)) {
			r->shim = shim;
		} else if (r->pidfd >= 0) {
			close(r->pidfd);
			r->pidfd = -1;
		}
	}
	/* Without a cursor (it started after the last save) everything is read again. */
	if (cursor && (get_u64(cursor, "progress", INT64_MAX, &r->progress_pos) < 0 ||
		       get_u64(cursor, "log", INT64_MAX, &r->log_pos) < 0 ||
		       get_u64(cursor, "log_sent", INT64_MAX, &r->log_sent) < 0 ||
		       get_u64(cursor, "log_capped", 2, &capped) < 0))
		r->progress_pos = r->log_pos = r->log_sent = capped = 0;
	r->log_capped = (int)capped;
	run_open_outputs(r);
	*out = r;
	return 0;
fail:
	run_free(r);
	return e;
}
