/* toolchain.c - loading target descriptions and probing their compilers. */
#include "toolchain.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "error.h"
#include "fsutil.h"
#include "proc.h"

#ifndef DISPATCH_TOOLCHAINS_DIR
#define DISPATCH_TOOLCHAINS_DIR "toolchains"
#endif
#ifndef DISPATCH_INSTALLED_TOOLCHAINS_DIR
#define DISPATCH_INSTALLED_TOOLCHAINS_DIR "/usr/local/share/dispatch/toolchains"
#endif

#define TOOLCHAIN_FILE_MAX (64 * 1024)

const char *toolchain_default_dir(void)
{
	const char *env = getenv("DISPATCH_TOOLCHAINS");
	struct stat st;

	if (env && *env)
		return env;
	if (stat(DISPATCH_TOOLCHAINS_DIR, &st) == 0 && S_ISDIR(st.st_mode))
		return DISPATCH_TOOLCHAINS_DIR;
	return DISPATCH_INSTALLED_TOOLCHAINS_DIR;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void toolchain_release(struct toolchain *tc)
{
	free(tc->isa);
	free(tc->triple);
	free(tc->cc);
	free(tc->package);
	free(tc->qemu);
	free(tc->endian);
	for (size_t i = 0; i < tc->nlevels; i++) {
		free(tc->levels[i].name);
		strv_free(tc->levels[i].cflags);
	}
	free(tc->levels);
	free(tc->file);
	free(tc->cc_path);
	free(tc->version);
	free(tc->why);
}

void toolchain_set_free(struct toolchain_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->count; i++)
		toolchain_release(&s->items[i]);
	free(s->items);
	free(s->dir);
	free(s);
}

static int dup_str(char **out, json_t *obj, const char *key, const char *file)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v) || !json_string_length(v))
		return err_set(ERR_INVALID, "toolchain '%s': \"%s\" must be a non-empty string", file, key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

static int parse_levels(struct toolchain *tc, json_t *levels, const char *file)
{
	json_t *lv, *flag;
	size_t i, j;

	if (!json_is_array(levels) || json_array_size(levels) == 0)
		return err_set(ERR_INVALID, "toolchain '%s': \"levels\" must be a non-empty array", file);
	tc->levels = calloc(json_array_size(levels), sizeof(*tc->levels));
	if (!tc->levels)
		return err_set(ERR_NOMEM, "out of memory");
	json_array_foreach(levels, i, lv) {
		struct toolchain_level *l = &tc->levels[i];
		json_t *flags = json_object_get(lv, "cflags");
		int r;

		tc->nlevels = i + 1;
		if ((r = dup_str(&l->name, lv, "name", file)) < 0)
			return r;
		if (flags && !json_is_array(flags))
			return err_set(ERR_INVALID, "toolchain '%s': levels[%zu].cflags must be an array", file, i);
		l->cflags = calloc(json_array_size(flags) + 1, sizeof(char *));
		if (!l->cflags)
			return err_set(ERR_NOMEM, "out of memory");
		json_array_foreach(flags, j, flag) {
			if (!json_is_string(flag))
				return err_set(ERR_INVALID, "toolchain '%s': levels[%zu].cflags must hold strings",
					       file, i);
			if (!(l->cflags[j] = strdup(json_string_value(flag))))
				return err_set(ERR_NOMEM, "out of memory");
		}
	}
	return 0;
}

static int parse_toolchain(struct toolchain *tc, const char *path)
{
	struct buf b = BUF_INIT(TOOLCHAIN_FILE_MAX);
	json_error_t jerr;
	json_t *doc = NULL;
	int r;

	if (!(tc->file = strdup(path)))
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = fs_read_file(&b, path, TOOLCHAIN_FILE_MAX)) < 0)
		goto out;
	digest_bytes(&tc->file_digest, b.data, b.len);
	doc = json_loadb(buf_str(&b), b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		r = err_set(ERR_INVALID, "toolchain '%s': line %d: %s", path, jerr.line, jerr.text);
		goto out;
	}
	if ((r = dup_str(&tc->isa, doc, "isa", path)) < 0 ||
	    (r = dup_str(&tc->triple, doc, "triple", path)) < 0 ||
	    (r = dup_str(&tc->cc, doc, "cc", path)) < 0 ||
	    (r = dup_str(&tc->package, doc, "package", path)) < 0 ||
	    (r = dup_str(&tc->qemu, doc, "qemu", path)) < 0 ||
	    (r = dup_str(&tc->endian, doc, "endian", path)) < 0 ||
	    (r = parse_levels(tc, json_object_get(doc, "levels"), path)) < 0)
		goto out;
	tc->bits = (int)json_integer_value(json_object_get(doc, "bits"));
	tc->elf_machine = (int)json_integer_value(json_object_get(doc, "elf_machine"));
	if ((tc->bits != 32 && tc->bits != 64) || tc->elf_machine <= 0 ||
	    (strcmp(tc->endian, "little") && strcmp(tc->endian, "big")))
		r = err_set(ERR_INVALID, "toolchain '%s': needs \"bits\" (32 or 64), \"elf_machine\" and "
			    "\"endian\" (little or big)", path);
out:
	json_decref(doc);
	buf_release(&b);
	return r;
}

static int cmp_isa(const void *a, const void *b)
{
	return strcmp(((const struct toolchain *)a)->isa, ((const struct toolchain *)b)->isa);
}

int toolchain_set_load(struct toolchain_set **out, const char *dir)
{
	struct toolchain_set *s = calloc(1, sizeof(*s));
	struct dirent *e;
	DIR *d = NULL;
	size_t cap = 0;
	int r = 0;

	if (!s || !(s->dir = strdup(dir))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	d = opendir(dir);
	if (!d) {
		r = err_errno(ERR_NOTFOUND, errno, "cannot read toolchains directory '%s'", dir);
		goto out;
	}
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char *path;
		if (n < 6 || strcmp(e->d_name + n - 5, ".json") || e->d_name[0] == '.')
			continue;
		if (s->count == cap) {
			struct toolchain *ni = realloc(s->items, (cap = cap ? cap * 2 : 8) * sizeof(*ni));
			if (!ni) {
				r = err_set(ERR_NOMEM, "out of memory");
				goto out;
			}
			s->items = ni;
		}
		memset(&s->items[s->count], 0, sizeof(s->items[0]));
		s->count++;
		path = fs_join(dir, e->d_name);
		r = path ? parse_toolchain(&s->items[s->count - 1], path) : err_set(ERR_NOMEM, "out of memory");
		free(path);
		if (r < 0)
			goto out;
	}
	if (s->count == 0) {
		r = err_set(ERR_NOTFOUND, "no toolchains in '%s'", dir);
		goto out;
	}
	qsort(s->items, s->count, sizeof(*s->items), cmp_isa);
	for (size_t i = 1; i < s->count; i++)
		if (!strcmp(s->items[i].isa, s->items[i - 1].isa)) {
			r = err_set(ERR_INVALID, "toolchains '%s' and '%s' both define ISA '%s'",
				    s->items[i - 1].file, s->items[i].file, s->items[i].isa);
			goto out;
		}
	*out = s;
	s = NULL;
out:
	if (d)
		closedir(d);
	toolchain_set_free(s);
	return r;
}

struct toolchain *toolchain_set_find(const struct toolchain_set *s, const char *isa)
{
	for (size_t i = 0; i < s->count; i++)
		if (!strcmp(s->items[i].isa, isa))
			return &s->items[i];
	return NULL;
}

int toolchain_resolve(struct toolchain **tc, const struct toolchain_level **lvl,
		      const struct toolchain_set *s, const char *spec)
{
	char isa[64];
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	struct toolchain *t;
	struct buf names = BUF_INIT(4096);

	if (n >= sizeof(isa))
		return err_set(ERR_NOTFOUND, "unknown target '%s'", spec);
	memcpy(isa, spec, n);
	isa[n] = '\0';
	t = toolchain_set_find(s, isa);
	if (!t) {
		for (size_t i = 0; i < s->count; i++)
			buf_printf(&names, "%s%s", i ? ", " : "", s->items[i].isa);
		err_set(ERR_NOTFOUND, "unknown target '%s' (ISAs: %s)", spec, buf_str(&names));
		buf_release(&names);
		return ERR_NOTFOUND;
	}
	if (!colon) {
		*tc = t;
		*lvl = &t->levels[0];
		return 0;
	}
	for (size_t i = 0; i < t->nlevels; i++)
		if (!strcmp(t->levels[i].name, colon + 1)) {
			*tc = t;
			*lvl = &t->levels[i];
			return 0;
		}
	for (size_t i = 0; i < t->nlevels; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", t->levels[i].name);
	err_set(ERR_NOTFOUND, "unknown level '%s' for %s (levels: %s)", colon + 1, isa, buf_str(&names));
	buf_release(&names);
	return ERR_NOTFOUND;
}

const char *toolchain_target_name(char *buf, size_t len, const struct toolchain *tc,
				  const struct toolchain_level *lvl)
{
	snprintf(buf, len, "%s:%s", tc->isa, lvl->name);
	return buf;
}

int toolchain_target_matches(const char *pattern, const struct toolchain *tc,
			     const struct toolchain_level *lvl)
{
	size_t n = strlen(tc->isa);

	if (!strcmp(pattern, "*") || !strcmp(pattern, tc->isa))
		return 1;
	return !strncmp(pattern, tc->isa, n) && pattern[n] == ':' && !strcmp(pattern + n + 1, lvl->name);
}

/* Runs cc with one argument and returns its first output line (new). */
static int cc_query(char **out, const char *cc, const char *arg)
{
	static const char *const env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", NULL };
	const char *argv[] = { cc, arg, NULL };
	struct proc_opts o = { .argv = argv, .envp = env, .timeout_ms = 30000 };
	struct proc_result res;
	struct buf b = BUF_INIT(4096);
	char tmpl[] = "/tmp/dispatch-cc-XXXXXX";
	int fd, r;

	fd = mkstemp(tmpl);
	if (fd < 0)
		return err_errno(ERR_IO, errno, "cannot create a temporary file");
	close(fd);
	o.output_path = tmpl;
	r = proc_run(&res, &o);
	if (r == 0 && (res.signaled || res.exit_code != 0))
		r = err_set(ERR_CHILD, "'%s %s' failed", cc, arg);
	if (r == 0 && (r = fs_read_file(&b, tmpl, 4096)) == 0) {
		b.len = strcspn(buf_str(&b), "\n");
		if (b.data)
			b.data[b.len] = '\0';
		*out = buf_detach(&b, NULL);
	}
	unlink(tmpl);
	buf_release(&b);
	return r;
}

/* The cache of identities: { isa: { "files": [[path, size, mtime, ino]], ... } } */
static json_t *stat_list(const char *const *paths)
{
	json_t *a = json_array();

	for (size_t i = 0; a && paths[i]; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_pack("[sIII]", paths[i], (json_int_t)st.st_size,
						   (json_int_t)(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec),
						   (json_int_t)st.st_ino));
	}
	return a;
}

static int cached_identity(struct toolchain *tc, json_t *cache)
{
	json_t *e = json_object_get(cache, tc->isa), *files, *f;
	const char *paths[8] = { 0 };
	json_t *now;
	size_t i;
	int ok;

	if (!e || strcmp(json_string_value(json_object_get(e, "cc")) ?: "", tc->cc_path))
		return 0;
	files = json_object_get(e, "files");
	if (!json_is_array(files) || json_array_size(files) >= 8)
		return 0;
	json_array_foreach(files, i, f)
		paths[i] = json_string_value(json_array_get(f, 0));
	for (i = 0; i < json_array_size(files); i++)
		if (!paths[i])
			return 0;
	now = stat_list(paths);
	ok = now && json_equal(now, files) && digest_is_valid(json_string_value(json_object_get(e, "identity")));
	json_decref(now);
	if (!ok)
		return 0;
	memcpy(tc->identity.hex, json_string_value(json_object_get(e, "identity")), DIGEST_HEX_LEN + 1);
	tc->version = strdup(json_string_value(json_object_get(e, "version")) ?: "?");
	return tc->version != NULL;
}

static int compute_identity(struct toolchain *tc, json_t *cache)
{
	char *machine = NULL, *cc1 = NULL, *real_cc = NULL, *real_cc1 = NULL;
	const char *paths[3];
	digest_ctx *ctx = NULL;
	digest_hex d;
	json_t *files = NULL;
	int r;

	if ((r = cc_query(&tc->version, tc->cc_path, "-dumpfullversion")) < 0 ||
	    (r = cc_query(&machine, tc->cc_path, "-dumpmachine")) < 0 ||
	    (r = cc_query(&cc1, tc->cc_path, "-print-prog-name=cc1")) < 0)
		goto out;
	real_cc = realpath(tc->cc_path, NULL);
	real_cc1 = realpath(cc1, NULL);
	if (!real_cc || !real_cc1) {
		r = err_set(ERR_NOTFOUND, "cannot find the compiler proper of '%s'", tc->cc_path);
		goto out;
	}
	ctx = digest_new();
	if (!ctx) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	digest_update_str(ctx, tc->version);
	digest_update_str(ctx, machine);
	paths[0] = real_cc;
	paths[1] = real_cc1;
	paths[2] = NULL;
	for (int i = 0; paths[i]; i++) {
		if ((r = digest_file(&d, paths[i], NULL)) < 0)
			goto out;
		digest_update_str(ctx, d.hex);
	}
	digest_final(ctx, &tc->identity);
	ctx = NULL;
	files = stat_list(paths);
	if (files)
		json_object_set_new(cache, tc->isa, json_pack("{sssOssss}", "cc", tc->cc_path, "files", files,
							      "version", tc->version, "identity", tc->identity.hex));
out:
	json_decref(files);
	digest_free(ctx);
	free(machine);
	free(cc1);
	free(real_cc);
	free(real_cc1);
	return r;
}

int toolchain_probe(struct toolchain *tc, const char *cache_dir, int may_compute)
{
	char *cache_path = cache_dir ? fs_join(cache_dir, "toolchains.json") : NULL;
	json_t *cache = cache_path ? json_load_file(cache_path, 0, NULL) : NULL;
	int r = 0;

	if (tc->probed)
		goto out;
	tc->probed = 1;
	if (!cache || !json_is_object(cache)) {
		json_decref(cache);
		cache = json_object();
	}
	tc->cc_path = proc_which(tc->cc, NULL);
	if (!tc->cc_path) {
		char why[256];
		snprintf(why, sizeof(why), "compiler '%s' not found (apt-get install %s)", tc->cc, tc->package);
		tc->why = strdup(why);
		goto out;
	}
	if (cached_identity(tc, cache)) {
		tc->available = 1;
		goto out;
	}
	if (!may_compute) {
		free(tc->cc_path);
		tc->cc_path = NULL;
		tc->probed = 0;
		goto out;
	}
	if (compute_identity(tc, cache) < 0) {
		tc->why = strdup(err_msg());
		goto out;
	}
	tc->available = 1;
	if (cache_path) {
		char *text = json_dumps(cache, JSON_INDENT(1) | JSON_SORT_KEYS);
		if (text && fs_mkdir_p(cache_dir, 0755) == 0)
			fs_write_atomic(cache_path, text, strlen(text), 0644);
		free(text);
	}
out:
	json_decref(cache);
	free(cache_path);
	return r;
}
