/* store.c - an LRU-bounded cas for the agent. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas.h"
#include "error.h"
#include "fsutil.h"

struct entry {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t size;
	uint64_t tick;	       /* larger: used more recently */
	struct timespec mtime; /* only while loading */
};

struct pin {
	char digest[DIGEST_HEX_LEN + 1];
	unsigned count;
};

struct store {
	cas *cas;
	uint64_t max, total, tick;
	struct entry *e;
	size_t n, alloc;
	struct pin *p;
	size_t np, palloc;
};

static void evict(store *s, const char *keep);

static struct entry *find(store *s, const char *digest)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->e[i].digest, digest))
			return &s->e[i];
	return NULL;
}

static struct pin *find_pin(store *s, const char *digest)
{
	for (size_t i = 0; i < s->np; i++)
		if (!strcmp(s->p[i].digest, digest))
			return &s->p[i];
	return NULL;
}

static int grow(void **v, size_t *alloc, size_t n, size_t size)
{
	size_t want = *alloc ? *alloc * 2 : 16;
	void *nv;

	if (n < *alloc)
		return 0;
	nv = realloc(*v, want * size);
	if (!nv)
		return err_set(ERR_NOMEM, "out of memory");
	*v = nv;
	*alloc = want;
	return 0;
}

static int add(store *s, const char *digest, uint64_t size, const struct timespec *mtime)
{
	struct entry *e;
	int r;

	if ((r = grow((void **)&s->e, &s->alloc, s->n, sizeof(*s->e))) < 0)
		return r;
	e = &s->e[s->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->digest, digest, DIGEST_HEX_LEN + 1);
	e->size = size;
	e->tick = ++s->tick;
	if (mtime)
		e->mtime = *mtime;
	s->total += size;
	return 0;
}

/* Marks a blob used, in memory and (for the next start) in its mtime. */
static void touch(store *s, struct entry *e)
{
	char *path = cas_path(s->cas, e->digest);

	e->tick = ++s->tick;
	if (path)
		utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);
	free(path);
}

static int cmp_mtime(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return 0;
}

/* Indexes ROOT/sha256/xx/<digest>, oldest first. */
static int load(store *s, const char *dir)
{
	char *objs = fs_join(dir, "sha256");
	DIR *top = NULL, *sub;
	struct dirent *d, *f;
	struct stat st;
	int r = 0;

	if (!objs)
		return err_set(ERR_NOMEM, "out of memory");
	top = opendir(objs);
	if (!top) {
		r = err_errno(ERR_IO, errno, "cannot read '%s'", objs);
		goto out;
	}
	while (r == 0 && (d = readdir(top)) != NULL) {
		int fd;
		if (strlen(d->d_name) != 2 || d->d_name[0] == '.')
			continue;
		fd = openat(dirfd(top), d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		sub = fd >= 0 ? fdopendir(fd) : NULL;
		if (!sub) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while (r == 0 && (f = readdir(sub)) != NULL)
			if (digest_is_valid(f->d_name) &&
			    fstatat(dirfd(sub), f->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				r = add(s, f->d_name, (uint64_t)st.st_size, &st.st_mtim);
		closedir(sub);
	}
	if (r == 0 && s->n > 1)
		qsort(s->e, s->n, sizeof(*s->e), cmp_mtime);
	for (size_t i = 0; i < s->n; i++)
		s->e[i].tick = i + 1;
	s->tick = s->n;
out:
	if (top)
		closedir(top);
	free(objs);
	return r;
}

/* Removes what an earlier run left half-written. */
static void clean_tmp(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

int store_open(store **out, const char *dir, uint64_t max_bytes)
{
	store *s = calloc(1, sizeof(*s));
	char *corrupt = NULL;
	int r;

	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	s->max = max_bytes;
	if ((r = fs_mkdir_p(dir, 0700)) < 0 || (r = cas_open(&s->cas, dir)) < 0)
		goto out;
	clean_tmp(cas_tmpdir(s->cas));
	if (!(corrupt = fs_join(dir, "corrupt"))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	clean_tmp(corrupt); /* blobs cas_verify() moved aside: nobody needs them */
	if ((r = load(s, dir)) < 0)
		goto out;
	store_evict(s);
	*out = s;
	s = NULL;
out:
	free(corrupt);
	store_free(s);
	return r;
}

void store_free(store *s)
{
	if (!s)
		return;
	cas_free(s->cas);
	free(s->e);
	free(s->p);
	free(s);
}

const char *store_tmpdir(const store *s)
{
	return cas_tmpdir(s->cas);
}

char *store_path(const store *s, const char *digest)
{
	return cas_path(s->cas, digest);
}

int store_has(store *s, const char *digest)
{
	struct entry *e = find(s, digest);

	if (!e || !cas_has(s->cas, digest))
		return 0;
	touch(s, e);
	return 1;
}

int store_adopt(store *s, digest_hex *out, const char *tmp, const char *expect)
{
	digest_hex d;
	struct entry *e;
	struct stat st;
	char *path = NULL;
	int r, existed;

	if ((r = cas_adopt(s->cas, &d, tmp)) < 0)
		return r;
	e = find(s, d.hex);
	existed = e != NULL;
	if (expect && strcmp(d.hex, expect) != 0) {
		if (!existed) {
			path = cas_path(s->cas, d.hex);
			if (path)
				unlink(path);
			free(path);
		}
		return err_set(ERR_CORRUPT, "blob %.12s is corrupt: its content hashes to %.12s", expect,
			       d.hex);
	}
	if (!e) {
		path = cas_path(s->cas, d.hex);
		if (!path)
			return err_set(ERR_NOMEM, "out of memory");
		r = stat(path, &st) < 0 ? err_errno(ERR_IO, errno, "cannot stat '%s'", path)
					: add(s, d.hex, (uint64_t)st.st_size, NULL);
		free(path);
		if (r < 0)
			return r;
		e = find(s, d.hex);
	}
	touch(s, e);
	/* The newcomer is about to be used: it stays even when it alone is above the cap. */
	evict(s, d.hex);
	if (out)
		*out = d;
	return 0;
}

int store_verify(store *s, const char *digest)
{
	struct entry *e = find(s, digest);
	int r = cas_verify(s->cas, digest, NULL);

	if (r < 0 && e && r != ERR_NOMEM && r != ERR_IO) {
		s->total -= e->size;
		*e = s->e[--s->n];
	}
	return r;
}

int store_pin(store *s, const char *digest)
{
	struct pin *p = find_pin(s, digest);
	int r;

	if (!p) {
		if ((r = grow((void **)&s->p, &s->palloc, s->np, sizeof(*s->p))) < 0)
			return r;
		p = &s->p[s->np++];
		memset(p, 0, sizeof(*p));
		memcpy(p->digest, digest, strnlen(digest, DIGEST_HEX_LEN));
	}
	p->count++;
	return 0;
}

void store_unpin(store *s, const char *digest)
{
	struct pin *p = find_pin(s, digest);

	if (!p)
		return;
	if (--p->count == 0)
		*p = s->p[--s->np];
	store_evict(s);
}

void store_evict(store *s)
{
	evict(s, NULL);
}

/* Deletes least recently used blobs, never a pinned one nor keep, until the total fits. */
static void evict(store *s, const char *keep)
{
	while (s->total > s->max) {
		struct entry *victim = NULL;
		char *path;

		for (size_t i = 0; i < s->n; i++)
			if (!find_pin(s, s->e[i].digest) && (!keep || strcmp(s->e[i].digest, keep)) &&
			    (!victim || s->e[i].tick < victim->tick))
				victim = &s->e[i];
		if (!victim)
			return; /* everything left is in use */
		path = cas_path(s->cas, victim->digest);
		if (path)
			unlink(path);
		free(path);
		s->total -= victim->size;
		*victim = s->e[--s->n];
	}
}

uint64_t store_size(const store *s)
{
	return s->total;
}

size_t store_count(const store *s)
{
	return s->n;
}
