/* cas.c - content-addressed blob store. */
#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"

struct cas {
	char *root;
	char *tmp;
	int cache; /* cas_set_cache(): no fsyncs */
};

void cas_set_cache(cas *c)
{
	c->cache = 1;
}

int cas_open(cas **out, const char *root)
{
	cas *c = calloc(1, sizeof(*c));
	char *objs = NULL, *bad = NULL;
	int r;

	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	c->root = strdup(root);
	c->tmp = fs_join(root, "tmp");
	objs = fs_join(root, "sha256");
	bad = fs_join(root, "corrupt");
	if (!c->root || !c->tmp || !objs || !bad) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = fs_mkdir_p(c->tmp, 0755)) < 0 || (r = fs_mkdir_p(objs, 0755)) < 0 ||
	    (r = fs_mkdir_p(bad, 0755)) < 0)
		goto out;
	*out = c;
	c = NULL;
out:
	free(objs);
	free(bad);
	cas_free(c);
	return r;
}

void cas_free(cas *c)
{
	if (!c)
		return;
	free(c->root);
	free(c->tmp);
	free(c);
}

const char *cas_tmpdir(const cas *c)
{
	return c->tmp;
}

char *cas_path(const cas *c, const char *digest)
{
	size_t n = strlen(c->root) + 80;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/sha256/%.2s/%s", c->root, digest, digest);
	return p;
}

int cas_has(const cas *c, const char *digest)
{
	char *p;
	int ok;

	if (!digest_is_valid(digest))
		return 0;
	p = cas_path(c, digest);
	ok = p && access(p, F_OK) == 0;
	free(p);
	return ok;
}

int cas_adopt(cas *c, digest_hex *out, const char *tmp_path)
{
	digest_hex d;
	char *dst = NULL, *dir = NULL;
	int r;

	if ((r = digest_file(&d, tmp_path, NULL)) < 0)
		goto out;
	dst = cas_path(c, d.hex);
	dir = dst ? strndup(dst, strlen(dst) - DIGEST_HEX_LEN - 1) : NULL;
	if (!dst || !dir) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = fs_mkdir_p(dir, 0755)) < 0)
		goto out;
	/*
	 * Same content already stored: keep the existing blob, which was fsynced. A cache fsyncs
	 * nothing, so its copy may be one a crash tore: the new one replaces it (same content when
	 * both are whole, and the rename is atomic).
	 */
	if (!c->cache && access(dst, F_OK) == 0) {
		*out = d;
		goto out;
	}
	chmod(tmp_path, 0444);
	if ((r = c->cache ? fs_rename(tmp_path, dst) : fs_commit(tmp_path, dst)) < 0)
		goto out;
	*out = d;
out:
	unlink(tmp_path); /* a no-op after a successful rename */
	free(dst);
	free(dir);
	return r;
}

static int tmp_file(cas *c, char **path, int *fd)
{
	size_t n = strlen(c->tmp) + 16;
	char *p = malloc(n);

	if (!p)
		return err_set(ERR_NOMEM, "out of memory");
	snprintf(p, n, "%s/blob-XXXXXX", c->tmp);
	*fd = mkostemp(p, O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		free(p);
		return err_errno(ERR_IO, e, "cannot create a file in '%s'", c->tmp);
	}
	*path = p;
	return 0;
}

int cas_put_buf(cas *c, digest_hex *out, const void *data, size_t len)
{
	const char *p = data;
	char *tmp = NULL;
	int fd = -1, r;

	if ((r = tmp_file(c, &tmp, &fd)) < 0)
		return r;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_errno(ERR_IO, errno, "cannot write '%s'", tmp);
			unlink(tmp);
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
	fd = -1;
	r = cas_adopt(c, out, tmp);
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	return r;
}

int cas_put_file(cas *c, digest_hex *out, const char *path)
{
	char *tmp = NULL;
	int fd = -1, r;

	if ((r = tmp_file(c, &tmp, &fd)) < 0)
		return r;
	close(fd);
	if ((r = fs_copy_file(path, tmp)) < 0) {
		unlink(tmp);
		goto out;
	}
	r = cas_adopt(c, out, tmp);
out:
	free(tmp);
	return r;
}

/*
 * The blobs this process verified, direct-mapped by inode. An entry holds
 * when the file's identity and times are what they were when it was
 * hashed; a file changed within the last second is not remembered, since
 * a write in the same clock tick could leave its times as they were.
 */
#define MEMO_SLOTS 1024

struct memo {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char digest[DIGEST_HEX_LEN + 1];
};

static struct memo memo[MEMO_SLOTS];
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static double age(const struct timespec *now, const struct timespec *t)
{
	return (double)(now->tv_sec - t->tv_sec) + (double)(now->tv_nsec - t->tv_nsec) / 1e9;
}

static int memo_holds(const struct stat *st, const char *digest)
{
	const struct memo *m = &memo[st->st_ino % MEMO_SLOTS];
	int hit;

	pthread_mutex_lock(&memo_lock);
	hit = m->ino == st->st_ino && m->dev == st->st_dev && m->size == st->st_size &&
	      same_time(&m->mtime, &st->st_mtim) && same_time(&m->ctime, &st->st_ctim) && !strcmp(m->digest, digest);
	pthread_mutex_unlock(&memo_lock);
	return hit;
}

static void memo_remember(const struct stat *st, const char *digest)
{
	struct memo *m = &memo[st->st_ino % MEMO_SLOTS];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (age(&now, &st->st_ctim) < 1.0 || age(&now, &st->st_mtim) < 1.0)
		return;
	pthread_mutex_lock(&memo_lock);
	*m = (struct memo){ .dev = st->st_dev, .ino = st->st_ino, .size = st->st_size, .mtime = st->st_mtim,
			    .ctime = st->st_ctim };
	memcpy(m->digest, digest, sizeof(m->digest));
	pthread_mutex_unlock(&memo_lock);
}

int cas_verify(cas *c, const char *digest, uint64_t *size)
{
	struct stat st;
	digest_hex d;
	uint64_t n = 0;
	char *p = NULL;
	int r, fd;

	if (!digest_is_valid(digest))
		return err_set(ERR_INVALID, "'%s' is not a sha256 digest", digest);
	p = cas_path(c, digest);
	if (!p)
		return err_set(ERR_NOMEM, "out of memory");
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "cannot open '%s'", p);
	} else if (fstat(fd, &st) < 0) {
		r = err_errno(ERR_IO, errno, "cannot stat '%s'", p);
	} else if (memo_holds(&st, digest)) {
		n = (uint64_t)st.st_size;
		r = 0;
		memcpy(d.hex, digest, sizeof(d.hex));
	} else if ((r = digest_fd(&d, fd, p, &n)) == 0 && !strcmp(d.hex, digest)) {
		memo_remember(&st, digest);
	}
	if (fd >= 0)
		close(fd);
	if (r == 0 && strcmp(d.hex, digest) != 0) {
		char aside[4096];
		snprintf(aside, sizeof(aside), "%s/corrupt/%s", c->root, digest);
		rename(p, aside);
		r = err_set(ERR_CORRUPT, "blob %.12s is corrupt: its content hashes to %.12s", digest,
			    d.hex);
	} else if (r == ERR_NOTFOUND) {
		r = err_set(ERR_NOTFOUND, "blob %.12s is not in the store", digest);
	}
	if (r == 0 && size)
		*size = n;
	free(p);
	return r;
}
