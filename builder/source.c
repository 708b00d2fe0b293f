/* source.c - path, git and archive sources. */
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <git2.h>

#include "bundle.h"
#include "error.h"
#include "fsutil.h"
#include "tree.h"

#define SOURCE_MAX_FILES 200000
#define SOURCE_MAX_BYTES (2ULL << 30)
#define ARCHIVE_MAX_DOWNLOAD (1ULL << 30)

/* libgit2 is thread-safe per repository; one lock keeps fetches simple. */
static pthread_mutex_t git_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * libgit2 reads the system's CA certificates when it starts (about 5 ms of
 * every CLI command): it starts with the first git source instead.
 */
static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_started; /* 1 started, -1 failed */

static void git_start(void)
{
	git_started = git_libgit2_init() < 0 ? -1 : 1;
}

static int git_ready(void)
{
	pthread_once(&git_once, git_start);
	return git_started > 0 ? 0 : err_set(ERR_IO, "cannot initialize libgit2");
}

int source_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return err_set(ERR_IO, "cannot initialize libcurl");
	return 0;
}

void source_global_shutdown(void)
{
	if (git_started > 0)
		git_libgit2_shutdown();
	curl_global_cleanup();
}

static int git_fail(const char *what, const char *subject)
{
	const git_error *e = git_error_last();

	return err_set(ERR_INVALID, "%s '%s': %s", what, subject, e && e->message ? e->message : "libgit2 error");
}

/* Opens (cloning on first use) the cached mirror of url. */
static int git_mirror(git_repository **out, const struct source_ctx *ctx, const char *url)
{
	digest_hex d;
	char *path = NULL, name[80];
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	int r = 0;

	digest_bytes(&d, url, strlen(url));
	snprintf(name, sizeof(name), "%.32s.git", d.hex);
	if ((r = fs_mkdir_p(ctx->git_cache, 0755)) < 0)
		return r;
	path = fs_join(ctx->git_cache, name);
	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	if (git_repository_open_bare(&repo, path) == 0)
		goto done;
	fs_rm_rf(path);
	if (git_repository_init(&repo, path, 1) < 0 ||
	    git_remote_create_with_fetchspec(&remote, repo, "origin", url, "+refs/*:refs/*") < 0) {
		r = git_fail("cannot create a mirror of", url);
		goto out;
	}
done:
	*out = repo;
	repo = NULL;
out:
	git_remote_free(remote);
	git_repository_free(repo);
	free(path);
	return r;
}

static int git_update(git_repository *repo, const char *url)
{
	git_remote *remote = NULL;
	git_fetch_options fo;
	int r = 0;

	git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
	fo.prune = GIT_FETCH_PRUNE;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
	if (git_remote_lookup(&remote, repo, "origin") < 0 || git_remote_fetch(remote, NULL, &fo, NULL) < 0)
		r = git_fail("cannot fetch", url);
	git_remote_free(remote);
	return r;
}

static int is_full_oid(const char *rev)
{
	return strlen(rev) == 40 && strspn(rev, "0123456789abcdef") == 40;
}

/* Resolves rev to a commit, fetching when it is not a known commit id. */
static int git_resolve(git_repository **repo_out, git_commit **commit_out,
		       const struct source_ctx *ctx, const struct manifest_source *s)
{
	git_repository *repo = NULL;
	git_object *obj = NULL;
	int r;

	if ((r = git_ready()) < 0)
		return r;
	if ((r = git_mirror(&repo, ctx, s->git)) < 0)
		return r;
	/* A branch or tag can move: fetch. A commit id cannot: fetch only if missing. */
	if (!is_full_oid(s->rev) || git_revparse_single(&obj, repo, s->rev) < 0) {
		git_object_free(obj);
		obj = NULL;
		if ((r = git_update(repo, s->git)) < 0)
			goto out;
		if (git_revparse_single(&obj, repo, s->rev) < 0) {
			r = err_set(ERR_NOTFOUND, "revision '%s' not found in '%s'", s->rev, s->git);
			goto out;
		}
	}
	if (git_object_peel((git_object **)commit_out, obj, GIT_OBJECT_COMMIT) < 0) {
		r = err_set(ERR_INVALID, "revision '%s' of '%s' is not a commit", s->rev, s->git);
		goto out;
	}
	*repo_out = repo;
	repo = NULL;
out:
	git_object_free(obj);
	git_repository_free(repo);
	return r;
}

static int identify_git(digest_hex *out, const struct source_ctx *ctx, const struct manifest_source *s)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	char oid[GIT_OID_HEXSZ + 1];
	digest_ctx *d;
	int r;

	pthread_mutex_lock(&git_lock);
	r = git_resolve(&repo, &commit, ctx, s);
	pthread_mutex_unlock(&git_lock);
	if (r < 0)
		return r;
	/* The tree id: the same content at another commit builds the same. */
	git_oid_tostr(oid, sizeof(oid), git_commit_tree_id(commit));
	d = digest_new();
	if (!d) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	digest_update_str(d, "git-tree");
	digest_update_str(d, oid);
	digest_final(d, out);
out:
	git_commit_free(commit);
	git_repository_free(repo);
	return r;
}

static int materialize_git(const struct source_ctx *ctx, const struct manifest_source *s, const char *dest)
{
	git_checkout_options co;
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	int r;

	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	pthread_mutex_lock(&git_lock);
	r = git_resolve(&repo, &commit, ctx, s);
	if (r < 0)
		goto out;
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = dest;
	if (git_commit_tree(&tree, commit) < 0 || git_checkout_tree(repo, (git_object *)tree, &co) < 0)
		r = git_fail("cannot check out", s->git);
out:
	pthread_mutex_unlock(&git_lock);
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	return r;
}

struct download {
	FILE *f;
	uint64_t size;
};

static size_t download_write(char *p, size_t sz, size_t n, void *data)
{
	struct download *dl = data;

	dl->size += sz * n;
	if (dl->size > ARCHIVE_MAX_DOWNLOAD)
		return 0;
	return fwrite(p, sz, n, dl->f);
}

static int download(const char *url, const char *to)
{
	struct download dl = { fopen(to, "we"), 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode rc;
	long status = 0;
	int r = 0;

	if (!dl.f)
		return err_errno(ERR_IO, errno, "cannot create '%s'", to);
	c = curl_easy_init();
	if (!c) {
		fclose(dl.f);
		return err_set(ERR_NOMEM, "cannot create a curl handle");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, download_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &dl);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (dl.size > ARCHIVE_MAX_DOWNLOAD)
		r = err_set(ERR_LIMIT, "'%s' is larger than %llu bytes", url, (unsigned long long)ARCHIVE_MAX_DOWNLOAD);
	else if (rc != CURLE_OK)
		r = err_set(ERR_NET, "cannot download '%s': %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
	else if (status >= 400)
		r = err_set(ERR_NET, "cannot download '%s': HTTP %ld", url, status);
	curl_easy_cleanup(c);
	if (fclose(dl.f) != 0 && r == 0)
		r = err_errno(ERR_IO, errno, "cannot write '%s'", to);
	return r;
}

/* Puts the archive into the store under its SHA-256, checking it matches. */
static int fetch_archive(const struct source_ctx *ctx, const struct manifest_source *s)
{
	char *tmp = NULL;
	digest_hex got;
	int r;

	/* A stored copy that no longer matches is moved aside by cas_verify and fetched again. */
	if (cas_has(ctx->store, s->sha256) && cas_verify(ctx->store, s->sha256, NULL) == 0)
		return 0;
	if (!strncmp(s->archive, "http://", 7) || !strncmp(s->archive, "https://", 8)) {
		if ((tmp = fs_join(cas_tmpdir(ctx->store), "download-XXXXXX")) == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		int fd = mkstemp(tmp);
		if (fd < 0) {
			r = err_errno(ERR_IO, errno, "cannot create a file in '%s'", cas_tmpdir(ctx->store));
			goto out;
		}
		close(fd);
		if ((r = download(s->archive, tmp)) < 0 || (r = cas_adopt(ctx->store, &got, tmp)) < 0)
			goto out;
	} else if ((r = cas_put_file(ctx->store, &got, s->archive)) < 0) {
		r = err_prefix(r, "cannot read archive");
		goto out;
	}
	if (strcmp(got.hex, s->sha256) != 0)
		r = err_set(ERR_CORRUPT, "archive '%s' has sha256 %s, but the manifest says %s", s->archive,
			    got.hex, s->sha256);
out:
	if (tmp)
		unlink(tmp);
	free(tmp);
	return r;
}

int source_identify(digest_hex *out, const struct source_ctx *ctx, const struct manifest_source *s)
{
	digest_ctx *d;
	char strip[16];

	switch (s->kind) {
	case SOURCE_PATH:
		return tree_digest(out, s->path, SOURCE_MAX_FILES,
				   ctx->path_max_bytes ? ctx->path_max_bytes : SOURCE_MAX_BYTES);
	case SOURCE_GIT:
		return identify_git(out, ctx, s);
	case SOURCE_ARCHIVE:
		d = digest_new();
		if (!d)
			return err_set(ERR_NOMEM, "out of memory");
		snprintf(strip, sizeof(strip), "%d", s->strip);
		digest_update_str(d, "archive");
		digest_update_str(d, s->sha256);
		digest_update_str(d, strip);
		digest_final(d, out);
		return 0;
	}
	return err_set(ERR_INVALID, "unknown source kind");
}

/* Copies a path source, leaving out .git directories like tree_digest does. */
static int copy_source_dir(const char *from, const char *to)
{
	DIR *d = opendir(from);
	struct dirent *e;
	int r = 0;

	if (!d)
		return err_errno(ERR_IO, errno, "cannot read source directory '%s'", from);
	while ((e = readdir(d)) != NULL && r == 0) {
		char *a, *b;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
			continue;
		a = fs_join(from, e->d_name);
		b = fs_join(to, e->d_name);
		r = a && b ? fs_copy_tree(a, b) : err_set(ERR_NOMEM, "out of memory");
		free(a);
		free(b);
	}
	closedir(d);
	return r;
}

int source_materialize(const struct source_ctx *ctx, const struct manifest_source *s, const char *dest)
{
	char *blob;
	int r;

	switch (s->kind) {
	case SOURCE_PATH:
		return copy_source_dir(s->path, dest);
	case SOURCE_GIT:
		return materialize_git(ctx, s, dest);
	case SOURCE_ARCHIVE:
		if ((r = fetch_archive(ctx, s)) < 0)
			return r;
		if ((r = cas_verify(ctx->store, s->sha256, NULL)) < 0)
			return r;
		blob = cas_path(ctx->store, s->sha256);
		if (!blob)
			return err_set(ERR_NOMEM, "out of memory");
		r = bundle_extract_file(blob, dest, s->strip, NULL);
		if (r < 0)
			r = err_prefix(r, "archive '%s'", s->archive);
		free(blob);
		return r;
	}
	return err_set(ERR_INVALID, "unknown source kind");
}
