/* store.c - an LRU-bounded cas for the agent. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cas.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"

struct entry {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t size;	       /* the blob's, 0 while only its tree is there */
	uint64_t tree;	       /* its unpacked tree's, 0: none */
	uint64_t tick;	       /* larger: used more recently */
	struct timespec mtime; /* only while loading */
};

struct pin {
	char digest[DIGEST_HEX_LEN + 1];
	unsigned count;
};

struct store {
	cas *cas;
	char *trees; /* where artifacts are unpacked, NULL: not set */
	uint64_t max, total, tick;
	struct entry *e;
	size_t n, alloc;
	struct pin *p;
	size_t np, palloc;
};

static void evict(store *s, const char *keep);
static void remove_tree(store *s, struct entry *e);

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
	/* Every blob is verified before it is used (store_verify()), and its durable copy is the dispatcher's. */
	cas_set_cache(s->cas);
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
	free(s->trees);
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
	/* Its size as stored now: new, a tree's whose blob was gone, or a torn copy's that this replaced. */
	path = cas_path(s->cas, d.hex);
	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	r = stat(path, &st) < 0 ? err_errno(ERR_IO, errno, "cannot stat '%s'", path)
	    : e		     ? 0
			     : add(s, d.hex, (uint64_t)st.st_size, NULL);
	free(path);
	if (r < 0)
		return r;
	if (e && e->size != (uint64_t)st.st_size) {
		s->total = s->total - e->size + (uint64_t)st.st_size;
		e->size = (uint64_t)st.st_size;
	}
	e = find(s, d.hex);
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
		remove_tree(s, e);
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
		remove_tree(s, victim);
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

/* ---- unpacked trees ---- */

static char *tree_path(const store *s, const char *digest)
{
	return fs_join(s->trees, digest);
}

static void remove_tree(store *s, struct entry *e)
{
	char *path;

	if (!s->trees || !e->tree)
		return;
	path = tree_path(s, e->digest);
	if (path)
		fs_rm_rf(path);
	free(path);
	s->total -= e->tree;
	e->tree = 0;
}

/* nftw() has no user pointer: the walk's state, for the main thread's one walk at a time. */
static uint64_t walk_bytes;
static int walk_seal, walk_failed;

/* Adds up a tree's bytes and, when sealing, takes every write bit away from its files. */
static int walk_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F) {
		walk_bytes += (uint64_t)st->st_size;
		if (walk_seal && chmod(path, (st->st_mode & 0555) | 0444) < 0)
			walk_failed = errno;
	} else if (type == FTW_D) {
		if (walk_seal && chmod(path, 0755) < 0)
			walk_failed = errno;
	} else if (type == FTW_DNR || type == FTW_NS) {
		walk_failed = EACCES;
	}
	return 0;
}

static int walk(const char *dir, int seal, uint64_t *bytes)
{
	walk_bytes = 0;
	walk_seal = seal;
	walk_failed = 0;
	if (nftw(dir, walk_entry, 16, FTW_PHYS) < 0)
		return err_errno(ERR_IO, errno, "cannot walk '%s'", dir);
	if (walk_failed)
		return err_errno(ERR_IO, walk_failed, "cannot seal '%s'", dir);
	*bytes = walk_bytes;
	return 0;
}

const char *store_boot_id(void)
{
	static char id[64];
	struct buf b = BUF_INIT(sizeof(id));

	if (!id[0] && fs_read_file(&b, "/proc/sys/kernel/random/boot_id", sizeof(id) - 1) == 0)
		snprintf(id, sizeof(id), "%.*s", (int)strcspn(buf_str(&b), "\n"), buf_str(&b));
	buf_release(&b);
	return id;
}

#define BOOT_FILE ".boot"

enum boot_match { BOOT_OTHER, BOOT_SAME, BOOT_UNRECORDED };

/*
 * Whether the trees in dir are of this boot: dir/.boot says so (BOOT_SAME)
 * or names another (BOOT_OTHER); without a dir/.boot (an agent from before
 * it, or none yet) BOOT_UNRECORDED. An unknown boot ("") trusts no tree.
 */
static int same_boot(const char *dir, const char *boot, char **file)
{
	struct buf b = BUF_INIT(128);
	int m, r;

	if (!(*file = fs_join(dir, BOOT_FILE)))
		return err_set(ERR_NOMEM, "out of memory");
	r = fs_read_file(&b, *file, 127);
	m = !*boot			       ? BOOT_OTHER
	    : r == ERR_NOTFOUND		       ? BOOT_UNRECORDED
	    : r == 0 && !strcmp(buf_str(&b), boot) ? BOOT_SAME
						   : BOOT_OTHER;
	buf_release(&b);
	return m;
}

/* When this boot began (/proc/stat btime), 0 when unknown. */
static time_t boot_time(void)
{
	struct buf b = BUF_INIT(1 << 16);
	const char *p;
	long long t = 0;

	if (fs_read_file(&b, "/proc/stat", 1 << 16) == 0 && (p = strstr(buf_str(&b), "\nbtime ")) != NULL)
		t = strtoll(p + 7, NULL, 10);
	buf_release(&b);
	return (time_t)t;
}

/*
 * Whether a tree may be kept. Without a record of its boot, one unpacked
 * since this boot began is kept (an upgrade restarts the agent under the
 * running objects that use it); one from before may be torn and goes.
 */
static int tree_of_this_boot(int match, const char *path, time_t since)
{
	struct stat st;

	if (match != BOOT_UNRECORDED)
		return match == BOOT_SAME;
	return since > 0 && lstat(path, &st) == 0 && st.st_mtim.tv_sec >= since;
}

int store_set_trees(store *s, const char *dir, const char *boot)
{
	struct dirent *d;
	DIR *top = NULL;
	char *path = NULL, *boot_file = NULL;
	int r, match, left = 0;
	time_t since = 0;

	if (s->trees)
		return err_set(ERR_EXISTS, "the store has its trees already");
	if ((r = fs_mkdir_p(dir, 0711)) < 0)
		return r;
	if (chmod(dir, 0711) < 0)
		return err_errno(ERR_IO, errno, "cannot chmod '%s'", dir);
	if (!(s->trees = strdup(dir)))
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = match = same_boot(dir, boot ? boot : "", &boot_file)) < 0)
		goto out;
	if (match == BOOT_UNRECORDED)
		since = boot_time();
	if (!(top = opendir(dir))) {
		r = err_errno(ERR_IO, errno, "cannot read '%s'", dir);
		goto out;
	}
	r = 0;
	while ((d = readdir(top)) != NULL) {
		struct entry *e;
		uint64_t bytes;

		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..") || !strcmp(d->d_name, BOOT_FILE))
			continue;
		free(path);
		if (!(path = fs_join(dir, d->d_name))) {
			r = err_set(ERR_NOMEM, "out of memory");
			break;
		}
		/* Another boot's, an unpacking that did not finish, or something that is not a tree. */
		if (!tree_of_this_boot(match, path, since) || !digest_is_valid(d->d_name) || walk(path, 0, &bytes) < 0) {
			if (fs_rm_rf(path) < 0) {
				log_warn("%s", err_msg());
				left = 1;
			}
			continue;
		}
		if (!(e = find(s, d->d_name))) {
			if ((r = add(s, d->d_name, 0, NULL)) < 0)
				break;
			e = find(s, d->d_name);
			e->tick = 0; /* first to go, unless a run pins it */
		}
		e->tree = bytes;
		s->total += bytes;
	}
	closedir(top);
	/* Written after the trees went (all of them: one left would be trusted): a crash in between removes them
	 * again. */
	if (r == 0 && !left && match != BOOT_SAME)
		r = fs_write_renamed(boot_file, boot ? boot : "", strlen(boot ? boot : ""), 0644);
out:
	free(path);
	free(boot_file);
	return r;
}

const char *store_tree_dir(const store *s)
{
	return s->trees;
}

int store_has_tree(store *s, const char *digest)
{
	struct entry *e = find(s, digest);
	char *path;
	int ok;

	if (!e || !e->tree || !(path = tree_path(s, digest)))
		return 0;
	ok = fs_exists(path);
	free(path);
	if (ok)
		touch(s, e);
	return ok;
}

int store_tree(store *s, char **out, const char *digest, const struct bundle_limits *lim)
{
	char *tmp = NULL, *path = NULL, *blob = NULL;
	struct entry *e;
	uint64_t bytes;
	int r;

	if (!s->trees)
		return err_set(ERR_INVALID, "the store has no place for trees");
	if (!digest_is_valid(digest))
		return err_set(ERR_INVALID, "'%.70s' is not a digest", digest);
	if (!(path = tree_path(s, digest)))
		return err_set(ERR_NOMEM, "out of memory");
	if (store_has_tree(s, digest)) {
		*out = path;
		return 0;
	}
	if (!store_has(s, digest)) {
		r = err_set(ERR_NOTFOUND, "blob %.12s is not in the cache", digest);
		goto out;
	}
	/* Verified once, here: the tree is then used as it is. */
	if ((r = store_verify(s, digest)) < 0)
		goto out;
	if (!(blob = cas_path(s->cas, digest))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = fs_mkdtemp(&tmp, s->trees, ".unpack")) < 0)
		goto out;
	if ((r = bundle_extract_file(blob, tmp, 0, lim)) < 0) {
		r = err_prefix(r, "cannot unpack blob %.12s", digest);
		goto out;
	}
	if ((r = walk(tmp, 1, &bytes)) < 0)
		goto out;
	fs_rm_rf(path); /* the rest of a tree whose index entry was lost */
	if (rename(tmp, path) < 0) {
		r = err_errno(ERR_IO, errno, "cannot rename '%s' to '%s'", tmp, path);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	e = find(s, digest);
	e->tree = bytes;
	s->total += bytes;
	evict(s, digest);
	*out = path;
	path = NULL;
out:
	if (tmp) {
		fs_rm_rf(tmp);
		free(tmp);
	}
	free(blob);
	free(path);
	return r;
}
