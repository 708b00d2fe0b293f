/* builder.c - the build matrix: plan, cache lookups, a pool of workers. */
#include "builder.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "artifact.h"
#include "error.h"
#include "fsutil.h"
#include "recipe.h"
#include "source.h"
#include "tree.h"

#ifndef DISPATCH_SDK_SOURCE_DIR
#define DISPATCH_SDK_SOURCE_DIR "sdk"
#endif
#ifndef DISPATCH_INSTALLED_SDK_DIR
#define DISPATCH_INSTALLED_SDK_DIR "/usr/local/share/dispatch/sdk"
#endif

#define CACHE_FORMAT "dispatch-build-1"
#define LOG_TAIL_BYTES 3000
#define JOBS_MAX 256
/* What a cached_only run looks at before it leaves the rest to a real build. */
#define CACHED_ONLY_OBJECTS 64
#define CACHED_ONLY_SOURCE_BYTES (4u << 20) /* per distinct path source */

/* Per object: its source is identified once and materialized at most once. */
struct object_state {
	pthread_mutex_t lock;
	int identified;       /* 1 ok, -1 failed */
	digest_hex source_id;
	char *error;
	int materialized;     /* 0 not yet, 1 ok, -1 failed */
	char *src_dir;
};

struct run {
	const struct manifest *m;
	const struct builder_opts *o;
	struct build_report *rep;
	struct object_state *objs;
	cas *store;
	struct source_ctx sctx;
	char *cache_dir, *keys_dir, *logs_dir;
	char *work_base;      /* made by the first build that needs it (base_lock): a cached build makes none */
	pthread_mutex_t base_lock;
	const char *sdk_dir;  /* NULL when not installed */
	digest_hex sdk_id;
	uid_t uid;
	gid_t gid;
	size_t next;          /* next result to build, under lock */
	int finished_workers;
	pthread_mutex_t lock; /* the report and next */
	pthread_cond_t done;
};

/* The directory build trees live in, made on first use; NULL with the error recorded. */
static const char *work_base(struct run *run)
{
	const char *tmp = getenv("TMPDIR");
	int r = 0;

	pthread_mutex_lock(&run->base_lock);
	/* Under TMPDIR, where an unprivileged build user can reach them. */
	if (!run->work_base && (r = fs_mkdtemp(&run->work_base, tmp && *tmp ? tmp : "/tmp", "dispatch-build")) == 0)
		chmod(run->work_base, 0711); /* build users may enter their own directories, not list others' */
	pthread_mutex_unlock(&run->base_lock);
	return r < 0 ? NULL : run->work_base;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *builder_default_cache_dir(void)
{
	static char path[4096];
	const char *env = getenv("DISPATCH_CACHE"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (env && *env)
		return env;
	if (xdg && *xdg)
		snprintf(path, sizeof(path), "%s/dispatch", xdg);
	else
		snprintf(path, sizeof(path), "%s/.cache/dispatch", home && *home ? home : "/tmp");
	return path;
}

const char *builder_default_sdk_dir(void)
{
	const char *env = getenv("DISPATCH_SDK");
	struct stat st;

	if (env && *env)
		return env;
	if (stat(DISPATCH_SDK_SOURCE_DIR "/dispatch.c", &st) == 0)
		return DISPATCH_SDK_SOURCE_DIR;
	return DISPATCH_INSTALLED_SDK_DIR;
}

const char *build_state_name(enum build_state s)
{
	static const char *const names[] = { "pending", "running", "built", "cached", "failed" };

	return names[s];
}

int builder_open_store(cas **out, const char *cache_dir)
{
	char *root = fs_join(cache_dir, "cas");
	int r;

	if (!root)
		return err_set(ERR_NOMEM, "out of memory");
	r = cas_open(out, root);
	free(root);
	return r;
}

void build_report_free(struct build_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->count; i++) {
		free(rep->results[i].path);
		free(rep->results[i].message);
		free(rep->results[i].note);
	}
	free(rep->results);
	toolchain_set_free(rep->toolchains);
	free(rep);
}

static void notify(struct run *run, const struct build_result *changed)
{
	if (run->o->progress)
		run->o->progress(run->o->progress_data, run->rep, changed);
}

/* Records the outcome of one result; called with run->lock held. */
static void settle(struct run *run, struct build_result *res, enum build_state st, const char *msg)
{
	res->state = st;
	if (msg && !res->message)
		res->message = strdup(msg);
	if (st == BUILD_BUILT)
		run->rep->built++;
	else if (st == BUILD_CACHED)
		run->rep->cached++;
	else if (st == BUILD_FAILED)
		run->rep->failed++;
}

static void finish(struct run *run, struct build_result *res, enum build_state st, const char *msg)
{
	settle(run, res, st, msg);
	notify(run, res);
}

static char *key_path(const struct run *run, const char *key)
{
	size_t n = strlen(run->keys_dir) + 80;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%.2s/%s.json", run->keys_dir, key, key);
	return p;
}

static void compute_key(struct build_result *res, const digest_hex *source_id, const digest_hex *sdk_id)
{
	digest_ctx *d = digest_new();

	if (!d)
		return;
	digest_update_str(d, CACHE_FORMAT);
	digest_update_str(d, source_id->hex);
	digest_update_str(d, res->object->build_json);
	digest_update_str(d, res->tc->file_digest.hex);
	digest_update_str(d, res->tc->identity.hex);
	digest_update_str(d, res->level->name);
	if (res->object->sdk)
		digest_update_str(d, sdk_id->hex);
	digest_final(d, &res->key);
}

/*
 * Looks the key up. A hit needs the index entry and an artifact that
 * still matches its digest; a corrupt artifact is moved aside and the
 * pair is rebuilt.
 */
static int cache_lookup(struct run *run, struct build_result *res)
{
	char *path = key_path(run, res->key.hex);
	json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
	const char *art = json_string_value(json_object_get(doc, "artifact"));
	uint64_t size = 0;
	int hit = 0, r;

	if (art && digest_is_valid(art)) {
		r = cas_verify(run->store, art, &size);
		if (r == 0) {
			memcpy(res->artifact.hex, art, DIGEST_HEX_LEN + 1);
			res->size = size;
			res->path = cas_path(run->store, art);
			hit = 1;
		} else if (r == ERR_CORRUPT) {
			res->note = strdup("the cached artifact was corrupt and has been rebuilt");
		} else {
			res->note = strdup("the cached artifact was missing and has been rebuilt");
		}
	}
	json_decref(doc);
	free(path);
	return hit;
}

static int cache_store(struct run *run, struct build_result *res)
{
	char *path = key_path(run, res->key.hex), *dir = NULL, *text = NULL;
	json_t *doc;
	int r;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	doc = json_pack("{sssssssIss}", "artifact", res->artifact.hex, "object", res->object->name,
			"target", res->target, "size", (json_int_t)res->size, "compiler", res->tc->version);
	text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	dir = strndup(path, strrchr(path, '/') - path);
	if (!text || !dir)
		r = err_set(ERR_NOMEM, "out of memory");
	else if ((r = fs_mkdir_p(dir, 0755)) == 0)
		r = fs_write_atomic(path, text, strlen(text), 0644);
	json_decref(doc);
	free(text);
	free(dir);
	free(path);
	return r;
}

/* Materializes an object's source once; other workers wait for it. */
static int prepare_source(struct run *run, size_t obj_index, const char **src)
{
	struct object_state *os = &run->objs[obj_index];
	const struct manifest_object *obj = &run->m->objects[obj_index];
	int r = 0;

	pthread_mutex_lock(&os->lock);
	if (os->materialized == 0) {
		char *dir = NULL;
		os->materialized = -1;
		/*
		 * The pristine tree stays owned by us and only readable to the
		 * build user: concurrent builds of other targets read it, so
		 * one build must not be able to change what another compiles.
		 */
		const char *base = work_base(run);
		if ((r = base ? fs_mkdtemp(&dir, base, obj->name) : ERR_IO) == 0 &&
		    (r = source_materialize(&run->sctx, &obj->source, dir)) == 0 &&
		    (r = chmod(dir, 0755) == 0 ? 0 : err_errno(ERR_IO, errno, "cannot open up '%s'", dir)) == 0)
			os->materialized = 1;
		if (r < 0)
			os->error = strdup(err_msg());
		os->src_dir = dir;
	}
	if (os->materialized < 0)
		r = err_set(ERR_INVALID, "%s", os->error ? os->error : "source unavailable");
	*src = os->src_dir;
	pthread_mutex_unlock(&os->lock);
	return r;
}

/* The end of the build log, for the failure message. */
static char *log_tail(const char *log_path, const char *error)
{
	struct buf b = BUF_INIT(1 << 20), out = BUF_INIT(LOG_TAIL_BYTES + 1024);
	const char *start;

	fs_read_file(&b, log_path, 64 << 20);
	start = buf_str(&b);
	if (b.len > LOG_TAIL_BYTES) {
		start += b.len - LOG_TAIL_BYTES;
		start += strcspn(start, "\n") + (strchr(start, '\n') ? 1 : 0);
	}
	buf_printf(&out, "%s%s%s", error, *start ? "\n" : "", start);
	buf_release(&b);
	return buf_detach(&out, NULL);
}

static int build_one(struct run *run, struct build_result *res, char **failure)
{
	size_t obj_index = (size_t)(res->object - run->m->objects);
	char *work = NULL, *log_path = NULL, *exe = NULL, *kept_log = NULL;
	const char *src = NULL;
	json_t *meta = NULL;
	int r;

	if ((r = prepare_source(run, obj_index, &src)) < 0) {
		*failure = strdup(err_msg());
		return r;
	}
	if (!work_base(run)) {
		r = ERR_IO;
		goto fail;
	}
	if ((r = fs_mkdtemp(&work, run->work_base, "build")) < 0)
		goto fail;
	log_path = fs_join(work, "build.log");
	if (!log_path) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (run->uid && (r = fs_chown_tree(work, run->uid, run->gid)) < 0)
		goto fail;
	struct recipe_ctx rc = {
		.obj = res->object, .tc = res->tc, .lvl = res->level, .src_dir = src,
		.work_dir = work, .log_path = log_path, .sdk_dir = run->sdk_dir, .timeout_s = run->o->timeout_s ? run->o->timeout_s : 600,
		.uid = run->uid, .gid = run->gid,
	};
	if ((r = recipe_build(&exe, &rc)) < 0 ||
	    (r = artifact_check_elf(exe, res->tc->elf_machine, res->tc->bits,
				    !strcmp(res->tc->endian, "big"))) < 0)
		goto fail;
	meta = json_pack("{ssssssssssssssss sb ss}", "object", res->object->name, "entry", res->object->entry,
			 "isa", res->tc->isa, "level", res->level->name, "triple", res->tc->triple,
			 "endian", res->tc->endian, "compiler", res->tc->version, "key", res->key.hex,
			 "static", res->object->build.static_link, "format", CACHE_FORMAT);
	if (!meta) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((r = artifact_pack(&res->artifact, run->store, exe, res->object->entry, meta)) < 0 ||
	    (r = cas_verify(run->store, res->artifact.hex, &res->size)) < 0 ||
	    (r = cache_store(run, res)) < 0)
		goto fail;
	res->path = cas_path(run->store, res->artifact.hex);
	goto out;
fail: {
	/* log_tail() may record errors of its own: keep this one first. */
	char *why = strdup(err_msg());
	*failure = log_path && why ? log_tail(log_path, why) : why;
	if (*failure != why)
		free(why);
	}
	/* Keep the whole log of a failure where the user can read it. */
	if (log_path && fs_mkdir_p(run->logs_dir, 0755) == 0) {
		char name[128];
		snprintf(name, sizeof(name), "%s-%s.log", res->object->name, res->key.hex);
		kept_log = fs_join(run->logs_dir, name);
		if (kept_log)
			fs_copy_file(log_path, kept_log);
	}
out:
	json_decref(meta);
	if (work)
		fs_rm_rf(work);
	free(work);
	free(log_path);
	free(exe);
	free(kept_log);
	return r;
}

static void *worker(void *arg)
{
	struct run *run = arg;

	pthread_mutex_lock(&run->lock);
	for (;;) {
		struct build_result *res = NULL;
		char *failure = NULL;
		double t0;
		int r;

		while (run->next < run->rep->count && run->rep->results[run->next].state != BUILD_PENDING)
			run->next++;
		if (run->next >= run->rep->count)
			break;
		res = &run->rep->results[run->next++];
		res->state = BUILD_RUNNING;
		notify(run, res);
		pthread_mutex_unlock(&run->lock);

		t0 = now_s();
		r = build_one(run, res, &failure);

		pthread_mutex_lock(&run->lock);
		res->seconds = now_s() - t0;
		finish(run, res, r < 0 ? BUILD_FAILED : BUILD_BUILT, failure);
		free(failure);
	}
	run->finished_workers++;
	pthread_cond_signal(&run->done);
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

struct target {
	struct toolchain *tc;
	const struct toolchain_level *lvl;
};

/* The selected targets: the named ones, or every available ISA's baseline. */
static int select_targets(struct target **out, size_t *count, struct toolchain_set *set,
			  const struct builder_opts *o, const char *cache_dir)
{
	struct target *t = calloc(set->count * 8 + 8, sizeof(*t));
	size_t n = 0;
	int r = 0;

	if (!t)
		return err_set(ERR_NOMEM, "out of memory");
	if (o->targets && o->targets[0]) {
		for (const char *const *s = o->targets; *s && n < set->count * 8 + 8; s++) {
			struct target cand;
			int dup = 0;
			if ((r = toolchain_resolve(&cand.tc, &cand.lvl, set, *s)) < 0)
				goto out;
			for (size_t i = 0; i < n; i++)
				dup |= t[i].tc == cand.tc && t[i].lvl == cand.lvl;
			if (!dup)
				t[n++] = cand;
			toolchain_probe(cand.tc, cache_dir, !o->cached_only);
		}
	} else {
		for (size_t i = 0; i < set->count; i++) {
			toolchain_probe(&set->items[i], cache_dir, !o->cached_only);
			if (set->items[i].available)
				t[n++] = (struct target){ &set->items[i], &set->items[i].levels[0] };
		}
		if (n == 0) {
			r = err_set(ERR_NOTFOUND, "no toolchain is available (see 'dispatch toolchains')");
			goto out;
		}
	}
	*out = t;
	*count = n;
	t = NULL;
out:
	free(t);
	return r;
}

static int setup_user(struct run *run)
{
	const char *name = run->o->build_user ? run->o->build_user : getenv("DISPATCH_BUILD_USER");
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (!name || !*name)
		name = "nobody";
	if (!strcmp(name, "root"))
		return 0;
	pw = getpwnam(name);
	if (!pw)
		return err_set(ERR_NOTFOUND, "build user '%s' does not exist", name);
	run->uid = pw->pw_uid;
	run->gid = pw->pw_gid;
	return 0;
}

/* An earlier object with the same path source, already identified: one hash for all of them. */
static const struct object_state *same_path(const struct run *run, size_t i)
{
	const struct manifest_source *s = &run->m->objects[i].source;

	if (s->kind != SOURCE_PATH)
		return NULL;
	for (size_t k = 0; k < i; k++)
		if (run->m->objects[k].source.kind == SOURCE_PATH && !strcmp(run->m->objects[k].source.path, s->path))
			return &run->objs[k];
	return NULL;
}

/* Plans the matrix: every (object, target) the object's "targets" allow. */
static int plan(struct run *run, struct target *targets, size_t ntargets)
{
	const struct manifest *m = run->m;
	struct build_report *rep = run->rep;

	rep->results = calloc(m->nobjects * ntargets + 1, sizeof(*rep->results));
	if (!rep->results)
		return err_set(ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->nobjects; i++) {
		const struct manifest_object *obj = &m->objects[i];
		struct object_state *os = &run->objs[i];

		const struct object_state *same = same_path(run, i);
		int e;

		if (same) {
			os->identified = same->identified;
			os->source_id = same->source_id;
			os->error = same->error ? strdup(same->error) : NULL;
		} else if (run->o->cached_only && obj->source.kind == SOURCE_GIT) {
			os->identified = 0; /* resolving a ref may wait on a remote */
		} else if ((e = source_identify(&os->source_id, &run->sctx, &obj->source)) < 0) {
			/* Too much to hash for a quick look: left to a real build. */
			os->identified = run->o->cached_only && e == ERR_LIMIT ? 0 : -1;
			os->error = os->identified ? strdup(err_msg()) : NULL;
		} else {
			os->identified = 1;
		}
		for (size_t j = 0; j < ntargets; j++) {
			struct build_result *res = &rep->results[rep->count];
			int match = 0;

			for (char **p = obj->targets; *p; p++)
				match |= toolchain_target_matches(*p, targets[j].tc, targets[j].lvl);
			if (!match)
				continue;
			rep->count++;
			res->object = obj;
			res->tc = targets[j].tc;
			res->level = targets[j].lvl;
			toolchain_target_name(res->target, sizeof(res->target), res->tc, res->level);
			if (obj->sdk && !run->sdk_dir)
				settle(run, res, BUILD_FAILED, "the object SDK is not installed (see DISPATCH_SDK)");
			else if (!res->tc->available && (res->tc->why || !run->o->cached_only))
				settle(run, res, BUILD_FAILED, res->tc->why ? res->tc->why : "toolchain unavailable");
			else if (os->identified < 0)
				settle(run, res, BUILD_FAILED, os->error);
			else if (os->identified > 0 && res->tc->available) {
				compute_key(res, &os->source_id, &run->sdk_id);
				if (cache_lookup(run, res))
					settle(run, res, BUILD_CACHED, NULL);
			}
		}
	}
	/* Report what the plan decided only now that the total is known. */
	for (size_t i = 0; i < rep->count; i++)
		if (rep->results[i].state != BUILD_PENDING)
			notify(run, &rep->results[i]);
	return 0;
}

static int uses_sdk(const struct manifest *m)
{
	for (size_t i = 0; i < m->nobjects; i++)
		if (m->objects[i].sdk)
			return 1;
	return 0;
}

int builder_run(struct build_report **out, const struct manifest *m, const struct builder_opts *o)
{
	struct run run = { .m = m, .o = o, .lock = PTHREAD_MUTEX_INITIALIZER, .base_lock = PTHREAD_MUTEX_INITIALIZER,
			   .done = PTHREAD_COND_INITIALIZER };
	struct toolchain_set *set = NULL;
	struct target *targets = NULL;
	pthread_t threads[JOBS_MAX];
	size_t ntargets = 0;
	int jobs = o->jobs > 0 ? o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN), started = 0, r;
	double t0 = now_s();

	if (jobs > JOBS_MAX)
		jobs = JOBS_MAX;
	if (jobs < 1)
		jobs = 1;
	run.rep = calloc(1, sizeof(*run.rep));
	run.objs = calloc(m->nobjects, sizeof(*run.objs));
	run.cache_dir = strdup(o->cache_dir ? o->cache_dir : builder_default_cache_dir());
	if (!run.rep || !run.objs || !run.cache_dir) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->nobjects; i++)
		pthread_mutex_init(&run.objs[i].lock, NULL);
	run.keys_dir = fs_join(run.cache_dir, "keys");
	run.logs_dir = fs_join(run.cache_dir, "logs");
	run.sctx.git_cache = fs_join(run.cache_dir, "git");
	if (!run.keys_dir || !run.logs_dir || !run.sctx.git_cache) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (o->cached_only && m->nobjects > CACHED_ONLY_OBJECTS) {
		r = err_set(ERR_LIMIT, "%zu objects: more than a quick lookup takes", m->nobjects);
		goto out;
	}
	/* No build user for a lookup: a name service may be slow to answer. */
	if ((r = fs_mkdir_p(run.cache_dir, 0755)) < 0 || (r = builder_open_store(&run.store, run.cache_dir)) < 0 ||
	    (!o->cached_only && (r = setup_user(&run)) < 0))
		goto out;
	run.sctx.store = run.store;
	if (o->cached_only)
		run.sctx.path_max_bytes = CACHED_ONLY_SOURCE_BYTES;
	run.sdk_dir = o->sdk_dir ? o->sdk_dir : builder_default_sdk_dir();
	/* Hashed only when an object links it; objects that ask for a missing SDK fail with a clear message. */
	if (uses_sdk(m) && tree_digest(&run.sdk_id, run.sdk_dir, 1000, 16 << 20) < 0)
		run.sdk_dir = NULL;
	if ((r = toolchain_set_load(&set, o->toolchains_dir ? o->toolchains_dir : toolchain_default_dir())) < 0 ||
	    (r = select_targets(&targets, &ntargets, set, o, run.cache_dir)) < 0)
		goto out;

	pthread_mutex_lock(&run.lock);
	r = plan(&run, targets, ntargets);
	pthread_mutex_unlock(&run.lock);
	if (r < 0)
		goto out;
	while (run.next < run.rep->count && run.rep->results[run.next].state != BUILD_PENDING)
		run.next++;
	if (run.next == run.rep->count || o->cached_only)
		jobs = 0;
	for (int i = 0; i < jobs; i++) {
		if (pthread_create(&threads[i], NULL, worker, &run) != 0)
			break;
		started++;
	}
	if (started == 0 && jobs > 0) {
		r = err_set(ERR_IO, "cannot start build threads");
		goto out;
	}
	/* Ticks let a progress display show elapsed time while compilers run. */
	pthread_mutex_lock(&run.lock);
	while (run.finished_workers < started) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&run.done, &run.lock, &ts) == ETIMEDOUT)
			notify(&run, NULL);
	}
	pthread_mutex_unlock(&run.lock);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	run.rep->seconds = now_s() - t0;
	run.rep->toolchains = set; /* the results point into it */
	set = NULL;
	*out = run.rep;
	run.rep = NULL;
out:
	toolchain_set_free(set);
	for (size_t i = 0; run.objs && i < m->nobjects; i++) {
		free(run.objs[i].error);
		free(run.objs[i].src_dir);
		pthread_mutex_destroy(&run.objs[i].lock);
	}
	if (run.work_base)
		fs_rm_rf(run.work_base);
	free(run.work_base);
	free(run.objs);
	free(targets);
	cas_free(run.store);
	free(run.cache_dir);
	free(run.keys_dir);
	free(run.logs_dir);
	free((char *)run.sctx.git_cache);
	build_report_free(run.rep);
	return r;
}
