/* tree.c - deterministic digests of directory trees. */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"

struct walk {
	digest_ctx *ctx;
	uint64_t files, bytes, max_files, max_bytes;
	const char *root;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names in a directory, sorted. */
static int list_dir(const char *path, char ***names, size_t *count)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!d)
		return err_errno(ERR_IO, errno, "cannot read directory '%s'", path);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				r = err_set(ERR_NOMEM, "out of memory");
				goto out;
			}
			v = nv;
			cap = nc;
		}
		if (!(v[n] = strdup(e->d_name))) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_names);
out:
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	*names = v;
	*count = n;
	return 0;
}

static int walk_dir(struct walk *w, const char *path, const char *rel)
{
	char **names = NULL;
	size_t count = 0;
	int r;

	if ((r = list_dir(path, &names, &count)) < 0)
		return r;
	for (size_t i = 0; i < count && r == 0; i++) {
		char *full = fs_join(path, names[i]);
		char *sub = rel[0] ? fs_join(rel, names[i]) : strdup(names[i]);
		struct stat st;

		if (!full || !sub) {
			r = err_set(ERR_NOMEM, "out of memory");
		} else if (lstat(full, &st) < 0) {
			r = err_errno(ERR_IO, errno, "cannot stat '%s'", full);
		} else if (++w->files > w->max_files && w->max_files) {
			r = err_set(ERR_LIMIT, "'%s' has more than %llu entries", w->root,
				    (unsigned long long)w->max_files);
		} else if (S_ISDIR(st.st_mode)) {
			if (strcmp(names[i], ".git") != 0) {
				digest_update_str(w->ctx, "d");
				digest_update_str(w->ctx, sub);
				r = walk_dir(w, full, sub);
			}
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlink(full, target, sizeof(target) - 1);
			if (n < 0) {
				r = err_errno(ERR_IO, errno, "cannot read link '%s'", full);
			} else {
				target[n] = '\0';
				digest_update_str(w->ctx, "l");
				digest_update_str(w->ctx, sub);
				digest_update_str(w->ctx, target);
			}
		} else if (S_ISREG(st.st_mode)) {
			digest_hex fd;
			uint64_t size = 0;
			w->bytes += (uint64_t)st.st_size;
			if (w->max_bytes && w->bytes > w->max_bytes) {
				r = err_set(ERR_LIMIT, "'%s' holds more than %llu bytes", w->root,
					    (unsigned long long)w->max_bytes);
			} else if ((r = digest_file(&fd, full, &size)) == 0) {
				digest_update_str(w->ctx, (st.st_mode & 0111) ? "x" : "f");
				digest_update_str(w->ctx, sub);
				digest_update_str(w->ctx, fd.hex);
			}
		} else {
			r = err_set(ERR_INVALID, "'%s' is not a regular file, directory or symlink",
				    full);
		}
		free(full);
		free(sub);
	}
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return r;
}

int tree_digest(digest_hex *out, const char *dir, uint64_t max_files, uint64_t max_bytes)
{
	struct walk w = { .max_files = max_files, .max_bytes = max_bytes, .root = dir };
	struct stat st;
	int r;

	if (stat(dir, &st) < 0)
		return err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno,
				 "cannot read source directory '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(ERR_INVALID, "'%s' is not a directory", dir);
	w.ctx = digest_new();
	if (!w.ctx)
		return err_set(ERR_NOMEM, "out of memory");
	r = walk_dir(&w, dir, "");
	if (r < 0) {
		digest_free(w.ctx);
		return r;
	}
	digest_final(w.ctx, out);
	return 0;
}
