/* bundle.c - deterministic tar bundles and safe extraction (libarchive). */
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "fsutil.h"

#define CHUNK_SIZE 65536
#define DEFAULT_MAX_TOTAL (UINT64_C(1) << 30)
#define DEFAULT_MAX_ENTRIES UINT64_C(100000)
#define DEFAULT_MAX_ENTRY_SIZE (UINT64_C(512) << 20)

/*
 * Why a symlink target is unsafe, or NULL when it is fine. depth is the
 * number of directories between the root and the link. ".." may only lead
 * the target: after a name it could climb out of a directory reached
 * through another link ("b -> .", "c -> b/b/../.."), where the lexical
 * answer and the kernel's disagree.
 */
static const char *link_target_problem(const char *target, size_t depth)
{
	const char *p = target;
	int seen_name = 0;

	if (!*target)
		return "is empty";
	if (*target == '/')
		return "is absolute";
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (seen_name)
				return "has '..' after a name";
			if (depth == 0)
				return "leaves the tree";
			depth--;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			seen_name = 1;
		}
		p += n;
		p += *p == '/';
	}
	return NULL;
}

/* ---- packing ---- */

struct path_list {
	char **v;
	size_t n, alloc;
};

/* Takes s, which is NULL when its allocation failed. */
static int path_list_push(struct path_list *l, char *s)
{
	if (s && l->n == l->alloc) {
		char **v = realloc(l->v, (2 * l->alloc + 64) * sizeof(*v));
		if (v) {
			l->v = v;
			l->alloc = 2 * l->alloc + 64;
		}
	}
	if (!s || l->n == l->alloc) {
		free(s);
		return err_set(ERR_NOMEM, "out of memory");
	}
	l->v[l->n++] = s;
	return 0;
}

static int cmp_paths(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every path below root/rel (rel NULL for root itself) to l. */
static int collect_tree(struct path_list *l, const char *root, const char *rel)
{
	char *dir = rel ? fs_join(root, rel) : strdup(root);
	DIR *d = NULL;
	struct dirent *e;
	struct stat st;
	int r = 0;

	if (!dir)
		return err_set(ERR_NOMEM, "out of memory");
	d = opendir(dir);
	if (!d) {
		r = err_errno(ERR_IO, errno, "cannot read directory '%s'", dir);
		goto out;
	}
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((r = path_list_push(l, rel ? fs_join(rel, e->d_name) : strdup(e->d_name))) < 0)
			goto out;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = err_errno(ERR_IO, errno, "cannot stat '%s/%s'", dir, e->d_name);
			goto out;
		}
		if (S_ISDIR(st.st_mode) && (r = collect_tree(l, root, l->v[l->n - 1])) < 0)
			goto out;
	}
out:
	if (d)
		closedir(d);
	free(dir);
	return r;
}

/* The number of directories above rel's last component. */
static size_t path_depth(const char *rel)
{
	size_t depth = 0;

	for (const char *p = rel; *p; p++)
		depth += *p == '/';
	return depth;
}

static int copy_file_data(struct archive *w, int fd, const char *path, uint64_t size)
{
	char chunk[CHUNK_SIZE];
	uint64_t done = 0;
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(ERR_IO, errno, "cannot read '%s'", path);
		}
		if (done + (uint64_t)n > size)
			break;
		if (archive_write_data(w, chunk, (size_t)n) != n)
			return err_set(ERR_IO, "cannot write bundle entry '%s': %s", path,
				       archive_error_string(w));
		done += (uint64_t)n;
	}
	if (done != size)
		return err_set(ERR_IO, "'%s' changed while it was packed", path);
	return 0;
}

/* Writes one entry; only names, contents, the x bit and link targets count. */
static int pack_entry(struct archive *w, struct archive_entry *e, const char *root,
		      const char *rel)
{
	char *path = fs_join(root, rel);
	char target[PATH_MAX];
	const char *problem;
	struct stat st;
	int fd = -1, r = 0;
	ssize_t n;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	archive_entry_clear(e);
	archive_entry_set_pathname(e, rel);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (lstat(path, &st) < 0) {
		r = err_errno(ERR_IO, errno, "cannot stat '%s'", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		archive_entry_set_mode(e, AE_IFDIR | 0755);
	} else if (S_ISLNK(st.st_mode)) {
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0) {
			r = err_errno(ERR_IO, errno, "cannot read link '%s'", path);
			goto out;
		}
		target[n] = '\0';
		problem = link_target_problem(target, path_depth(rel));
		if (problem) {
			r = err_set(ERR_INVALID, "cannot pack symlink '%s': target '%s' %s", path,
				    target, problem);
			goto out;
		}
		archive_entry_set_mode(e, AE_IFLNK | 0777);
		archive_entry_set_symlink(e, target);
	} else if (S_ISREG(st.st_mode)) {
		/* O_NONBLOCK: a FIFO swapped in since the lstat() must not hang the open. */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = err_errno(ERR_IO, errno, "cannot open '%s'", path);
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			r = err_set(ERR_INVALID, "cannot pack '%s': it was replaced while being packed", path);
			goto out;
		}
		archive_entry_set_mode(e, AE_IFREG | (st.st_mode & 0111 ? 0755 : 0644));
		archive_entry_set_size(e, st.st_size);
	} else {
		r = err_set(ERR_INVALID, "cannot pack '%s': not a regular file, directory or symlink",
			    path);
		goto out;
	}
	if (archive_write_header(w, e) < ARCHIVE_WARN) {
		r = err_set(ERR_IO, "cannot write bundle entry '%s': %s", path,
			    archive_error_string(w));
		goto out;
	}
	if (fd >= 0)
		r = copy_file_data(w, fd, path, (uint64_t)st.st_size);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

int bundle_pack_fd(const char *dir, int fd)
{
	struct path_list list = { 0 };
	struct archive *w = NULL;
	struct archive_entry *e = NULL;
	int r;

	if ((r = collect_tree(&list, dir, NULL)) < 0)
		goto out;
	qsort(list.v, list.n, sizeof(*list.v), cmp_paths);
	w = archive_write_new();
	e = archive_entry_new();
	if (!w || !e) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK) {
		r = err_set(ERR_UNSUPPORTED, "cannot pack '%s': %s", dir, archive_error_string(w));
		goto out;
	}
	if (archive_write_add_filter_zstd(w) != ARCHIVE_OK) {
		r = err_set(ERR_UNSUPPORTED, "cannot pack '%s': zstd compression is not available: %s",
			    dir, archive_error_string(w));
		goto out;
	}
	/* No padding after the last block, whatever fd is: the same bytes into a file or a pipe. */
	archive_write_set_bytes_in_last_block(w, 1);
	if (archive_write_open_fd(w, fd) != ARCHIVE_OK) {
		r = err_set(ERR_IO, "cannot write the bundle of '%s': %s", dir,
			    archive_error_string(w) ? archive_error_string(w) : strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < list.n; i++)
		if ((r = pack_entry(w, e, dir, list.v[i])) < 0)
			goto out;
	if (archive_write_close(w) != ARCHIVE_OK)
		r = err_set(ERR_IO, "cannot write the bundle of '%s': %s", dir, archive_error_string(w));
out:
	archive_entry_free(e);
	if (w)
		archive_write_free(w);
	for (size_t i = 0; i < list.n; i++)
		free(list.v[i]);
	free(list.v);
	return r;
}

int bundle_pack_dir(const char *dir, const char *out_path)
{
	char tmp[PATH_MAX];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", out_path) >= (int)sizeof(tmp))
		return err_set(ERR_INVALID, "path too long: '%s'", out_path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot create a file next to '%s'", out_path);
	if (fchmod(fd, 0644) < 0)
		r = err_errno(ERR_IO, errno, "cannot write '%s'", tmp);
	else if ((r = bundle_pack_fd(dir, fd)) == 0)
		r = fs_rename(tmp, out_path);
	if (r < 0)
		unlink(tmp);
	close(fd);
	return r;
}

/* ---- extraction ---- */

struct extractor {
	struct archive *a;
	const char *what; /* the archive, for messages */
	int destfd;
	int strip;
	uint64_t max_total, max_entries, max_entry_size;
	uint64_t total, entries;
	char *part[PATH_MAX / 2 + 1]; /* the entry's components after strip */
	size_t nparts;
	char path[PATH_MAX];
	char chunk[CHUNK_SIZE];
};

static int read_error(struct archive *a, const char *what)
{
	const char *msg = archive_error_string(a);

	return err_set(ERR_INVALID, "cannot read archive '%s': %s", what, msg ? msg : "unknown error");
}

/* Whether an entry of entry_size bytes, adding more to the total, stays in the limits. */
static int check_limits(struct extractor *x, const char *entry, uint64_t entry_size,
			uint64_t more)
{
	if (entry_size > x->max_entry_size)
		return err_set(ERR_LIMIT, "archive entry '%s': larger than %llu bytes", entry,
			       (unsigned long long)x->max_entry_size);
	if (more > x->max_total - x->total)
		return err_set(ERR_LIMIT, "archive '%s': more than %llu bytes in total", x->what,
			       (unsigned long long)x->max_total);
	return 0;
}

/* Splits name into x->part, dropping "." and empty components, then strips. */
static int split_entry_path(struct extractor *x, const char *name)
{
	size_t len = strlen(name), n = 0;
	char *p, *save = NULL;

	if (*name == '/')
		return err_set(ERR_INVALID, "archive entry '%s': absolute path", name);
	if (len >= sizeof(x->path))
		return err_set(ERR_INVALID, "archive entry '%.64s...': path too long", name);
	memcpy(x->path, name, len + 1);
	for (p = strtok_r(x->path, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (!strcmp(p, ".."))
			return err_set(ERR_INVALID, "archive entry '%s': path leaves the destination",
				       name);
		if (strcmp(p, "."))
			x->part[n++] = p;
	}
	if (n <= (size_t)x->strip) {
		x->nparts = 0;
		return 0;
	}
	if (n - (size_t)x->strip > BUNDLE_MAX_DEPTH)
		return err_set(ERR_LIMIT, "archive entry '%.64s...': deeper than %d directories", name,
			       BUNDLE_MAX_DEPTH);
	memmove(x->part, x->part + x->strip, (n - (size_t)x->strip) * sizeof(*x->part));
	x->nparts = n - (size_t)x->strip;
	return 0;
}

/*
 * Opens (creating it if missing) the directory comp below at, never through
 * a link. A directory made on the way counts as an entry: one entry
 * "a/a/.../f" must not create thousands of directories for free.
 */
static int open_dir_at(struct extractor *x, int at, const char *comp, const char *entry, int *out)
{
	struct stat st;
	int fd, created = 0;

	fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (++x->entries > x->max_entries)
			return err_set(ERR_LIMIT, "archive '%s': more than %llu entries", x->what,
				       (unsigned long long)x->max_entries);
		if (mkdirat(at, comp, 0755) < 0 && errno != EEXIST)
			return err_errno(ERR_IO, errno, "archive entry '%s': cannot create '%s'",
					 entry, comp);
		created = 1;
		fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		int e = errno;
		if (fstatat(at, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			return err_set(ERR_INVALID, "archive entry '%s': '%s' is a symlink, not a directory",
				       entry, comp);
		if (e == ENOTDIR)
			return err_set(ERR_INVALID, "archive entry '%s': '%s' is not a directory", entry,
				       comp);
		return err_errno(ERR_IO, e, "archive entry '%s': cannot open '%s'", entry, comp);
	}
	if (created && fchmod(fd, 0755) < 0) {
		int e = errno;
		close(fd);
		return err_errno(ERR_IO, e, "archive entry '%s': cannot chmod '%s'", entry, comp);
	}
	*out = fd;
	return 0;
}

/* Opens the directory made of the first n components, creating what is missing. */
static int walk_dirs(struct extractor *x, size_t n, const char *entry, int *out)
{
	int fd, next = -1, r;

	fd = fcntl(x->destfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot duplicate a descriptor");
	for (size_t i = 0; i < n; i++) {
		r = open_dir_at(x, fd, x->part[i], entry, &next);
		close(fd);
		if (r < 0)
			return r;
		fd = next;
	}
	*out = fd;
	return 0;
}

/* Creates leaf below at; a regular file left by an earlier entry is replaced. */
static int create_file(int at, const char *leaf, const char *entry, int *out)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	int fd;

	fd = openat(at, leaf, flags, 0600);
	if (fd < 0 && errno == EEXIST) {
		if (fstatat(at, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			return err_set(ERR_INVALID,
				       "archive entry '%s': exists and is not a regular file", entry);
		if (unlinkat(at, leaf, 0) < 0)
			return err_errno(ERR_IO, errno, "archive entry '%s': cannot replace", entry);
		fd = openat(at, leaf, flags, 0600);
	}
	if (fd < 0)
		return err_errno(ERR_IO, errno, "archive entry '%s': cannot create", entry);
	*out = fd;
	return 0;
}

/* Copies the entry's data, counting the bytes actually produced against the limits. */
static int write_data(struct extractor *x, int fd, const char *entry)
{
	uint64_t size = 0;
	ssize_t n;
	int r;

	while ((n = archive_read_data(x->a, x->chunk, sizeof(x->chunk))) != 0) {
		if (n < 0)
			return read_error(x->a, x->what);
		if ((r = check_limits(x, entry, size + (uint64_t)n, (uint64_t)n)) < 0)
			return r;
		size += (uint64_t)n;
		x->total += (uint64_t)n;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, x->chunk + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return err_errno(ERR_IO, errno, "archive entry '%s': cannot write", entry);
			off += w;
		}
	}
	return 0;
}

static const char *type_name(mode_t type)
{
	return type == AE_IFCHR ? "character devices" : type == AE_IFBLK ? "block devices" :
	       type == AE_IFIFO ? "fifos" : type == AE_IFSOCK ? "sockets" : "unknown file types";
}

static int extract_entry(struct extractor *x, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e), *target, *problem;
	mode_t type = archive_entry_filetype(e);
	int64_t size = archive_entry_size(e);
	int fd = -1, pfd = -1, r;

	if (!name)
		return err_set(ERR_INVALID, "archive '%s': entry without a readable name", x->what);
	if (++x->entries > x->max_entries)
		return err_set(ERR_LIMIT, "archive '%s': more than %llu entries", x->what,
			       (unsigned long long)x->max_entries);
	if ((r = split_entry_path(x, name)) < 0 || x->nparts == 0)
		return r;
	if (archive_entry_hardlink(e))
		return err_set(ERR_INVALID, "archive entry '%s': hard links are not allowed", name);
	switch (type) {
	case AE_IFDIR:
		if ((r = walk_dirs(x, x->nparts, name, &pfd)) < 0)
			goto out;
		break;
	case AE_IFLNK:
		target = archive_entry_symlink(e);
		problem = target ? link_target_problem(target, x->nparts - 1) : "is unreadable";
		if (problem) {
			r = err_set(ERR_INVALID, "archive entry '%s': symlink target '%s' %s", name,
				    target ? target : "", problem);
			goto out;
		}
		if ((r = walk_dirs(x, x->nparts - 1, name, &pfd)) < 0)
			goto out;
		if (symlinkat(target, pfd, x->part[x->nparts - 1]) < 0) {
			r = errno == EEXIST ?
				err_set(ERR_INVALID, "archive entry '%s': already exists", name) :
				err_errno(ERR_IO, errno, "archive entry '%s': cannot create symlink", name);
			goto out;
		}
		break;
	case AE_IFREG:
		/* Fail early on the header; write_data() counts what really comes. */
		if (archive_entry_size_is_set(e) &&
		    (r = check_limits(x, name, (uint64_t)size, (uint64_t)size)) < 0)
			goto out;
		if ((r = walk_dirs(x, x->nparts - 1, name, &pfd)) < 0 ||
		    (r = create_file(pfd, x->part[x->nparts - 1], name, &fd)) < 0 ||
		    (r = write_data(x, fd, name)) < 0)
			goto out;
		/* Only the executable bit survives; never setuid, setgid or odd modes. */
		if (fchmod(fd, archive_entry_perm(e) & 0111 ? 0755 : 0644) < 0)
			r = err_errno(ERR_IO, errno, "archive entry '%s': cannot chmod", name);
		break;
	default:
		r = err_set(ERR_INVALID, "archive entry '%s': %s are not allowed", name, type_name(type));
	}
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	return r;
}

/*
 * What the reader accepts. Not archive_read_support_*_all(): its mtree
 * reader copies files named in the archive from the local disk, and the
 * lrzip, lzop and grzip filters run external programs on the input.
 */
static int (*const reader_support[])(struct archive *) = {
	archive_read_support_filter_bzip2, archive_read_support_filter_compress,
	archive_read_support_filter_gzip, archive_read_support_filter_lz4,
	archive_read_support_filter_lzip, archive_read_support_filter_lzma,
	archive_read_support_filter_xz, archive_read_support_filter_zstd,
	/*
	 * Only the formats sources and bundles come in. The others add parser
	 * surface, and iso9660's bidding made a tar truncated inside a header
	 * extract as if it were complete (found by tests/fuzz).
	 */
	archive_read_support_format_cpio, archive_read_support_format_tar,
	archive_read_support_format_zip,
};

static struct archive *reader_new(void)
{
	struct archive *a = archive_read_new();

	for (size_t i = 0; a && i < sizeof(reader_support) / sizeof(*reader_support); i++)
		reader_support[i](a);
	return a;
}

/* Takes a (NULL when it could not be made); opened is archive_read_open*()'s result. */
static int extract_all(struct archive *a, int opened, const char *what, const char *dest,
		       int strip, const struct bundle_limits *lim)
{
	struct extractor *x = NULL;
	struct archive_entry *e;
	int r = 0, ar;

	if (!a || !(x = calloc(1, sizeof(*x)))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	x->destfd = -1;
	if (opened != ARCHIVE_OK) {
		r = read_error(a, what);
		goto out;
	}
	if (strip < 0) {
		r = err_set(ERR_INVALID, "bad strip count %d", strip);
		goto out;
	}
	x->a = a;
	x->what = what;
	x->strip = strip;
	x->max_total = lim && lim->max_total ? lim->max_total : DEFAULT_MAX_TOTAL;
	x->max_entries = lim && lim->max_entries ? lim->max_entries : DEFAULT_MAX_ENTRIES;
	x->max_entry_size = lim && lim->max_entry_size ? lim->max_entry_size : DEFAULT_MAX_ENTRY_SIZE;
	x->destfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->destfd < 0) {
		r = err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno,
			      "cannot open directory '%s'", dest);
		goto out;
	}
	while ((ar = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = read_error(a, what);
			goto out;
		}
		if ((r = extract_entry(x, e)) < 0)
			goto out;
	}
out:
	if (x && x->destfd >= 0)
		close(x->destfd);
	free(x);
	if (a)
		archive_read_free(a);
	return r;
}

int bundle_extract_file(const char *path, const char *dest, int strip,
			const struct bundle_limits *lim)
{
	struct archive *a;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno,
				 "cannot open archive '%s'", path);
	a = reader_new();
	r = extract_all(a, a ? archive_read_open_fd(a, fd, CHUNK_SIZE) : ARCHIVE_FATAL, path, dest,
			strip, lim);
	close(fd);
	return r;
}

int bundle_extract_mem(const void *data, size_t len, const char *dest, int strip,
		       const struct bundle_limits *lim)
{
	struct archive *a = reader_new();

	/* libarchive wants a non-NULL pointer even for zero bytes. */
	return extract_all(a, a ? archive_read_open_memory(a, len ? data : "", len) : ARCHIVE_FATAL,
			   "(memory)", dest, strip, lim);
}

int bundle_read_entry(struct buf *out, const char *path, const char *name)
{
	struct archive *a = NULL;
	struct archive_entry *e;
	uint64_t entries = 0, skipped = 0;
	char chunk[CHUNK_SIZE];
	int fd, r = ERR_NOTFOUND, ar;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "cannot open archive '%s'", path);
	if (!(a = reader_new())) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (archive_read_open_fd(a, fd, CHUNK_SIZE) != ARCHIVE_OK) {
		r = read_error(a, path);
		goto out;
	}
	while ((ar = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		const char *n = archive_entry_pathname(e);
		la_ssize_t got;

		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = read_error(a, path);
			goto out;
		}
		if (++entries > DEFAULT_MAX_ENTRIES) {
			r = err_set(ERR_LIMIT, "archive '%s': more than %llu entries", path,
				    (unsigned long long)DEFAULT_MAX_ENTRIES);
			goto out;
		}
		while (n && n[0] == '.' && n[1] == '/')
			n += 2;
		if (!n || strcmp(n, name) != 0 || archive_entry_filetype(e) != AE_IFREG) {
			/* Skipping decompresses: bounded like an extraction. */
			if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0)
				skipped += (uint64_t)archive_entry_size(e);
			if (skipped > DEFAULT_MAX_TOTAL) {
				r = err_set(ERR_LIMIT, "archive '%s': more than %llu bytes before '%s'", path,
					    (unsigned long long)DEFAULT_MAX_TOTAL, name);
				goto out;
			}
			continue;
		}
		buf_reset(out);
		while ((got = archive_read_data(a, chunk, sizeof(chunk))) > 0)
			if ((r = buf_append(out, chunk, (size_t)got)) < 0) {
				err_prefix(r, "archive '%s': entry '%s'", path, name);
				goto out;
			}
		r = got < 0 ? read_error(a, path) : 0;
		goto out;
	}
	r = err_set(ERR_NOTFOUND, "archive '%s' has no '%s'", path, name);
out:
	if (a)
		archive_read_free(a);
	close(fd);
	return r;
}
