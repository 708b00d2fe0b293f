/*
 * fuzz_manifest.c - manifest_load_string() on arbitrary bytes.
 *
 * Besides "no crash, no leak, no undefined behaviour" it checks what
 * manifest.h promises: a failure returns a known negative code with a
 * message and leaves *out alone; a success yields a manifest whose fields
 * are all valid, and that loads again, to the same build identities, from
 * its own re-serialised document.
 */
#include <string.h>

#include <jansson.h>

#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "fuzz.h"
#include "manifest.h"

#define BASE_DIR "/nonexistent"
#define WHAT "fuzz"

static int is_abs_or_http(const char *s)
{
	return s[0] == '/' || !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

static void check_vec(char **v, const char *what, size_t i)
{
	if (!v)
		fuzz_fail("objects[%zu].%s: NULL vector", i, what);
	for (; *v; v++)
		if (!**v)
			fuzz_fail("objects[%zu].%s: empty string", i, what);
}

static void check_object(const struct manifest_object *o, size_t i)
{
	const struct manifest_source *s = &o->source;
	const struct manifest_build *b = &o->build;

	if (!o->name || !manifest_name_is_valid(o->name))
		fuzz_fail("objects[%zu].name: invalid name accepted", i);
	if (!o->entry || !manifest_name_is_valid(o->entry))
		fuzz_fail("objects[%zu].entry: invalid entry accepted", i);
	if (o->instances < 1 || o->instances > MANIFEST_MAX_INSTANCES)
		fuzz_fail("objects[%zu].instances: %d out of range", i, o->instances);
	if (o->state && !json_is_object(o->state))
		fuzz_fail("objects[%zu].state: not an object", i);
	if (!o->build_json)
		fuzz_fail("objects[%zu]: no build_json", i);
	check_vec(o->args, "args", i);
	check_vec(o->targets, "targets", i);
	if (!o->targets[0])
		fuzz_fail("objects[%zu].targets: empty", i);

	switch (s->kind) {
	case SOURCE_PATH:
		if (!s->path || s->path[0] != '/')
			fuzz_fail("objects[%zu].source.path: not absolute after resolution", i);
		break;
	case SOURCE_GIT:
		if (!s->git || !s->rev || s->rev[0] == '-')
			fuzz_fail("objects[%zu].source: bad git source accepted", i);
		break;
	case SOURCE_ARCHIVE:
		if (!s->archive || !is_abs_or_http(s->archive))
			fuzz_fail("objects[%zu].source.archive: neither absolute nor http(s)", i);
		if (!s->sha256 || !digest_is_valid(s->sha256))
			fuzz_fail("objects[%zu].source.sha256: invalid digest accepted", i);
		if (s->strip < 0 || s->strip > 16)
			fuzz_fail("objects[%zu].source.strip: %d out of range", i, s->strip);
		break;
	default:
		fuzz_fail("objects[%zu].source: unknown kind %d", i, (int)s->kind);
	}

	check_vec(b->sources, "build.sources", i);
	check_vec(b->include, "build.include", i);
	check_vec(b->defines, "build.defines", i);
	check_vec(b->cflags, "build.cflags", i);
	check_vec(b->ldflags, "build.ldflags", i);
	check_vec(b->libs, "build.libs", i);
	check_vec(b->argv, "build.argv", i);
	for (char **p = b->sources; *p; p++)
		if (!fs_rel_is_safe(*p))
			fuzz_fail("objects[%zu].build.sources: unsafe path '%s' accepted", i, *p);
	for (char **p = b->include; *p; p++)
		if (!fs_rel_is_safe(*p))
			fuzz_fail("objects[%zu].build.include: unsafe path '%s' accepted", i, *p);
	if (b->recipe == RECIPE_C && !b->sources[0])
		fuzz_fail("objects[%zu].build.sources: empty for recipe c", i);
	if (b->recipe == RECIPE_COMMAND && !b->argv[0])
		fuzz_fail("objects[%zu].build.argv: empty for recipe command", i);
	if (b->recipe != RECIPE_C && !b->output)
		fuzz_fail("objects[%zu].build.output: missing for recipe %s", i,
			  manifest_recipe_name(b->recipe));
	if (b->output && !fs_rel_is_safe(b->output))
		fuzz_fail("objects[%zu].build.output: unsafe path '%s' accepted", i, b->output);
	if (b->dir && !fs_rel_is_safe(b->dir))
		fuzz_fail("objects[%zu].build.dir: unsafe path '%s' accepted", i, b->dir);
	if (b->nvars && !b->vars)
		fuzz_fail("objects[%zu].build: nvars without vars", i);
	for (size_t k = 0; k < b->nvars; k++)
		if (!b->vars[k].key || !b->vars[k].value)
			fuzz_fail("objects[%zu].build.vars[%zu]: NULL key or value", i, k);
}

static void check_manifest(const struct manifest *m)
{
	if (!m || !m->name || !manifest_name_is_valid(m->name))
		fuzz_fail("manifest: missing or invalid name accepted");
	if (!m->dir || strcmp(m->dir, BASE_DIR))
		fuzz_fail("manifest: dir is '%s', not the base dir", m->dir ? m->dir : "(null)");
	if (!json_is_object(m->doc))
		fuzz_fail("manifest: doc is not an object");
	if (m->nobjects < 1 || m->nobjects > MANIFEST_MAX_OBJECTS)
		fuzz_fail("manifest: %zu objects", m->nobjects);
	for (size_t i = 0; i < m->nobjects; i++) {
		check_object(&m->objects[i], i);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m->objects[i].name, m->objects[j].name))
				fuzz_fail("objects[%zu]: duplicate name '%s' accepted", i, m->objects[i].name);
	}
}

/*
 * The document, dumped and loaded again, must give the same objects and the
 * same build identities: build_json keys the build cache.
 */
static void check_round_trip(const struct manifest *m)
{
	struct manifest *again = NULL;
	char *text = json_dumps(m->doc, JSON_COMPACT);
	int r;

	if (!text)
		return; /* out of memory */
	r = manifest_load_string(&again, text, strlen(text), BASE_DIR, WHAT);
	if (r == ERR_LIMIT || r == ERR_NOMEM)
		goto out;
	if (r < 0)
		fuzz_fail("re-serialised manifest fails to load: %s", err_msg());
	if (again->nobjects != m->nobjects)
		fuzz_fail("re-serialised manifest: %zu objects, not %zu", again->nobjects, m->nobjects);
	for (size_t i = 0; i < m->nobjects; i++)
		if (strcmp(again->objects[i].build_json, m->objects[i].build_json))
			fuzz_fail("objects[%zu]: build_json changed on reload:\n  %s\n  %s", i,
				  m->objects[i].build_json, again->objects[i].build_json);
out:
	manifest_free(again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct manifest sentinel;
	struct manifest *m = &sentinel;
	int r;

	err_clear();
	r = manifest_load_string(&m, (const char *)data, size, BASE_DIR, WHAT);
	fuzz_report(r);
	if (r < 0) {
		if (r != ERR_INVALID && r != ERR_LIMIT && r != ERR_NOMEM)
			fuzz_fail("unexpected error code %d (%s): %s", r, err_name(r), err_msg());
		if (m != &sentinel)
			fuzz_fail("*out written on failure: %s", err_msg());
		if (strncmp(err_msg(), WHAT ": ", strlen(WHAT ": ")))
			fuzz_fail("error message without the 'what' prefix: '%s'", err_msg());
		return 0;
	}
	if (r != 0)
		fuzz_fail("positive return %d", r);
	check_manifest(m);
	check_round_trip(m);
	manifest_free(m);
	return 0;
}
