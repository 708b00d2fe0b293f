/* run_out.c - what comes out of an instance: its state bundle and its log. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle.h"
#include "error.h"
#include "fsutil.h"
#include "run_int.h"

#define LOG_RELAY_MAX (1u << 20) /* relayed per instance */
#define LOG_TAIL (64u << 10)	 /* relayed at the end when the budget is spent */
#define PACK_ERR_MAX 1024

#define PACK_TRIES 5
#define SNAP_DEPTH 16

/*
 * What out/ looks like: a hash of every entry's name, inode, size and
 * ctime, and whether some file changed after state.json. The SDK renames
 * blobs into place before state.json, so a blob newer than state.json
 * means the object is in the middle of its next checkpoint.
 */
struct snap {
	uint64_t hash;
	struct timespec state, newest;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		*h = (*h ^ c[i]) * 1099511628211u;
}

static int later(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

static void snap_dir(int fd0, int depth, struct snap *s)
{
	DIR *d = fdopendir(fd0);
	struct dirent *e;
	struct stat st;

	if (!d) {
		close(fd0);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		mix(&s->hash, e->d_name, strlen(e->d_name) + 1);
		mix(&s->hash, &st.st_ino, sizeof(st.st_ino));
		mix(&s->hash, &st.st_size, sizeof(st.st_size));
		mix(&s->hash, &st.st_ctim, sizeof(st.st_ctim));
		if (depth == 0 && !strcmp(e->d_name, "state.json"))
			s->state = st.st_ctim;
		else if (!S_ISDIR(st.st_mode) && later(&st.st_ctim, &s->newest))
			s->newest = st.st_ctim;
		if (S_ISDIR(st.st_mode) && depth < SNAP_DEPTH) {
			int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				snap_dir(fd, depth + 1, s);
		}
	}
	closedir(d);
}

static void snapshot(const char *dir, struct snap *s)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	memset(s, 0, sizeof(*s));
	s->hash = 14695981039346656037u;
	if (fd >= 0)
		snap_dir(fd, 0, s);
}

/* Copies the packer's pipe into out, at most max bytes. */
static int take_stream(int in, int out, uint64_t max, const char *dest)
{
	char chunk[1 << 16];
	uint64_t total = 0;
	ssize_t n;
	int e;

	for (;;) {
		n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(ERR_IO, errno, "cannot read the packed state");
		if (n == 0)
			return 0;
		total += (uint64_t)n;
		if (max && total > max)
			return err_set(ERR_LIMIT, "the packed state is larger than %" PRIu64 " bytes", max);
		if ((e = fs_write_all(out, chunk, (size_t)n, dest)) < 0)
			return e;
	}
}

/*
 * Packs out/ in a child running as the object's user, which can read only
 * what the object could; the bundle comes back through a pipe into dest
 * (opened here, O_NOFOLLOW), so nothing is created on the object's side.
 */
static int pack_as_user(run *r, const char *dest)
{
	char msg[PACK_ERR_MAX];
	int data[2] = { -1, -1 }, why[2] = { -1, -1 }, out = -1, st = 0, e = 0;
	ssize_t n;
	pid_t pid;

	out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (out < 0)
		return err_errno(ERR_IO, errno, "cannot open '%s'", dest);
	if (pipe2(data, O_CLOEXEC) < 0 || pipe2(why, O_CLOEXEC) < 0) {
		e = err_errno(ERR_IO, errno, "cannot create a pipe");
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		close(out); /* the agent's file: the packer writes only into the pipe */
		close(data[0]);
		close(why[0]);
		if (setgroups(0, NULL) < 0 || setresgid(r->cfg.gid, r->cfg.gid, r->cfg.gid) < 0 ||
		    setresuid(r->cfg.uid, r->cfg.uid, r->cfg.uid) < 0)
			e = err_errno(ERR_IO, errno, "cannot change to uid %u", (unsigned)r->cfg.uid);
		else
			e = bundle_pack_fd(r->out_dir, data[1]);
		if (e < 0 && write(why[1], err_msg(), strlen(err_msg())) < 0)
			_exit(2);
		_exit(e < 0 ? 1 : 0);
	}
	if (pid < 0) {
		e = err_errno(ERR_IO, errno, "cannot fork to pack the state of '%s'", r->instance);
		goto out;
	}
	close(data[1]);
	close(why[1]);
	data[1] = why[1] = -1;
	e = take_stream(data[0], out, r->cfg.fsize, dest);
	/* Stopped early: the packer may be blocked writing into the pipe, and would hold its message back. */
	close(data[0]);
	data[0] = -1;
	if (e < 0)
		kill(pid, SIGKILL);
	do
		n = read(why[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	msg[n > 0 ? n : 0] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (e == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		e = err_set(ERR_CHILD, "%s", msg[0] ? msg : "the packing process failed");
out:
	for (int i = 0; i < 2; i++) {
		if (data[i] >= 0)
			close(data[i]);
		if (why[i] >= 0)
			close(why[i]);
	}
	close(out);
	return e;
}

static int pack_once(run *r, const char *dest)
{
	struct stat st;
	int e;

	if (r->cfg.drop)
		return pack_as_user(r, dest);
	/* Not root: the agent packs as the object's user already; the same bound after the fact. */
	if ((e = bundle_pack_dir(r->out_dir, dest)) == 0 && r->cfg.fsize && stat(dest, &st) == 0 &&
	    (uint64_t)st.st_size > r->cfg.fsize)
		e = err_set(ERR_LIMIT, "the packed state is larger than %" PRIu64 " bytes", r->cfg.fsize);
	return e;
}

int run_has_state(const run *r)
{
	char *state = fs_join(r->out_dir, "state.json");
	struct stat st;
	int ok = state && lstat(state, &st) == 0 && S_ISREG(st.st_mode);

	free(state);
	return ok;
}

int run_pack_state(run *r, const char *dest)
{
	char *state = fs_join(r->out_dir, "state.json");
	struct stat st;
	int e, missing;

	if (!state) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Only a missing state.json means "no state": one that cannot be read is an error, not an empty result. */
	missing = lstat(state, &st) < 0;
	if (missing && errno != ENOENT) {
		e = err_errno(ERR_IO, errno, "cannot look at '%s'", state);
		goto out;
	}
	if (missing || !S_ISREG(st.st_mode)) {
		e = err_set(ERR_NOTFOUND, "instance '%s' wrote no state.json", r->instance);
		goto out;
	}
	/* After the exit nothing writes out/ any more. */
	if (r->exited) {
		e = pack_once(r, dest);
		goto out;
	}
	/* A running object may start its next checkpoint while this one is packed: then try again. */
	for (int i = 0; i < PACK_TRIES; i++) {
		struct snap before, after;
		snapshot(r->out_dir, &before);
		if (later(&before.newest, &before.state)) {
			e = err_set(ERR_CONFLICT, "instance '%s' is writing its next checkpoint",
				    r->instance);
			usleep(20000);
			continue;
		}
		if ((e = pack_once(r, dest)) < 0)
			goto out;
		snapshot(r->out_dir, &after);
		if (after.hash == before.hash)
			goto out;
		e = err_set(ERR_CONFLICT, "instance '%s' changed its state while it was packed", r->instance);
	}
out:
	if (e < 0)
		err_prefix(e, "cannot pack the state of instance '%s'", r->instance);
	free(state);
	return e;
}

/* Skips to the last LOG_TAIL bytes, noting how much was left out. */
static int skip_to_tail(run *r, struct buf *out, uint64_t *pos)
{
	struct stat st;
	uint64_t size;

	if (fstat(r->log_rd, &st) < 0)
		return err_errno(ERR_IO, errno, "cannot stat the log of instance '%s'", r->instance);
	size = (uint64_t)st.st_size;
	if (size > *pos + LOG_TAIL) {
		uint64_t skipped = size - LOG_TAIL - *pos;
		*pos = size - LOG_TAIL;
		return buf_printf(out, "\n[dispatch: %" PRIu64 " bytes of log left out]\n", skipped);
	}
	return 0;
}

int run_read_log(run *r, struct buf *out, size_t max, int final)
{
	char *chunk = NULL;
	size_t budget, want, use, before = out->len;
	ssize_t n;
	int e = 0;

	if (r->log_rd < 0 || max == 0)
		return 0;
	if (r->log_capped && !final)
		return 0;
	if (r->log_capped == 1) {
		/* Once, at the end: the tail of what was not relayed. */
		if ((e = skip_to_tail(r, out, &r->log_pos)) < 0)
			return e;
		r->log_capped = 2;
	}
	budget = r->log_capped ? LOG_TAIL : LOG_RELAY_MAX - (size_t)r->log_sent;
	want = max < budget ? max : budget;
	if (want > out->cap - out->len)
		want = out->cap - out->len;
	if (want == 0)
		return (int)(out->len - before);
	if (!(chunk = malloc(want))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	do
		n = pread(r->log_rd, chunk, want, (off_t)r->log_pos);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		e = err_errno(ERR_IO, errno, "cannot read the log of instance '%s'", r->instance);
		goto out;
	}
	/* Hold back a character cut in two unless nothing more can come. */
	use = proto_utf8_clean(chunk, (size_t)n, !final || (size_t)n == want);
	if ((e = buf_append(out, chunk, use)) < 0)
		goto out;
	r->log_pos += use;
	if (!r->log_capped) {
		r->log_sent += use;
		if (r->log_sent >= LOG_RELAY_MAX)
			r->log_capped = 1;
	}
	e = (int)(out->len - before);
out:
	free(chunk);
	return e;
}
