/* jobs.c - job intake and the build thread. */
#include "jobs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder.h"
#include "bundle.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "manifest.h"
#include "scheduler.h"
#include "toolchain.h"

#define TARGETS_MAX 64

static int build_cached(struct core *c, int64_t job, const struct manifest *m);

/* Whether path is inside dir (both resolved). */
static int inside(const char *path, const char *dir)
{
	char *rp = realpath(path, NULL), *rd = realpath(dir, NULL);
	int ok = rp && rd && !strncmp(rp, rd, strlen(rd)) && (rp[strlen(rd)] == '/' || rp[strlen(rd)] == '\0');

	free(rp);
	free(rd);
	return ok;
}

/* Local sources must come with the job: a manifest cannot read the dispatcher's files. */
static int check_sources(const struct manifest *m, const char *dir)
{
	for (size_t i = 0; i < m->nobjects; i++) {
		const struct manifest_source *s = &m->objects[i].source;
		if (s->kind == SOURCE_PATH && !inside(s->path, dir))
			return err_set(ERR_INVALID, "objects[%zu].source.path: not part of the job bundle", i);
		if (s->kind == SOURCE_ARCHIVE && s->archive[0] == '/' && !inside(s->archive, dir))
			return err_set(ERR_INVALID, "objects[%zu].source.archive: not part of the job bundle", i);
	}
	return 0;
}

/* Packs {"dispatch-state": 1, "values": state} into the CAS. */
static int state_bundle(struct core *c, json_t *state, digest_hex *out)
{
	char *dir = NULL, *file = NULL, *tmp = NULL;
	json_t *doc = json_pack("{sisO}", "dispatch-state", 1, "values", state);
	int r, fd;

	if (!doc)
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = fs_mkdtemp(&dir, cas_tmpdir(c->blobs), "state")) < 0)
		goto out;
	file = fs_join(dir, "state.json");
	tmp = fs_join(cas_tmpdir(c->blobs), "statebundle-XXXXXX");
	if (!file || !tmp) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (json_dump_file(doc, file, JSON_INDENT(1)) < 0) {
		r = err_set(ERR_IO, "cannot write '%s'", file);
		goto out;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		r = err_errno(ERR_IO, errno, "cannot create '%s'", tmp);
		goto out;
	}
	close(fd);
	if ((r = bundle_pack_dir(dir, tmp)) == 0)
		r = cas_adopt(c->blobs, out, tmp);
out:
	if (dir)
		fs_rm_rf(dir);
	if (tmp)
		unlink(tmp);
	free(dir);
	free(file);
	free(tmp);
	json_decref(doc);
	return r;
}

static int add_objects(struct core *c, int64_t job, const struct manifest *m, json_t *ids)
{
	double now = core_now();
	int r = 0;

	for (size_t i = 0; i < m->nobjects && r == 0; i++) {
		const struct manifest_object *o = &m->objects[i];
		json_t *args = json_array();
		digest_hex sd;
		char *args_text;
		int has_state = o->state != NULL;

		for (char **a = o->args; *a; a++)
			json_array_append_new(args, json_string(*a));
		args_text = json_dumps(args, JSON_COMPACT);
		json_decref(args);
		if (has_state && (r = state_bundle(c, o->state, &sd)) < 0) {
			free(args_text);
			break;
		}
		r = store_run(c->db, NULL, "INSERT INTO objects(job, name, entry, args, checkpoint_s) VALUES(?, ?, ?, ?, ?)",
			      "isssi", job, o->name, o->entry, args_text, (int64_t)o->checkpoint_s);
		free(args_text);
		for (int k = 0; r == 0 && k < o->instances; k++) {
			int64_t id = 0;
			char iid[32];
			r = store_run(c->db, &id, "INSERT INTO instances(job, object, idx, fork_index, state, state_digest, "
				      "created) VALUES(?, ?, ?, ?, 'pending', ?, ?)", "isiisd", job, o->name, (int64_t)k,
				      (int64_t)(o->fork ? k : 0), has_state ? sd.hex : NULL, now);
			snprintf(iid, sizeof(iid), "i-%lld", (long long)id);
			json_array_append_new(ids, json_string(iid));
			if (r == 0)
				core_history(c, id, "submitted", 0, NULL, NULL);
		}
	}
	return r;
}

int jobs_submit(struct core *c, const char *bundle, json_t **out)
{
	struct bundle_limits lim = { 256ull << 20, 100000, 256ull << 20 };
	struct manifest *m = NULL;
	char *tmp = NULL, *mpath = NULL, *final = NULL, name[32];
	json_t *ids = json_array();
	int64_t job = 0;
	int r, in_tx = 0, built = 0;

	if ((r = fs_mkdtemp(&tmp, c->jobs_dir, "incoming")) < 0)
		goto out;
	if ((r = bundle_extract_file(bundle, tmp, 0, &lim)) < 0) {
		r = err_prefix(r, "job bundle");
		goto out;
	}
	mpath = fs_join(tmp, "manifest.json");
	if (!mpath) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = manifest_load_file(&m, mpath)) < 0 || (r = check_sources(m, tmp)) < 0)
		goto out;
	if ((r = store_begin(c->db)) < 0)
		goto out;
	in_tx = 1;
	if ((r = store_run(c->db, &job, "INSERT INTO jobs(name, dir, state, created) VALUES(?, '', 'building', ?)",
			   "sd", m->name, core_now())) < 0)
		goto out;
	snprintf(name, sizeof(name), "j-%lld", (long long)job);
	final = fs_join(c->jobs_dir, name);
	if (!final) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = store_run(c->db, NULL, "UPDATE jobs SET dir = ? WHERE id = ?", "si", final, job)) < 0 ||
	    (r = add_objects(c, job, m, ids)) < 0)
		goto out;
	built = build_cached(c, job, m); /* before the move: the manifest's paths are still in tmp */
	fs_rm_rf(final); /* a leftover of a job whose transaction never committed */
	if (rename(tmp, final) < 0) {
		r = err_errno(ERR_IO, errno, "cannot move the job to '%s'", final);
		goto out;
	}
	if ((r = store_commit(c->db)) < 0) {
		rename(final, tmp);
		goto out;
	}
	in_tx = 0;
	log_info("job %s '%s': %zu objects, %zu instances", name, m->name, m->nobjects, json_array_size(ids));
	*out = json_pack("{sssssO}", "job", name, "name", m->name, "instances", ids);
	if (!built) {
		c->build_wanted = 1;
		pthread_cond_signal(&c->build_cond);
	}
out:
	if (in_tx)
		store_rollback(c->db);
	if (tmp) {
		fs_rm_rf(tmp);
		free(tmp);
	}
	free(mpath);
	free(final);
	json_decref(ids);
	manifest_free(m);
	return r;
}

/* The targets the up nodes need: each ISA's baseline and each node's best known level (none without toolchains). */
static size_t needed_targets(struct core *c, char targets[][96])
{
	json_t *nodes = NULL, *n;
	size_t count = 0, i;

	if (!c->toolchains ||
	    store_rows(c->db, &nodes, "SELECT DISTINCT isa, levels FROM nodes WHERE state IN ('up', 'drained')", NULL) < 0)
		return 0;
	json_array_foreach(nodes, i, n) {
		struct toolchain *tc = toolchain_set_find(c->toolchains, json_string_value(json_object_get(n, "isa")));
		json_t *levels = json_loads(json_string_value(json_object_get(n, "levels")), 0, NULL), *l;
		const char *best = NULL;
		size_t j;
		if (!tc) {
			json_decref(levels);
			continue;
		}
		json_array_foreach(levels, j, l)
			for (size_t k = 0; k < tc->nlevels; k++)
				if (json_is_string(l) && !strcmp(json_string_value(l), tc->levels[k].name))
					best = tc->levels[k].name;
		const char *want[2] = { tc->levels[0].name, best };
		for (int w = 0; w < 2; w++) {
			char t[96];
			int dup = 0;
			if (!want[w])
				continue;
			snprintf(t, sizeof(t), "%s:%s", tc->isa, want[w]);
			for (size_t k = 0; k < count; k++)
				dup |= !strcmp(targets[k], t);
			if (!dup && count < TARGETS_MAX)
				memcpy(targets[count++], t, sizeof(t));
		}
		json_decref(levels);
	}
	json_decref(nodes);
	return count;
}

/* Objects that could be built for no target fail their pending instances. */
static void fail_unbuildable(struct core *c, int64_t job)
{
	json_t *objs = NULL, *o;
	size_t i;

	store_rows(c->db, &objs, "SELECT object, MIN(error) AS error FROM builds WHERE job = ? GROUP BY object "
		   "HAVING SUM(status = 'ok') = 0 AND SUM(status = 'failed') > 0", "i", job);
	json_array_foreach(objs, i, o) {
		char why[600];
		snprintf(why, sizeof(why), "build failed: %.500s", json_string_value(json_object_get(o, "error")) ?: "?");
		store_run(c->db, NULL, "UPDATE instances SET state = 'failed', error = ?, finished = ? WHERE job = ? "
			  "AND object = ? AND state = 'pending'", "sdis", why, core_now(), job,
			  json_string_value(json_object_get(o, "object")));
	}
	json_decref(objs);
	sched_job_state(c, job);
}

/* Records a job's builds and places what they allow, inside the caller's transaction. */
static void record(struct core *c, int64_t job, const struct manifest *m, const struct build_report *rep,
		   char targets[][96], size_t ntargets)
{
	for (size_t i = 0; i < rep->count; i++) {
		const struct build_result *r = &rep->results[i];
		int ok = r->state == BUILD_BUILT || r->state == BUILD_CACHED;
		store_run(c->db, NULL, "INSERT OR REPLACE INTO builds(job, object, target, isa, level, status, digest, "
			  "cached, error) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)", "issssssis",
			  job, r->object->name, r->target, r->tc->isa, r->level->name, ok ? "ok" : "failed",
			  ok ? r->artifact.hex : NULL, (int64_t)(r->state == BUILD_CACHED), r->message);
	}
	/* Pairs the object's "targets" exclude are recorded too, so they are not asked for again. */
	for (size_t t = 0; t < ntargets; t++)
		for (size_t o = 0; o < m->nobjects; o++) {
			char isa[96];
			const char *colon = strchr(targets[t], ':');
			snprintf(isa, sizeof(isa), "%.*s", (int)(colon - targets[t]), targets[t]);
			store_run(c->db, NULL, "INSERT OR IGNORE INTO builds(job, object, target, isa, level, status) "
				  "VALUES(?, ?, ?, ?, ?, 'skipped')", "issss", job, m->objects[o].name, targets[t], isa,
				  colon + 1);
		}
	store_run(c->db, NULL, "UPDATE jobs SET state = 'running' WHERE id = ? AND state = 'building'", "i", job);
	fail_unbuildable(c, job);
	/* Placed in the same transaction: a job's builds and its first starts cost one fsync. */
	sched_pass(c);
}

/*
 * A job whose every build is already in the cache is recorded and placed
 * by its submission, in the submission's transaction: one commit, and no
 * wait for the build thread. Returns 1 when it was; 0 leaves the job to
 * the build thread (something to compile or probe, a git source, no node).
 */
static int build_cached(struct core *c, int64_t job, const struct manifest *m)
{
	char targets[TARGETS_MAX][96];
	const char *tv[TARGETS_MAX + 1];
	size_t n = needed_targets(c, targets);
	struct builder_opts o = { .cache_dir = c->cache_dir, .toolchains_dir = c->toolchains_dir,
				  .targets = tv, .cached_only = 1 };
	struct build_report *rep = NULL;
	int done;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		tv[i] = targets[i];
	tv[n] = NULL;
	done = builder_run(&rep, m, &o) == 0 && rep->cached + rep->failed == rep->count;
	if (done) {
		log_info("job j-%lld: %zu builds: %zu cached, %zu failed", (long long)job, rep->count, rep->cached,
			 rep->failed);
		record(c, job, m, rep, targets, n);
	}
	build_report_free(rep);
	return done;
}

static void build_job(struct core *c, int64_t job, const char *dir)
{
	char targets[TARGETS_MAX][96], missing[TARGETS_MAX][96];
	const char *tv[TARGETS_MAX + 1];
	size_t n = needed_targets(c, targets), nm = 0;
	struct manifest *m = NULL;
	struct build_report *rep = NULL;
	char *mpath;
	int r;

	for (size_t i = 0; i < n; i++)
		if (!store_int(c->db, 0, "SELECT COUNT(*) FROM builds WHERE job = ? AND target = ?", "is", job, targets[i])) {
			memcpy(missing[nm], targets[i], sizeof(targets[i]));
			tv[nm] = missing[nm];
			nm++;
		}
	tv[nm] = NULL;
	if (nm == 0)
		return;
	core_unlock(c);
	mpath = fs_join(dir, "manifest.json");
	r = mpath ? manifest_load_file(&m, mpath) : err_set(ERR_NOMEM, "out of memory");
	if (r == 0) {
		struct builder_opts o = { .cache_dir = c->cache_dir, .toolchains_dir = c->toolchains_dir,
					  .targets = tv, .jobs = c->build_jobs };
		r = builder_run(&rep, m, &o);
	}
	if (r < 0)
		log_error("job j-%lld: cannot build: %s", (long long)job, err_msg());
	else
		log_info("job j-%lld: %zu builds: %zu built, %zu cached, %zu failed in %.2f s", (long long)job,
			 rep->count, rep->built, rep->cached, rep->failed, rep->seconds);
	core_lock(c);
	if (r == 0) {
		int in_tx = store_begin(c->db) == 0;
		record(c, job, m, rep, missing, nm);
		if (in_tx && store_commit(c->db) < 0)
			store_rollback(c->db);
	}
	build_report_free(rep);
	manifest_free(m);
	free(mpath);
}

void *jobs_build_thread(void *arg)
{
	struct core *c = arg;

	if (!c->toolchains)
		return NULL; /* said at start-up */
	core_lock(c);
	while (!c->stopping) {
		json_t *jobs = NULL, *j;
		size_t i;

		while (!c->build_wanted && !c->stopping)
			pthread_cond_wait(&c->build_cond, &c->lock);
		if (c->stopping)
			break;
		c->build_wanted = 0;
		if (store_rows(c->db, &jobs, "SELECT id, dir FROM jobs WHERE state IN ('building', 'running') "
			       "ORDER BY id", NULL) < 0)
			continue;
		json_array_foreach(jobs, i, j) {
			build_job(c, json_integer_value(json_object_get(j, "id")),
				  json_string_value(json_object_get(j, "dir")));
			if (c->stopping)
				break;
		}
		json_decref(jobs);
		sched_pass(c);
	}
	core_unlock(c);
	return NULL;
}
