/* bundle_job.c - staging a manifest and its local sources, then packing them. */
#include "bundle_job.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bundle.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "manifest.h"

/* A copy of one path source into the staging tree. */
struct copy {
	const char *what;      /* "objects[0].source.path", for messages */
	const char *root;      /* the source directory */
	dev_t stage_dev;       /* the staging directory, never copied into itself */
	ino_t stage_ino;
	struct bundle_job_info *info;
};

static int is_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "file://", 7) ||
	       !strncmp(s, "ssh://", 6) || !strncmp(s, "git://", 6);
}

/*
 * Why a symlink found depth directories below the source root cannot be
 * sent, or NULL. The rules are bundle_pack_dir()'s, applied to the source
 * tree rather than the whole bundle: ".." only leading (after a name it
 * could climb out of a directory reached through another link) and never
 * above the root.
 */
static const char *link_problem(const char *target, size_t depth)
{
	const char *p = target;
	int seen_name = 0;

	if (!*target)
		return "is empty";
	if (*target == '/')
		return "is absolute";
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2)) {
			if (seen_name)
				return "has '..' after a name";
			if (depth == 0)
				return "points outside the source tree";
			depth--;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			seen_name = 1;
		}
		p += n;
		p += strspn(p, "/");
	}
	return NULL;
}

static int copy_link(struct copy *cp, const char *from, const char *to, size_t depth)
{
	char target[PATH_MAX];
	ssize_t n = readlink(from, target, sizeof(target) - 1);
	const char *problem;

	if (n < 0)
		return err_errno(ERR_IO, errno, "cannot read link '%s'", from);
	target[n] = '\0';
	if ((problem = link_problem(target, depth)) != NULL)
		return err_set(ERR_INVALID, "%s: cannot send symlink '%s': target '%s' %s", cp->what, from,
			       target, problem);
	if (symlink(target, to) < 0)
		return err_errno(ERR_IO, errno, "cannot create link '%s'", to);
	return 0;
}

static int count(struct copy *cp, uint64_t bytes)
{
	if (++cp->info->files > BUNDLE_JOB_MAX_FILES)
		return err_set(ERR_LIMIT, "%s: '%s' has more than %llu files", cp->what, cp->root,
			       (unsigned long long)BUNDLE_JOB_MAX_FILES);
	cp->info->bytes += bytes;
	if (cp->info->bytes > BUNDLE_JOB_MAX_BYTES)
		return err_set(ERR_LIMIT, "%s: the sources add up to more than %llu MiB", cp->what,
			       (unsigned long long)(BUNDLE_JOB_MAX_BYTES >> 20));
	return 0;
}

/* Copies the directory from into to (which exists), leaving out .git. */
static int copy_dir(struct copy *cp, const char *from, const char *to, size_t depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (depth > BUNDLE_JOB_MAX_DEPTH)
		return err_set(ERR_LIMIT, "%s: '%s' is nested more than %d directories deep", cp->what, from,
			       BUNDLE_JOB_MAX_DEPTH);
	d = opendir(from);
	if (!d)
		return err_errno(ERR_IO, errno, "cannot read directory '%s'", from);
	while (r == 0 && (errno = 0, e = readdir(d)) != NULL) {
		char *a, *b;
		struct stat st;

		/* .git is history, not source: the source identity leaves it out too. */
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
			continue;
		a = fs_join(from, e->d_name);
		b = fs_join(to, e->d_name);
		if (!a || !b)
			r = err_set(ERR_NOMEM, "out of memory");
		else if (lstat(a, &st) < 0)
			r = err_errno(ERR_IO, errno, "cannot stat '%s'", a);
		else if (S_ISDIR(st.st_mode) && st.st_dev == cp->stage_dev && st.st_ino == cp->stage_ino)
			; /* $TMPDIR inside the source tree: do not copy the copy */
		else if (S_ISDIR(st.st_mode)) {
			if (mkdir(b, 0755) < 0)
				r = err_errno(ERR_IO, errno, "cannot create directory '%s'", b);
			else
				r = copy_dir(cp, a, b, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			if ((r = count(cp, (uint64_t)st.st_size)) == 0)
				r = fs_copy_file(a, b);
		} else if (S_ISLNK(st.st_mode)) {
			if ((r = count(cp, 0)) == 0)
				r = copy_link(cp, a, b, depth);
		}
		/* sockets, fifos and devices are not part of a source tree */
		free(a);
		free(b);
	}
	if (r == 0 && errno != 0)
		r = err_errno(ERR_IO, errno, "cannot read directory '%s'", from);
	closedir(d);
	return r;
}

static int stage_path(struct copy *cp, json_t *src, const struct manifest_object *o, const char *stage)
{
	char rel[128], *dest;
	struct stat st;
	int r;

	if (stat(o->source.path, &st) < 0)
		return err_errno(ERR_NOTFOUND, errno, "%s: cannot use '%s'", cp->what, o->source.path);
	if (!S_ISDIR(st.st_mode))
		return err_set(ERR_INVALID, "%s: '%s' is not a directory", cp->what, o->source.path);
	snprintf(rel, sizeof(rel), "sources/%s", o->name);
	dest = fs_join(stage, rel);
	if (!dest)
		return err_set(ERR_NOMEM, "out of memory");
	cp->root = o->source.path;
	if ((r = fs_mkdir_p(dest, 0755)) == 0 && (r = copy_dir(cp, o->source.path, dest, 0)) == 0 &&
	    json_object_set_new(src, "path", json_string(rel)) < 0)
		r = err_set(ERR_NOMEM, "out of memory");
	free(dest);
	return r;
}

static int stage_archive(struct copy *cp, json_t *src, const struct manifest_object *o, const char *stage,
			 struct bundle_job_info *info)
{
	const char *base = strrchr(o->source.archive, '/');
	char rel[PATH_MAX];
	char *dir = NULL, *dest = NULL;
	digest_hex have;
	uint64_t size;
	int r;

	base = base ? base + 1 : o->source.archive;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return err_set(ERR_INVALID, "%s: '%s' is not a file name", cp->what, o->source.archive);
	if ((r = digest_file(&have, o->source.archive, &size)) < 0)
		return err_prefix(r, "%s", cp->what);
	/* The dispatcher would refuse it too, but only after the upload. */
	if (strcmp(have.hex, o->source.sha256) != 0)
		return err_set(ERR_CORRUPT, "%s: '%s' has SHA-256 %s, not %s as the manifest says", cp->what,
			       o->source.archive, have.hex, o->source.sha256);
	snprintf(rel, sizeof(rel), "archives/%s/%s", o->name, base);
	dir = fs_join(stage, "archives");
	if (dir) {
		char *sub = fs_join(dir, o->name);
		free(dir);
		dir = sub;
	}
	dest = fs_join(stage, rel);
	if (!dir || !dest) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	info->bytes += size;
	if (info->bytes > BUNDLE_JOB_MAX_BYTES) {
		r = err_set(ERR_LIMIT, "%s: the sources add up to more than %llu MiB", cp->what,
			    (unsigned long long)(BUNDLE_JOB_MAX_BYTES >> 20));
		goto out;
	}
	if ((r = fs_mkdir_p(dir, 0755)) < 0 || (r = fs_copy_file(o->source.archive, dest)) < 0)
		goto out;
	if (json_object_set_new(src, "archive", json_string(rel)) < 0)
		r = err_set(ERR_NOMEM, "out of memory");
out:
	free(dir);
	free(dest);
	return r;
}

/* Copies the sources of every object into stage and rewrites doc to point at them. */
static int stage_sources(struct bundle_job_info *info, json_t *doc, const struct manifest *m,
			 const char *stage)
{
	json_t *objs = json_object_get(doc, "objects");
	struct stat st;
	int r = 0;

	if (stat(stage, &st) < 0)
		return err_errno(ERR_IO, errno, "cannot stat '%s'", stage);
	for (size_t i = 0; i < m->nobjects && r == 0; i++) {
		const struct manifest_object *o = &m->objects[i];
		json_t *src = json_object_get(json_array_get(objs, i), "source");
		char what[96];
		struct copy cp = { .what = what, .stage_dev = st.st_dev, .stage_ino = st.st_ino,
				   .info = info };

		switch (o->source.kind) {
		case SOURCE_PATH:
			snprintf(what, sizeof(what), "objects[%zu].source.path", i);
			r = stage_path(&cp, src, o, stage);
			break;
		case SOURCE_ARCHIVE:
			snprintf(what, sizeof(what), "objects[%zu].source.archive", i);
			if (!is_url(o->source.archive))
				r = stage_archive(&cp, src, o, stage, info);
			break;
		case SOURCE_GIT:
			/* A relative path would be read relative to the bundle on the dispatcher. */
			if (!is_url(o->source.git) &&
			    json_object_set_new(src, "git", json_string(o->source.git)) < 0)
				r = err_set(ERR_NOMEM, "out of memory");
			break;
		}
	}
	return r;
}

static const char *tmp_dir(const char *base)
{
	const char *t = getenv("TMPDIR");

	if (base)
		return base;
	return t && *t ? t : "/tmp";
}

int bundle_job_create(struct bundle_job_info *info, const char *out_path, const char *manifest_path,
		      const char *tmp_base)
{
	struct bundle_job_info got = { 0 };
	struct manifest *m = NULL;
	json_t *doc = NULL;
	char *work = NULL, *stage = NULL, *mpath = NULL, *text = NULL;
	struct stat st;
	int r;

	if ((r = manifest_load_file(&m, manifest_path)) < 0)
		return r;
	if ((r = fs_mkdtemp(&work, tmp_dir(tmp_base), "dispatch-job")) < 0)
		goto out;
	stage = fs_join(work, "job");
	mpath = stage ? fs_join(stage, "manifest.json") : NULL;
	doc = json_deep_copy(m->doc);
	if (!stage || !mpath || !doc) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (mkdir(stage, 0755) < 0) {
		r = err_errno(ERR_IO, errno, "cannot create directory '%s'", stage);
		goto out;
	}
	if ((r = stage_sources(&got, doc, m, stage)) < 0) {
		err_prefix(r, "%s", manifest_path);
		goto out;
	}
	text = json_dumps(doc, JSON_INDENT(2));
	if (!text) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = fs_write_atomic(mpath, text, strlen(text), 0644)) < 0 ||
	    (r = bundle_pack_dir(stage, out_path)) < 0)
		goto out;
	if (stat(out_path, &st) < 0) {
		r = err_errno(ERR_IO, errno, "cannot stat '%s'", out_path);
		goto out;
	}
	got.size = (uint64_t)st.st_size;
	if (got.size > BUNDLE_JOB_MAX) {
		unlink(out_path);
		r = err_set(ERR_LIMIT,
			    "the job bundle of '%s' is %llu MiB, more than the %llu MiB a dispatcher takes",
			    manifest_path, (unsigned long long)(got.size >> 20),
			    (unsigned long long)(BUNDLE_JOB_MAX >> 20));
		goto out;
	}
	got.objects = m->nobjects;
	if (info)
		*info = got;
out:
	if (work)
		fs_rm_rf(work);
	free(text);
	free(mpath);
	free(stage);
	free(work);
	json_decref(doc);
	manifest_free(m);
	return r;
}
