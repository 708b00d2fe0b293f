/* fsutil.c - file system helpers. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

int fs_read_file(struct buf *out, const char *path, size_t max)
{
	struct buf b = BUF_INIT(max + 1); /* one more byte tells "too large" from "exactly max" */
	struct stat st;
	int fd, r = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "cannot open '%s'", path);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		r = err_set(ERR_INVALID, "cannot read '%s': is a directory", path);
		goto out;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
		r = err_set(ERR_LIMIT, "'%s' is larger than the limit of %zu bytes", path, max);
		goto out;
	}
	for (;;) {
		if ((r = buf_grow(&b, 65536 < max - b.len ? 65536 : max - b.len + 1)) < 0) {
			if (r == ERR_LIMIT)
				r = err_set(ERR_LIMIT, "'%s' is larger than the limit of %zu bytes", path, max);
			goto out;
		}
		n = read(fd, b.data + b.len, b.alloc - b.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_errno(ERR_IO, errno, "cannot read '%s'", path);
			goto out;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
		if (b.len > max) {
			r = err_set(ERR_LIMIT, "'%s' is larger than the limit of %zu bytes", path, max);
			goto out;
		}
	}
	r = buf_append(out, buf_str(&b), b.len);
out:
	buf_release(&b);
	close(fd);
	return r;
}

int fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot open directory '%s'", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return err_errno(ERR_IO, e, "cannot fsync '%s'", dir);
	}
	close(fd);
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int fs_rename(const char *from, const char *to)
{
	return rename(from, to) < 0 ? err_errno(ERR_IO, errno, "cannot rename '%s' to '%s'", from, to) : 0;
}

int fs_commit(const char *tmp, const char *path)
{
	char *dir;
	int fd, r;

	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot open '%s'", tmp);
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return err_errno(ERR_IO, e, "cannot fsync '%s'", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0)
		return err_errno(ERR_IO, errno, "cannot rename '%s' to '%s'", tmp, path);
	dir = dir_of(path);
	if (!dir)
		return err_set(ERR_NOMEM, "out of memory");
	r = fs_fsync_dir(dir);
	free(dir);
	return r;
}

int fs_write_all(int fd, const void *data, size_t len, const char *name)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(ERR_IO, errno, "cannot write '%s'", name);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes data to the open file fd (named tmp), sets its mode, fsyncs it when sync, closes it. */
static int write_fd(int fd, const char *tmp, const void *data, size_t len, mode_t mode, int sync)
{
	int r = fs_write_all(fd, data, len, tmp);

	if (r == 0 && (fchmod(fd, mode) < 0 || (sync && fsync(fd) < 0)))
		r = err_errno(ERR_IO, errno, "cannot write '%s'", tmp);
	if (close(fd) < 0 && r == 0)
		r = err_errno(ERR_IO, errno, "cannot write '%s'", tmp);
	return r;
}

/* Writes data to a new temporary file next to path; *tmp gets its name. */
static int write_tmp(char tmp[PATH_MAX], const char *path, const void *data, size_t len, mode_t mode, int sync)
{
	int fd, r;

	if (snprintf(tmp, PATH_MAX, "%s.tmp.XXXXXX", path) >= PATH_MAX)
		return err_set(ERR_INVALID, "path too long: '%s'", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot create a file next to '%s'", path);
	if ((r = write_fd(fd, tmp, data, len, mode, sync)) < 0)
		unlink(tmp);
	return r;
}

int fs_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot open '%s'", path);
	return write_fd(fd, path, data, len, mode, 0);
}

/* Writes a temporary file beside path and renames it over path (durable: both fsynced first). */
static int write_renamed(const char *path, const void *data, size_t len, mode_t mode, int durable)
{
	char tmp[PATH_MAX];
	int r;

	if ((r = write_tmp(tmp, path, data, len, mode, durable)) < 0)
		return r;
	if ((r = fs_rename(tmp, path)) < 0)
		unlink(tmp);
	return r;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *dir;
	int r;

	if ((r = write_renamed(path, data, len, mode, 1)) < 0)
		return r;
	if (!(dir = dir_of(path)))
		return err_set(ERR_NOMEM, "out of memory");
	r = fs_fsync_dir(dir);
	free(dir);
	return r;
}

int fs_write_renamed(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_renamed(path, data, len, mode, 0);
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len == 0 || len >= sizeof(tmp))
		return err_set(ERR_INVALID, "bad directory path '%s'", path);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0; /* the common case: one call, not one per component */
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return err_errno(ERR_IO, errno, "cannot create directory '%s'", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return err_errno(ERR_IO, errno, "cannot create directory '%s'", tmp);
	return 0;
}

/*
 * rm -rf through directory descriptors: every entry is removed with
 * unlinkat() relative to its parent's descriptor, and a directory is
 * entered with openat(O_NOFOLLOW), checked to be on the same file system.
 * So nothing in the tree can lead the removal out of it, even while
 * someone renames directories or swaps them for symlinks meanwhile (root
 * removes trees that unprivileged objects wrote): an entry that changes
 * under it is tried again, a few times. Directories deeper than RM_DEPTH
 * are moved up to the top (renameat2, never over anything) and removed
 * from there, so neither the stack nor the descriptors grow with the
 * depth. A tree that someone keeps growing is given up after RM_BUDGET_S
 * (ERR_LIMIT): a caller that retries later is not held up meanwhile.
 */
#define RM_DEPTH 32
#define RM_TRIES 8
#define RM_BUDGET_S 1.0

struct rm {
	const char *top; /* for messages */
	int topfd;
	dev_t dev;
	unsigned moved;	 /* names for directories moved up */
	int again;	 /* something was moved up: the top needs another pass */
	unsigned seen;	 /* entries, for a look at the clock now and then */
	double deadline; /* CLOCK_MONOTONIC */
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Makes the directory name (in dfd) readable and writable for its owner, through the directory itself. */
static int rm_unlock(int dfd, const char *name)
{
	int pfd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), ok;
	char proc[64];

	if (pfd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	ok = chmod(proc, 0700);
	close(pfd);
	return ok;
}

/* Opens the directory name in dfd: its descriptor, ERR_NOTFOUND when it is gone, ERR_CONFLICT when it is
 * no directory any more, or another error. */
static int rm_enter(struct rm *x, int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	/* Not readable by an unprivileged remover: made so. */
	if (fd < 0 && errno == EACCES && rm_unlock(dfd, name) == 0)
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT			 ? ERR_NOTFOUND
		       : errno == ELOOP || errno == ENOTDIR ? ERR_CONFLICT
		       : dfd == AT_FDCWD			 ? err_errno(ERR_IO, errno, "cannot open '%s'", name)
							 : err_errno(ERR_IO, errno, "cannot open '%s/.../%s'", x->top, name);
	if (fstat(fd, &st) < 0 || st.st_dev != x->dev) {
		close(fd);
		return err_set(ERR_IO, "cannot remove '%s': '%s' is on another file system", x->top, name);
	}
	return fd;
}

/* Moves the directory name (in dfd) up to the top under a new name. */
static int rm_move_up(struct rm *x, int dfd, const char *name)
{
	char up[32];

	for (int unlocked = 0;;) {
		snprintf(up, sizeof(up), ".rm-%u", x->moved++);
		if (renameat2(dfd, name, x->topfd, up, RENAME_NOREPLACE) == 0 || errno == ENOENT)
			break;
		if (errno == EACCES && !unlocked && rm_unlock(dfd, name) == 0) {
			unlocked = 1; /* moving a directory rewrites its "..": it must be writable */
			continue;
		}
		if (errno != EEXIST || x->moved > 1000000)
			return err_errno(ERR_IO, errno, "cannot move '%s/.../%s' up", x->top, name);
	}
	x->again = 1;
	return 0;
}

static int rm_dir(struct rm *x, int fd, int depth);

/* Removes the entry name of the directory open at dfd, whatever it is and whatever it becomes meanwhile. */
static int rm_entry(struct rm *x, int dfd, const char *name, int depth)
{
	int sub, r;

	for (int tries = 0; tries < RM_TRIES; tries++) {
		if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
			return 0;
		if (errno != EISDIR && errno != EPERM)
			return err_errno(ERR_IO, errno, "cannot remove '%s/.../%s'", x->top, name);
		if (depth >= RM_DEPTH)
			return rm_move_up(x, dfd, name);
		if ((sub = rm_enter(x, dfd, name)) == ERR_NOTFOUND)
			return 0;
		if (sub == ERR_CONFLICT) /* swapped for a link or a file: unlink that */
			continue;
		if (sub < 0)
			return sub;
		if ((r = rm_dir(x, sub, depth + 1)) < 0)
			return r;
		if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ENOTEMPTY) /* else swapped, or filled again: once more */
			return err_errno(ERR_IO, errno, "cannot remove '%s/.../%s'", x->top, name);
	}
	return err_set(ERR_CONFLICT, "cannot remove '%s/.../%s': it keeps changing", x->top, name);
}

/* Empties the directory open at fd (closed here). */
static int rm_dir(struct rm *x, int fd, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	int r = 0;

	if (!d) {
		r = err_errno(ERR_IO, errno, "cannot read '%s'", x->top);
		close(fd);
		return r;
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((++x->seen & 63) == 0 && mono_s() > x->deadline)
			r = err_set(ERR_LIMIT, "cannot remove '%s' within %.0f s: it keeps growing", x->top, RM_BUDGET_S);
		else
			r = rm_entry(x, dirfd(d), e->d_name, depth);
	}
	closedir(d);
	return r;
}

int fs_rm_rf(const char *path)
{
	struct rm x = {.top = path, .deadline = mono_s() + RM_BUDGET_S};
	struct stat st, top;
	int r = 0, fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_errno(ERR_IO, errno, "cannot stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? err_errno(ERR_IO, errno, "cannot remove '%s'", path) : 0;
	x.dev = st.st_dev;
	if ((x.topfd = rm_enter(&x, AT_FDCWD, path)) < 0)
		return x.topfd == ERR_NOTFOUND ? 0
		       : x.topfd == ERR_CONFLICT ? err_set(ERR_CONFLICT, "cannot remove '%s': it was replaced meanwhile", path)
						 : x.topfd;
	/* The directory that was looked at, not one put in its place since. */
	if (fstat(x.topfd, &top) < 0 || top.st_ino != st.st_ino) {
		close(x.topfd);
		return err_set(ERR_CONFLICT, "cannot remove '%s': it was replaced meanwhile", path);
	}
	/* A pass per round of directories moved up; each round removes RM_DEPTH levels. */
	do {
		x.again = 0;
		if ((fd = dup(x.topfd)) < 0) {
			r = err_errno(ERR_IO, errno, "cannot remove '%s'", path);
			break;
		}
		lseek(fd, 0, SEEK_SET);
		r = rm_dir(&x, fd, 0);
	} while (r == 0 && x.again);
	close(x.topfd);
	if (r == 0 && rmdir(path) < 0 && errno != ENOENT)
		r = err_errno(ERR_IO, errno, "cannot remove '%s'", path);
	return r;
}

int fs_copy_file(const char *from, const char *to)
{
	char chunk[1 << 16];
	struct stat st;
	int in, out = -1, r = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return err_errno(ERR_IO, errno, "cannot open '%s'", from);
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = err_set(ERR_INVALID, "'%s' is not a regular file", from);
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 0777);
	if (out < 0) {
		r = err_errno(ERR_IO, errno, "cannot create '%s'", to);
		goto out;
	}
	while ((n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_errno(ERR_IO, errno, "cannot read '%s'", from);
			goto out;
		}
		if ((r = fs_write_all(out, chunk, (size_t)n, to)) < 0)
			goto out;
	}
	fchmod(out, st.st_mode & 0777);
out:
	if (out >= 0)
		close(out);
	close(in);
	return r;
}

int fs_copy_tree(const char *from, const char *to)
{
	struct stat st;
	DIR *d = NULL;
	struct dirent *e;
	int r = 0;

	if (lstat(from, &st) < 0)
		return err_errno(ERR_IO, errno, "cannot stat '%s'", from);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(from, target, sizeof(target) - 1);
		if (n < 0)
			return err_errno(ERR_IO, errno, "cannot read link '%s'", from);
		target[n] = '\0';
		if (symlink(target, to) < 0)
			return err_errno(ERR_IO, errno, "cannot create link '%s'", to);
		return 0;
	}
	if (S_ISREG(st.st_mode))
		return fs_copy_file(from, to);
	if (!S_ISDIR(st.st_mode))
		return 0; /* sockets, fifos and devices are not part of a source tree */
	if (mkdir(to, (st.st_mode & 0777) | 0700) < 0 && errno != EEXIST)
		return err_errno(ERR_IO, errno, "cannot create directory '%s'", to);
	d = opendir(from);
	if (!d)
		return err_errno(ERR_IO, errno, "cannot read directory '%s'", from);
	while ((e = readdir(d)) != NULL) {
		char *a, *b;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		a = fs_join(from, e->d_name);
		b = fs_join(to, e->d_name);
		if (!a || !b)
			r = err_set(ERR_NOMEM, "out of memory");
		else
			r = fs_copy_tree(a, b);
		free(a);
		free(b);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

int fs_chown_tree(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (lchown(path, uid, gid) < 0)
		return err_errno(ERR_IO, errno, "cannot change the owner of '%s'", path);
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	d = opendir(path);
	if (!d)
		return err_errno(ERR_IO, errno, "cannot read directory '%s'", path);
	while ((e = readdir(d)) != NULL && r == 0) {
		char *sub;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sub = fs_join(path, e->d_name);
		r = sub ? fs_chown_tree(sub, uid, gid) : err_set(ERR_NOMEM, "out of memory");
		free(sub);
	}
	closedir(d);
	return r;
}

int fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int fs_mkdtemp(char **out, const char *base, const char *prefix)
{
	char *p;
	size_t n = strlen(base) + strlen(prefix) + 9;

	p = malloc(n);
	if (!p)
		return err_set(ERR_NOMEM, "out of memory");
	snprintf(p, n, "%s/%s-XXXXXX", base, prefix);
	if (!mkdtemp(p)) {
		int e = errno;
		free(p);
		return err_errno(ERR_IO, e, "cannot create a directory in '%s'", base);
	}
	*out = p;
	return 0;
}

char *fs_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p;

	while (la > 1 && a[la - 1] == '/')
		la--;
	p = malloc(la + lb + 2);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

int fs_rel_is_safe(const char *rel)
{
	const char *p = rel;

	if (!rel || !*rel || *rel == '/')
		return 0;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		if (!slash)
			break;
		p = slash + 1;
	}
	return 1;
}

int fs_lock_file(int *fd, const char *path)
{
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600), r = 0;

	if (f < 0)
		return err_errno(ERR_IO, errno, "cannot open '%s'", path);
	if (flock(f, LOCK_EX | LOCK_NB) < 0)
		r = errno == EWOULDBLOCK ? err_set(ERR_EXISTS, "'%s' is locked by another process", path)
					 : err_errno(ERR_IO, errno, "cannot lock '%s'", path);
	if (r < 0) {
		close(f);
		return r;
	}
	*fd = f;
	return 0;
}
