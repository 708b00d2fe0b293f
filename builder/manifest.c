/* manifest.c - manifest v1 parsing and validation with JSON-path errors. */
#include "manifest.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "error.h"
#include "fsutil.h"

#define PATH_LEN 160 /* JSON paths in messages */
#define STRING_MAX 4096
#define VECTOR_MAX 4096

/* Formats a child JSON path: "objects[1]" + "build" -> "objects[1].build". */
static void sub_key(char *out, const char *path, const char *key)
{
	if (snprintf(out, PATH_LEN, "%s%s%s", path, path[0] ? "." : "", key) >= PATH_LEN)
		out[PATH_LEN - 1] = '\0'; /* a long path is cut, the message stays useful */
}

static void sub_index(char *out, const char *path, size_t i)
{
	if (snprintf(out, PATH_LEN, "%s[%zu]", path, i) >= PATH_LEN)
		out[PATH_LEN - 1] = '\0';
}

/* A validation error at path; fmt takes the offending value. */
#define bad(path, fmt, detail) err_set(ERR_INVALID, "%s: " fmt, (path), (detail))

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

/* Unknown keys are errors: a typo must not be silently ignored. */
static int check_keys(const json_t *obj, const char *path, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(*a, key);
		if (!ok) {
			char p[PATH_LEN];
			sub_key(p, path, key);
			return err_set(ERR_INVALID, "%s: unknown key", p);
		}
	}
	return 0;
}

static int get_string(char **out, const json_t *obj, const char *key, const char *path, int required)
{
	json_t *v = json_object_get(obj, key);
	char p[PATH_LEN];

	sub_key(p, path, key);
	if (!v) {
		if (required)
			return err_set(ERR_INVALID, "%s: missing (expected a string)", p);
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return err_set(ERR_INVALID, "%s: expected a string, got %s", p, type_name(v));
	if (json_string_length(v) == 0)
		return err_set(ERR_INVALID, "%s: must not be empty", p);
	if (json_string_length(v) > STRING_MAX)
		return err_set(ERR_INVALID, "%s: longer than %d bytes", p, STRING_MAX);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return err_set(ERR_INVALID, "%s: contains a NUL byte", p);
	*out = strdup(json_string_value(v));
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

enum vec_check { VEC_ANY, VEC_RELPATH, VEC_DEFINE, VEC_LIBNAME };

static int check_item(const char *s, enum vec_check check, const char *p)
{
	switch (check) {
	case VEC_ANY:
		return 0;
	case VEC_RELPATH:
		if (!fs_rel_is_safe(s))
			return bad(p, "'%s' is not a relative path inside the source tree", s);
		return 0;
	case VEC_DEFINE:
		if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
			return bad(p, "'%s' is not NAME or NAME=VALUE", s);
		for (const char *c = s; *c && *c != '='; c++)
			if (!(isalnum((unsigned char)*c) || *c == '_'))
				return bad(p, "'%s' is not NAME or NAME=VALUE", s);
		return 0;
	case VEC_LIBNAME:
		for (const char *c = s; *c; c++)
			if (!(isalnum((unsigned char)*c) || strchr("_+.-", *c)) || s[0] == '-')
				return bad(p, "'%s' is not a library name", s);
		return 0;
	}
	return 0;
}

static void vec_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Reads an optional array of strings; absent gives an empty vector. */
static int get_vec(char ***out, const json_t *obj, const char *key, const char *path,
		   int required, int nonempty, enum vec_check check)
{
	json_t *v = json_object_get(obj, key), *item;
	char p[PATH_LEN], pi[PATH_LEN];
	char **vec = NULL;
	size_t i, n;
	int r = 0;

	sub_key(p, path, key);
	if (!v && required)
		return err_set(ERR_INVALID, "%s: missing (expected an array of strings)", p);
	if (v && !json_is_array(v))
		return err_set(ERR_INVALID, "%s: expected an array of strings, got %s", p, type_name(v));
	n = v ? json_array_size(v) : 0;
	if (n == 0 && nonempty && v)
		return err_set(ERR_INVALID, "%s: must not be empty", p);
	if (n > VECTOR_MAX)
		return err_set(ERR_INVALID, "%s: more than %d items", p, VECTOR_MAX);
	vec = calloc(n + 1, sizeof(*vec));
	if (!vec)
		return err_set(ERR_NOMEM, "out of memory");
	json_array_foreach(v, i, item) {
		sub_index(pi, p, i);
		if (!json_is_string(item)) {
			r = err_set(ERR_INVALID, "%s: expected an array of strings, got %s in it", p,
				    type_name(item));
			goto out;
		}
		if (json_string_length(item) == 0 || json_string_length(item) > STRING_MAX ||
		    strlen(json_string_value(item)) != json_string_length(item)) {
			r = err_set(ERR_INVALID, "%s: must be a non-empty string without NUL bytes", pi);
			goto out;
		}
		if ((r = check_item(json_string_value(item), check, pi)) < 0)
			goto out;
		if (!(vec[i] = strdup(json_string_value(item)))) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	*out = vec;
	vec = NULL;
out:
	vec_free(vec);
	return r;
}

static int get_int(int *out, const json_t *obj, const char *key, const char *path,
		   long long lo, long long hi, int dflt)
{
	json_t *v = json_object_get(obj, key);
	char p[PATH_LEN];

	sub_key(p, path, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v))
		return err_set(ERR_INVALID, "%s: expected an integer, got %s", p, type_name(v));
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return err_set(ERR_INVALID, "%s: must be between %lld and %lld", p, lo, hi);
	*out = (int)json_integer_value(v);
	return 0;
}

static int get_bool(int *out, const json_t *obj, const char *key, const char *path, int dflt)
{
	json_t *v = json_object_get(obj, key);
	char p[PATH_LEN];

	sub_key(p, path, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_boolean(v))
		return err_set(ERR_INVALID, "%s: expected a boolean, got %s", p, type_name(v));
	*out = json_is_true(v);
	return 0;
}

static int is_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) ||
	       !strncmp(s, "file://", 7) || !strncmp(s, "ssh://", 6) || !strncmp(s, "git://", 6);
}

/* Resolves a manifest-relative path to an absolute one (new string). */
static int resolve(char **p, const char *base)
{
	char *abs;

	if (**p == '/' || is_url(*p))
		return 0;
	abs = fs_join(base, *p);
	if (!abs)
		return err_set(ERR_NOMEM, "out of memory");
	free(*p);
	*p = abs;
	return 0;
}

static int parse_source(struct manifest_source *s, const json_t *v, const char *path,
			const char *base)
{
	static const char *const path_keys[] = { "path", NULL };
	static const char *const git_keys[] = { "git", "rev", NULL };
	static const char *const archive_keys[] = { "archive", "sha256", "strip", NULL };
	char p[PATH_LEN];
	int r, kinds;

	if (!v)
		return err_set(ERR_INVALID, "%s.source: missing (expected an object)", path);
	sub_key(p, path, "source");
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: expected an object, got %s", p, type_name(v));
	kinds = !!json_object_get(v, "path") + !!json_object_get(v, "git") +
		!!json_object_get(v, "archive");
	if (kinds != 1)
		return err_set(ERR_INVALID, "%s: needs exactly one of \"path\", \"git\" or \"archive\"", p);
	if (json_object_get(v, "path")) {
		s->kind = SOURCE_PATH;
		if ((r = check_keys(v, p, path_keys)) < 0 || (r = get_string(&s->path, v, "path", p, 1)) < 0)
			return r;
		if (is_url(s->path))
			return err_set(ERR_INVALID, "%s.path: expected a directory, not a URL", p);
		return resolve(&s->path, base);
	}
	if (json_object_get(v, "git")) {
		s->kind = SOURCE_GIT;
		if ((r = check_keys(v, p, git_keys)) < 0 || (r = get_string(&s->git, v, "git", p, 1)) < 0 ||
		    (r = get_string(&s->rev, v, "rev", p, 1)) < 0)
			return r;
		if (s->rev[0] == '-')
			return err_set(ERR_INVALID, "%s.rev: '%s' is not a revision", p, s->rev);
		return resolve(&s->git, base);
	}
	s->kind = SOURCE_ARCHIVE;
	if ((r = check_keys(v, p, archive_keys)) < 0 ||
	    (r = get_string(&s->archive, v, "archive", p, 1)) < 0 ||
	    (r = get_string(&s->sha256, v, "sha256", p, 1)) < 0 ||
	    (r = get_int(&s->strip, v, "strip", p, 0, 16, 0)) < 0)
		return r;
	for (char *c = s->sha256; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!digest_is_valid(s->sha256))
		return err_set(ERR_INVALID, "%s.sha256: expected 64 hex digits", p);
	if (is_url(s->archive) && strncmp(s->archive, "http://", 7) && strncmp(s->archive, "https://", 8))
		return err_set(ERR_INVALID, "%s.archive: only http(s) URLs or paths are supported", p);
	return resolve(&s->archive, base);
}

static int parse_kv(struct manifest_kv **out, size_t *n, const json_t *obj, const char *key,
		    const char *path)
{
	json_t *v = json_object_get(obj, key), *val;
	char p[PATH_LEN], pk[PATH_LEN];
	const char *k;
	size_t i = 0;
	struct manifest_kv *kv;

	sub_key(p, path, key);
	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: expected an object, got %s", p, type_name(v));
	kv = calloc(json_object_size(v) + 1, sizeof(*kv));
	if (!kv)
		return err_set(ERR_NOMEM, "out of memory");
	*out = kv;
	json_object_foreach(v, k, val) {
		sub_key(pk, p, k);
		if (!*k || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(k))
			return err_set(ERR_INVALID, "%s: '%s' is not a variable name", p, k);
		kv[i].key = strdup(k);
		*n = i + 1; /* owned from here on, freed with the manifest */
		if (json_is_string(val))
			kv[i].value = strdup(json_string_value(val));
		else if (json_is_boolean(val))
			kv[i].value = strdup(json_is_true(val) ? "ON" : "OFF");
		else if (json_is_integer(val)) {
			char num[32];
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
			kv[i].value = strdup(num);
		} else
			return err_set(ERR_INVALID, "%s: expected a string, number or boolean, got %s", pk,
				       type_name(val));
		i++;
		if (!kv[i - 1].key || !kv[i - 1].value)
			return err_set(ERR_NOMEM, "out of memory");
	}
	return 0;
}

static int parse_build(struct manifest_build *b, const json_t *v, const char *path)
{
	static const char *const c_keys[] = { "recipe", "sources", "include", "defines", "cflags",
					      "ldflags", "libs", "static", NULL };
	static const char *const make_keys[] = { "recipe", "dir", "target", "vars", "output", "static", NULL };
	static const char *const cmake_keys[] = { "recipe", "dir", "target", "options", "output", "static", NULL };
	static const char *const cmd_keys[] = { "recipe", "argv", "output", "static", NULL };
	char p[PATH_LEN];
	char *recipe = NULL;
	int r;

	sub_key(p, path, "build");
	if (!v)
		return err_set(ERR_INVALID, "%s: missing (expected an object)", p);
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: expected an object, got %s", p, type_name(v));
	if ((r = get_string(&recipe, v, "recipe", p, 1)) < 0)
		return r;
	if (!strcmp(recipe, "c"))
		b->recipe = RECIPE_C;
	else if (!strcmp(recipe, "make"))
		b->recipe = RECIPE_MAKE;
	else if (!strcmp(recipe, "cmake"))
		b->recipe = RECIPE_CMAKE;
	else if (!strcmp(recipe, "command"))
		b->recipe = RECIPE_COMMAND;
	else {
		r = err_set(ERR_INVALID, "%s.recipe: unknown recipe '%s' (expected c, make, cmake or command)",
			    p, recipe);
		free(recipe);
		return r;
	}
	free(recipe);
	if ((r = get_bool(&b->static_link, v, "static", p, 1)) < 0)
		return r;
	/* Every vector exists, so the recipe code never checks for NULL. */
	switch (b->recipe) {
	case RECIPE_C:
		if ((r = check_keys(v, p, c_keys)) < 0 ||
		    (r = get_vec(&b->sources, v, "sources", p, 1, 1, VEC_RELPATH)) < 0 ||
		    (r = get_vec(&b->include, v, "include", p, 0, 0, VEC_RELPATH)) < 0 ||
		    (r = get_vec(&b->defines, v, "defines", p, 0, 0, VEC_DEFINE)) < 0 ||
		    (r = get_vec(&b->cflags, v, "cflags", p, 0, 0, VEC_ANY)) < 0 ||
		    (r = get_vec(&b->ldflags, v, "ldflags", p, 0, 0, VEC_ANY)) < 0 ||
		    (r = get_vec(&b->libs, v, "libs", p, 0, 0, VEC_LIBNAME)) < 0)
			return r;
		break;
	case RECIPE_MAKE:
	case RECIPE_CMAKE:
		if ((r = check_keys(v, p, b->recipe == RECIPE_MAKE ? make_keys : cmake_keys)) < 0 ||
		    (r = get_string(&b->dir, v, "dir", p, 0)) < 0 ||
		    (r = get_string(&b->target, v, "target", p, 0)) < 0 ||
		    (r = parse_kv(&b->vars, &b->nvars, v, b->recipe == RECIPE_MAKE ? "vars" : "options", p)) < 0 ||
		    (r = get_string(&b->output, v, "output", p, 1)) < 0)
			return r;
		if (b->dir && !fs_rel_is_safe(b->dir))
			return err_set(ERR_INVALID, "%s.dir: '%s' is not a relative path inside the source tree",
				       p, b->dir);
		if (b->target && b->target[0] == '-')
			return err_set(ERR_INVALID, "%s.target: '%s' is not a target name", p, b->target);
		break;
	case RECIPE_COMMAND:
		if ((r = check_keys(v, p, cmd_keys)) < 0 ||
		    (r = get_vec(&b->argv, v, "argv", p, 1, 1, VEC_ANY)) < 0 ||
		    (r = get_string(&b->output, v, "output", p, 1)) < 0)
			return r;
		break;
	}
	if (b->output && !fs_rel_is_safe(b->output))
		return err_set(ERR_INVALID, "%s.output: '%s' is not a relative path inside the build tree",
			       p, b->output);
	/* Vectors a recipe does not use are still valid, empty vectors. */
	char ***vecs[] = { &b->sources, &b->include, &b->defines, &b->cflags, &b->ldflags, &b->libs, &b->argv };
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++)
		if (!*vecs[i] && !(*vecs[i] = calloc(1, sizeof(char *))))
			return err_set(ERR_NOMEM, "out of memory");
	return 0;
}

static int check_targets(char **targets, const char *path)
{
	char p[PATH_LEN];

	for (size_t i = 0; targets[i]; i++) {
		const char *t = targets[i];
		sub_index(p, path, i);
		if (!strcmp(t, "*"))
			continue;
		for (const char *c = t; *c; c++)
			if (!(isalnum((unsigned char)*c) || strchr("_.:+-", *c)))
				return err_set(ERR_INVALID, "%s: '%s' is not a target (ISA or ISA:LEVEL)", p, t);
		if (t[0] == ':' || strchr(t, ':') != strrchr(t, ':') || t[strlen(t) - 1] == ':')
			return err_set(ERR_INVALID, "%s: '%s' is not a target (ISA or ISA:LEVEL)", p, t);
	}
	return 0;
}

int manifest_name_is_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || !isalnum((unsigned char)name[0]))
		return 0;
	for (const char *c = name; *c; c++)
		if (!(isalnum((unsigned char)*c) || strchr("._+-", *c)))
			return 0;
	return 1;
}

static int parse_object(struct manifest_object *o, const json_t *v, const char *path, const char *base)
{
	static const char *const keys[] = { "name", "source", "build", "entry", "args", "instances",
					    "state", "targets", "sdk", "fork", "checkpoint", NULL };
	static const char *const ckpt_keys[] = { "interval_s", NULL };
	json_t *canon = NULL;
	int r;

	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: expected an object, got %s", path, type_name(v));
	if ((r = check_keys(v, path, keys)) < 0 || (r = get_string(&o->name, v, "name", path, 1)) < 0)
		return r;
	if (!manifest_name_is_valid(o->name))
		return err_set(ERR_INVALID, "%s.name: '%s' is not a valid name (letters, digits, '.', '_', '+', '-'; "
			       "at most 64; starts with a letter or digit)", path, o->name);
	if ((r = parse_source(&o->source, json_object_get(v, "source"), path, base)) < 0 ||
	    (r = parse_build(&o->build, json_object_get(v, "build"), path)) < 0 ||
	    (r = get_string(&o->entry, v, "entry", path, 0)) < 0 ||
	    (r = get_vec(&o->args, v, "args", path, 0, 0, VEC_ANY)) < 0 ||
	    (r = get_int(&o->instances, v, "instances", path, 1, MANIFEST_MAX_INSTANCES, 1)) < 0 ||
	    (r = get_vec(&o->targets, v, "targets", path, 0, 1, VEC_ANY)) < 0 ||
	    (r = get_bool(&o->sdk, v, "sdk", path, 0)) < 0 ||
	    (r = get_int(&o->fork, v, "fork", path, 1, MANIFEST_MAX_INSTANCES, 0)) < 0)
		return r;
	if (o->fork && json_object_get(v, "instances"))
		return err_set(ERR_INVALID, "%s.fork: give \"fork\" or \"instances\", not both", path);
	if (o->fork)
		o->instances = o->fork;
	if (json_object_get(v, "checkpoint")) {
		json_t *ck = json_object_get(v, "checkpoint");
		char p[PATH_LEN];
		sub_key(p, path, "checkpoint");
		if (!json_is_object(ck))
			return err_set(ERR_INVALID, "%s: expected an object, got %s", p, type_name(ck));
		if ((r = check_keys(ck, p, ckpt_keys)) < 0 ||
		    (r = get_int(&o->checkpoint_s, ck, "interval_s", p, 1, 86400, 0)) < 0)
			return r;
		if (!o->checkpoint_s)
			return err_set(ERR_INVALID, "%s.interval_s: missing (expected seconds)", p);
	}
	if (o->entry && !manifest_name_is_valid(o->entry))
		return err_set(ERR_INVALID, "%s.entry: '%s' is not a valid file name", path, o->entry);
	if (!o->entry && !(o->entry = strdup(o->name)))
		return err_set(ERR_NOMEM, "out of memory");
	if (!o->targets[0]) {
		free(o->targets);
		o->targets = calloc(2, sizeof(char *));
		if (!o->targets || !(o->targets[0] = strdup("*")))
			return err_set(ERR_NOMEM, "out of memory");
	} else {
		char p[PATH_LEN];
		sub_key(p, path, "targets");
		if ((r = check_targets(o->targets, p)) < 0)
			return r;
	}
	o->state = json_object_get(v, "state");
	if (o->state && !json_is_object(o->state))
		return err_set(ERR_INVALID, "%s.state: expected an object, got %s", path, type_name(o->state));
	/* What determines the build: the build section and the entry name. */
	canon = json_pack("{sOsssb}", "build", json_object_get(v, "build"), "entry", o->entry, "sdk", o->sdk);
	o->build_json = canon ? json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(canon);
	return o->build_json ? 0 : err_set(ERR_NOMEM, "out of memory");
}

static void object_release(struct manifest_object *o)
{
	struct manifest_build *b = &o->build;

	free(o->name);
	free(o->source.path);
	free(o->source.git);
	free(o->source.rev);
	free(o->source.archive);
	free(o->source.sha256);
	vec_free(b->sources);
	vec_free(b->include);
	vec_free(b->defines);
	vec_free(b->cflags);
	vec_free(b->ldflags);
	vec_free(b->libs);
	vec_free(b->argv);
	free(b->dir);
	free(b->target);
	free(b->output);
	for (size_t i = 0; b->vars && i < b->nvars; i++) {
		free(b->vars[i].key);
		free(b->vars[i].value);
	}
	free(b->vars);
	free(o->entry);
	vec_free(o->args);
	vec_free(o->targets);
	free(o->build_json);
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nobjects; i++)
		object_release(&m->objects[i]);
	free(m->objects);
	free(m->name);
	free(m->dir);
	json_decref(m->doc);
	free(m);
}

int manifest_load_string(struct manifest **out, const char *text, size_t len,
			 const char *base_dir, const char *what)
{
	static const char *const keys[] = { "manifest", "name", "objects", NULL };
	struct manifest *m = NULL;
	json_error_t jerr;
	json_t *objs, *v;
	int r = 0, version = 0;
	size_t i;

	if (len > MANIFEST_MAX_BYTES)
		return err_set(ERR_LIMIT, "%s: larger than %u bytes", what ? what : "manifest",
			       MANIFEST_MAX_BYTES);
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(ERR_NOMEM, "out of memory");
	m->doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!m->doc) {
		r = err_set(ERR_INVALID, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(m->doc)) {
		r = err_set(ERR_INVALID, "expected a JSON object at the top, got %s", type_name(m->doc));
		goto out;
	}
	if ((r = check_keys(m->doc, "", keys)) < 0)
		goto out;
	v = json_object_get(m->doc, "manifest");
	if (!v) {
		r = err_set(ERR_INVALID, "manifest: missing (expected the format version, 1)");
		goto out;
	}
	if ((r = get_int(&version, m->doc, "manifest", "", 1, INT_MAX, 1)) < 0)
		goto out;
	if (version != 1) {
		r = err_set(ERR_INVALID, "manifest: version %d is not supported (this dispatch reads 1)", version);
		goto out;
	}
	if ((r = get_string(&m->name, m->doc, "name", "", 1)) < 0)
		goto out;
	if (!manifest_name_is_valid(m->name)) {
		r = err_set(ERR_INVALID, "name: '%s' is not a valid name", m->name);
		goto out;
	}
	objs = json_object_get(m->doc, "objects");
	if (!objs || !json_is_array(objs)) {
		r = err_set(ERR_INVALID, "objects: %s", objs ? "expected an array of objects" : "missing (expected an array of objects)");
		goto out;
	}
	if (json_array_size(objs) == 0 || json_array_size(objs) > MANIFEST_MAX_OBJECTS) {
		r = err_set(ERR_INVALID, "objects: expected 1 to %d objects", MANIFEST_MAX_OBJECTS);
		goto out;
	}
	if (!(m->dir = strdup(base_dir)) ||
	    !(m->objects = calloc(json_array_size(objs), sizeof(*m->objects)))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(objs, i, v) {
		char p[PATH_LEN];
		sub_index(p, "objects", i);
		m->nobjects = i + 1;
		if ((r = parse_object(&m->objects[i], v, p, base_dir)) < 0)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->objects[j].name, m->objects[i].name)) {
				r = err_set(ERR_INVALID, "%s.name: '%s' is already the name of objects[%zu]", p,
					    m->objects[i].name, j);
				goto out;
			}
	}
	*out = m;
	m = NULL;
out:
	manifest_free(m);
	if (r < 0 && what)
		err_prefix(r, "%s", what);
	return r;
}

int manifest_load_file(struct manifest **out, const char *path)
{
	struct buf b = BUF_INIT(MANIFEST_MAX_BYTES);
	char *abs = NULL, *dir;
	int r;

	if ((r = fs_read_file(&b, path, MANIFEST_MAX_BYTES)) < 0) {
		r = err_prefix(r, "cannot read manifest '%s'", path);
		goto out;
	}
	abs = realpath(path, NULL);
	if (!abs) {
		r = err_set(ERR_IO, "cannot resolve '%s'", path);
		goto out;
	}
	dir = strrchr(abs, '/');
	if (dir == abs)
		dir[1] = '\0';
	else
		*dir = '\0';
	r = manifest_load_string(out, buf_str(&b), b.len, abs, path);
out:
	free(abs);
	buf_release(&b);
	return r;
}

const char *manifest_recipe_name(enum recipe_kind k)
{
	static const char *const names[] = { "c", "make", "cmake", "command" };

	return names[k];
}
