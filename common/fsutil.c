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
#include <sys/stat.h>
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

/* Writes data to the open file fd (named tmp), sets its mode, fsyncs it when sync, closes it. */
static int write_fd(int fd, const char *tmp, const void *data, size_t len, mode_t mode, int sync)
{
	const char *p = data;
	int r = 0;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_errno(ERR_IO, errno, "cannot write '%s'", tmp);
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || (sync && fsync(fd) < 0))
		r = err_errno(ERR_IO, errno, "cannot write '%s'", tmp);
out:
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
	if (rename(tmp, path) < 0) {
		r = err_errno(ERR_IO, errno, "cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
	}
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

	if (len == 0 || len >= sizeof(tmp))
		return err_set(ERR_INVALID, "bad directory path '%s'", path);
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
 * removes trees that unprivileged objects wrote). Directories deeper than
 * RM_DEPTH are moved up to the top (renameat) and removed from there, so
 * neither the stack nor the descriptors grow with the depth.
 */
#define RM_DEPTH 32

struct rm {
	const char *top; /* for messages */
	int topfd;
	dev_t dev;
	unsigned moved; /* names for directories moved up */
	int again;	/* something was moved up: the top needs another pass */
};

static int rm_enter(struct rm *x, int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char proc[64];

	if (fd < 0 && errno == EACCES) {
		/* Not readable by an unprivileged remover: made so through the directory itself, not its name. */
		int pfd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (pfd >= 0) {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
			if (chmod(proc, 0700) == 0)
				fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			close(pfd);
		}
	}
	if (fd < 0)
		return errno == ENOENT ? ERR_NOTFOUND : err_errno(ERR_IO, errno, "cannot open '%s/.../%s'", x->top, name);
	if (fstat(fd, &st) < 0 || st.st_dev != x->dev) {
		close(fd);
		return err_set(ERR_IO, "cannot remove '%s': '%s' is on another file system", x->top, name);
	}
	return fd;
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
		int sub;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			r = err_errno(ERR_IO, errno, "cannot remove '%s/.../%s'", x->top, e->d_name);
			break;
		}
		if (depth >= RM_DEPTH) {
			char up[32];
			int moved;
			do {
				snprintf(up, sizeof(up), ".rm-%u", x->moved++);
				moved = renameat(dirfd(d), e->d_name, x->topfd, up) == 0;
			} while (!moved && (errno == EEXIST || errno == ENOTEMPTY) && x->moved < 100000);
			if (!moved && errno != ENOENT)
				r = err_errno(ERR_IO, errno, "cannot move '%s/.../%s' up", x->top, e->d_name);
			x->again = 1;
			continue;
		}
		if ((sub = rm_enter(x, dirfd(d), e->d_name)) == ERR_NOTFOUND) /* removed meanwhile */
			continue;
		if (sub < 0 || (r = rm_dir(x, sub, depth + 1)) < 0) {
			r = sub < 0 ? sub : r;
			break;
		}
		if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			r = err_errno(ERR_IO, errno, "cannot remove '%s/.../%s'", x->top, e->d_name);
	}
	closedir(d);
	return r;
}

int fs_rm_rf(const char *path)
{
	struct rm x = {.top = path};
	struct stat st;
	int r = 0, fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_errno(ERR_IO, errno, "cannot stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? err_errno(ERR_IO, errno, "cannot remove '%s'", path) : 0;
	x.dev = st.st_dev;
	if ((x.topfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : err_errno(ERR_IO, errno, "cannot open '%s'", path);
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
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, chunk + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				r = err_errno(ERR_IO, errno, "cannot write '%s'", to);
				goto out;
			}
			off += w;
		}
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
