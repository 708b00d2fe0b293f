/* instances.c - the table of runs and what happens to them. */
#include "instances.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "log.h"

#define RUNS_MAX 1024
#define BLOB_MAX (UINT64_C(1) << 30) /* dispatchd's limit */
#define LOG_EVENT_MAX (64u << 10)
#define LOG_CHUNKS_PER_TICK 16
#define LOG_PERIOD_S 2.0
#define LOOK_PERIOD_S 1.0 /* for runs without an inotify watch or a pidfd */
#define CHORES_DELAY_S 0.25 /* from a start or a run's end to the chores it left (see mark_chores()) */
#define CHORES_STEP 4	     /* ended runs removed at a time, with one spare made */
#define CHORES_AGAIN_S 0.01  /* until all are done */
#define FETCH_TRIES 3

struct instances {
	struct instances_env env;
	run **runs;
	size_t n, alloc;
	double next_log, next_look;
	int ifd;	  /* inotify: the runs' progress files */
	double chores_at; /* run_sweep() and run_make_spares() then (run_now()), 0: none due */
};

int instances_new(instances **out, const struct instances_env *env)
{
	instances *t = calloc(1, sizeof(*t));

	if (!t)
		return err_set(ERR_NOMEM, "out of memory");
	t->env = *env;
	/* One instance for all runs: the number of inotify instances per user is small (128). */
	t->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (t->ifd < 0)
		log_info("no inotify (%s): progress is looked at every %.0f s", strerror(errno),
			 LOOK_PERIOD_S);
	*out = t;
	return 0;
}

void instances_free(instances *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		run_free(t->runs[i]);
	if (t->ifd >= 0)
		close(t->ifd);
	free(t->runs);
	free(t);
}

size_t instances_count(const instances *t)
{
	return t->n;
}

static void report(instances *t, const char *event, run *r, const char *detail)
{
	if (t->env.report)
		t->env.report(t->env.ud, event, run_instance(r), run_generation(r), detail);
}

static ssize_t find(const instances *t, const char *instance)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(run_instance(t->runs[i]), instance))
			return (ssize_t)i;
	return -1;
}

/* A run that uses a shared tree keeps its blob pinned while it is in the table. */
static void pin_tree(instances *t, run *r)
{
	if (run_artifact(r)[0])
		store_pin(t->env.st, run_artifact(r));
}

static void unpin_tree(instances *t, run *r)
{
	if (run_artifact(r)[0])
		store_unpin(t->env.st, run_artifact(r));
}

/*
 * A moment after a start or a run's end (CHORES_DELAY_S): the directories
 * of ended runs are removed and the spare run directories made again, not
 * on the way of the start's running event, of an exit event, nor of the
 * start elsewhere that an exit may cause.
 */
static void mark_chores(instances *t)
{
	if (!t->chores_at)
		t->chores_at = run_now() + CHORES_DELAY_S;
}

/* A little at a time (CHORES_STEP): under a stream of starts, chores must not hold them up for long. */
static void do_chores(instances *t, double now)
{
	int swept = run_sweep(t->env.rc, CHORES_STEP), made;

	/* Each whatever the other did: a directory that cannot be removed must not stop the spares. */
	if (swept < 0)
		log_warn("%s", err_msg());
	if ((made = run_make_spares(t->env.rc->work_dir, 1)) < 0)
		log_warn("%s", err_msg());
	t->chores_at = swept == CHORES_STEP || made == 1 ? now + CHORES_AGAIN_S : 0;
}

/* Takes run i out of the table: run_discard() (kill it) or run_free(). */
static void remove_at(instances *t, size_t i, int discard)
{
	run *r = t->runs[i];

	if (t->ifd >= 0 && run_watch_id(r) >= 0)
		inotify_rm_watch(t->ifd, run_watch_id(r));
	t->runs[i] = t->runs[--t->n];
	unpin_tree(t, r);
	mark_chores(t);
	if (discard)
		run_discard(r);
	else
		run_free(r);
}

/* Room for one more run. */
static int reserve(instances *t)
{
	size_t na;
	run **nr;

	if (t->n >= RUNS_MAX)
		return err_set(ERR_LIMIT, "this node already runs %d instances", RUNS_MAX);
	if (t->n < t->alloc)
		return 0;
	na = t->alloc ? t->alloc * 2 : 8;
	if (!(nr = realloc(t->runs, na * sizeof(*nr))))
		return err_set(ERR_NOMEM, "out of memory");
	t->runs = nr;
	t->alloc = na;
	return 0;
}

static void queue(instances *t, const char *instance, uint64_t gen, json_t *event, const char *blob)
{
	if (outbox_add(t->env.ob, instance, gen, event, blob) < 0)
		log_warn("instance '%s': cannot queue an event: %s", instance, err_msg());
}

static void add(instances *t, run *r);

/* Makes sure the blob is in the store and intact, downloading and verifying it when not. */
static int fetch(instances *t, const char *digest)
{
	char *tmp = NULL;
	int r = 0, fd;

	if (store_has(t->env.st, digest)) {
		if ((r = store_verify(t->env.st, digest)) == 0)
			return 0;
		log_warn("%s: fetching it again", err_msg());
	}
	for (int i = 0; i < FETCH_TRIES; i++) {
		if (!(tmp = fs_join(store_tmpdir(t->env.st), "fetch-XXXXXX")))
			return err_set(ERR_NOMEM, "out of memory");
		if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
			r = err_errno(ERR_IO, errno, "cannot create a file in '%s'", store_tmpdir(t->env.st));
		} else {
			close(fd);
			r = conn_download(t->env.c, digest, tmp, BLOB_MAX);
			if (r == 0)
				r = store_adopt(t->env.st, NULL, tmp, digest);
		}
		free(tmp);
		if (r != ERR_NET)
			break;
		usleep(500000u << i);
	}
	return r < 0 ? err_prefix(r, "cannot fetch blob %.12s", digest) : 0;
}

/* The state bundle a start message carried: into the store, checked against its digest (fetch() verifies). */
static void take_inline(instances *t, const struct proto_msg *m)
{
	char name[DIGEST_HEX_LEN + 8], *tmp;
	int r;

	if (!m->state[0] || !m->state_bundle.len || store_has(t->env.st, m->state))
		return;
	snprintf(name, sizeof(name), "inline-%s", m->state);
	if (!(tmp = fs_join(store_tmpdir(t->env.st), name)))
		return;
	r = fs_write_file(tmp, m->state_bundle.data, m->state_bundle.len, 0600);
	if (r == 0)
		r = store_adopt(t->env.st, NULL, tmp, m->state);
	if (r < 0)
		log_warn("instance '%s': the state in the start message is not used: %s", m->instance, err_msg());
	free(tmp);
}

/*
 * With a place for trees in the store (store_set_trees(): the agent's
 * choice, see prepare_work()), every run of an artifact uses one read-only
 * tree the store unpacked once, verified once: *tree is set and nothing is
 * hashed or unpacked for a start. Without, the blob is verified and
 * unpacked into each run (*tree stays NULL).
 */
static int artifact_tree(instances *t, const char *digest, char **tree)
{
	struct bundle_limits lim = RUN_ARTIFACT_LIMITS;
	int e;

	if (!store_tree_dir(t->env.st))
		return fetch(t, digest);
	if (!store_has_tree(t->env.st, digest) && (e = fetch(t, digest)) < 0)
		return e;
	e = store_tree(t->env.st, tree, digest, &lim);
	if (e == ERR_CORRUPT || e == ERR_NOTFOUND) /* dropped as it was verified: once more from the dispatcher */
		e = fetch(t, digest) < 0 ? e : store_tree(t->env.st, tree, digest, &lim);
	return e < 0 ? err_prefix(e, "cannot unpack the artifact") : 0;
}

static void start(instances *t, const struct proto_msg *m)
{
	ssize_t old = find(t, m->instance);
	char *artifact = NULL, *state = NULL, *tree = NULL;
	run *r = NULL;
	int e;

	if (old >= 0 && run_generation(t->runs[old]) >= m->generation) {
		log_debug("instance '%s' generation %" PRIu64 " is already here", m->instance, m->generation);
		return;
	}
	if (old >= 0) {
		/* A newer generation supersedes the run here: nothing of it is kept. */
		log_info("instance '%s': generation %" PRIu64 " replaces %" PRIu64, m->instance,
			 m->generation, run_generation(t->runs[old]));
		outbox_forget(t->env.ob, m->instance, run_generation(t->runs[old]));
		remove_at(t, (size_t)old, 1);
	}
	take_inline(t, m);
	store_pin(t->env.st, m->artifact);
	if (m->state[0])
		store_pin(t->env.st, m->state);
	if ((e = reserve(t)) < 0 || (e = artifact_tree(t, m->artifact, &tree)) < 0 ||
	    (m->state[0] && (e = fetch(t, m->state)) < 0))
		goto out;
	artifact = tree ? NULL : store_path(t->env.st, m->artifact);
	state = m->state[0] ? store_path(t->env.st, m->state) : NULL;
	if ((!tree && !artifact) || (m->state[0] && !state)) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((e = run_new(&r, t->env.rc, m)) < 0 || (tree && (e = run_use_tree(r, tree, m->artifact)) < 0) ||
	    (e = run_unpack(r, artifact, state)) < 0 || (e = run_start(r)) < 0)
		goto out;
	queue(t, m->instance, m->generation, proto_event_running(), NULL);
	pin_tree(t, r);
	add(t, r);
	mark_chores(t); /* a spare directory to make again */
	log_info("instance '%s' generation %" PRIu64 " started: %s (pid %d)", m->instance, m->generation,
		 m->entry, (int)run_pid(r));
	report(t, "started", r, m->entry);
	r = NULL;
out:
	if (e < 0) {
		char why[512];

		snprintf(why, sizeof(why), "%s", err_msg());
		log_warn("instance '%s' cannot start: %s", m->instance, why);
		queue(t, m->instance, m->generation, proto_event_exit(-1, 0, NULL, why), NULL);
		if (t->env.report)
			t->env.report(t->env.ud, "failed", m->instance, m->generation, why);
		mark_chores(t);
	}
	run_free(r);
	store_unpin(t->env.st, m->artifact);
	if (m->state[0])
		store_unpin(t->env.st, m->state);
	free(artifact);
	free(state);
	free(tree);
}

static void stop(instances *t, const struct proto_msg *m)
{
	ssize_t i = find(t, m->instance);

	if (i < 0 || run_generation(t->runs[i]) > m->generation) {
		log_debug("stop for instance '%s' generation %" PRIu64 ": not running here", m->instance,
			  m->generation);
		return;
	}
	log_info("instance '%s': %s requested", m->instance,
		 m->mode == PROTO_STOP_KILL ? "kill" : "checkpoint");
	if (run_stop(t->runs[i], m->mode) < 0)
		log_warn("%s", err_msg());
}

void instances_handle(instances *t, const struct proto_msg *m)
{
	if (m->type == PROTO_START)
		start(t, m);
	else
		stop(t, m);
}

void instances_stop_all(instances *t, enum proto_stop_mode mode)
{
	for (size_t i = 0; i < t->n; i++)
		run_stop(t->runs[i], mode);
}

void instances_drop(instances *t, const char *instance, uint64_t generation)
{
	ssize_t i = find(t, instance);

	if (i >= 0 && run_generation(t->runs[i]) == generation) {
		log_info("instance '%s' generation %" PRIu64 " was superseded: killed", instance, generation);
		remove_at(t, (size_t)i, 1);
	}
}

/* Packs out/ into the store; *digest is set on success. */
static int save_state(instances *t, run *r, digest_hex *digest)
{
	char *tmp = fs_join(store_tmpdir(t->env.st), "state-XXXXXX");
	int fd, e;

	if (!tmp)
		return err_set(ERR_NOMEM, "out of memory");
	/* Most objects that finish write no state: no temporary file for nothing. */
	if (!run_has_state(r)) {
		e = err_set(ERR_NOTFOUND, "instance '%s' wrote no state.json", run_instance(r));
		goto out;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		e = err_errno(ERR_IO, errno, "cannot create a file in '%s'", store_tmpdir(t->env.st));
		goto out;
	}
	close(fd);
	if ((e = run_pack_state(r, tmp)) < 0) {
		unlink(tmp);
		goto out;
	}
	e = store_adopt(t->env.st, digest, tmp, NULL);
out:
	free(tmp);
	return e;
}

static void on_note(void *ud, run *r, const struct run_note *note)
{
	instances *t = ud;
	digest_hex d;
	int e;

	switch (note->kind) {
	case RUN_NOTE_PROGRESS:
		queue(t, run_instance(r), run_generation(r), proto_event_progress(note->progress), NULL);
		break;
	case RUN_NOTE_CHECKPOINT:
		if ((e = save_state(t, r, &d)) < 0) {
			log_warn("instance '%s': checkpoint %" PRIu64 " not kept: %s", run_instance(r),
				 note->checkpoint, err_msg());
			break;
		}
		queue(t, run_instance(r), run_generation(r), proto_event_checkpoint(d.hex), d.hex);
		break;
	case RUN_NOTE_FINISHED:
		break;
	}
}

/* Adds a started run (after reserve()), watches its progress file and reads what it holds already. */
static void add(instances *t, run *r)
{
	t->runs[t->n++] = r;
	if (t->ifd >= 0 && run_watch(r, t->ifd) < 0)
		log_info("%s: looked at every %.0f s instead", err_msg(), LOOK_PERIOD_S);
	run_read_progress(r, on_note, t);
}

/* At the exit the state is packed once, for the exit event: earlier checkpoint lines need no bundle of their
 * own. */
static void on_last_note(void *ud, run *r, const struct run_note *note)
{
	if (note->kind != RUN_NOTE_CHECKPOINT)
		on_note(ud, r, note);
}

static void relay_log(instances *t, run *r, int final)
{
	struct buf b = BUF_INIT(LOG_EVENT_MAX);
	int n;

	for (int i = 0; i < LOG_CHUNKS_PER_TICK || final; i++) {
		buf_reset(&b);
		n = run_read_log(r, &b, LOG_EVENT_MAX, final);
		if (n < 0)
			log_warn("%s", err_msg());
		if (b.len)
			queue(t, run_instance(r), run_generation(r), proto_event_log(b.data, b.len), NULL);
		if (n <= 0)
			break;
	}
	buf_release(&b);
}

static void finish(instances *t, size_t i, const struct run_exit *x)
{
	run *r = t->runs[i];
	digest_hex d;
	const char *error = x->error[0] ? x->error : NULL;
	char note[512];
	int have = 0;

	run_read_progress(r, on_last_note, t);
	relay_log(t, r, 1);
	if (!x->signo && (x->code == 0 || x->checkpointed)) {
		int e = save_state(t, r, &d);
		if (e == 0) {
			have = 1;
		} else if (e == ERR_NOTFOUND && !x->checkpointed) {
			log_info("instance '%s' generation %" PRIu64 " exited 0 without a state.json: no result",
				 run_instance(r), run_generation(r));
		} else {
			snprintf(note, sizeof(note), "%s", err_msg());
			error = note;
		}
	}
	queue(t, run_instance(r), run_generation(r),
	      proto_event_exit(x->code, x->signo, have ? d.hex : NULL, error), have ? d.hex : NULL);
	log_info("instance '%s' generation %" PRIu64 " exited: %s", run_instance(r), run_generation(r),
		 error		   ? error
		 : x->checkpointed ? "checkpointed"
				   : "finished");
	report(t, "exited", r, error ? error : x->checkpointed ? "checkpointed" : "finished");
	/* Saved before the directory goes: see persist in instances.h. */
	if (t->env.persist && t->env.persist(t->env.ud) < 0)
		log_warn("instance '%s': the exit event is not saved: %s", run_instance(r), err_msg());
	remove_at(t, i, 0);
	/* Packing and unpacking used large buffers: give them back, the agent is small when idle. */
	malloc_trim(0);
}

size_t instances_pollfds(instances *t, struct pollfd *fds, size_t max)
{
	size_t k = 0;

	if (t->ifd >= 0 && t->n && k < max)
		fds[k++] = (struct pollfd){.fd = t->ifd, .events = POLLIN};
	for (size_t i = 0; i < t->n && k < max; i++)
		if (run_pidfd(t->runs[i]) >= 0)
			fds[k++] = (struct pollfd){.fd = run_pidfd(t->runs[i]), .events = POLLIN};
	return k;
}

/* Reads the progress of the runs whose files inotify says changed. */
static void read_watched(instances *t)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(t->ifd, ev, sizeof(ev))) > 0) {
		for (ssize_t k = 0; k + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *e = (const struct inotify_event *)(void *)(ev + k);
			for (size_t i = 0; i < t->n; i++)
				if (run_watch_id(t->runs[i]) == e->wd)
					run_read_progress(t->runs[i], on_note, t);
			k += (ssize_t)(sizeof(*e) + e->len);
		}
	}
}

void instances_ready(instances *t, const struct pollfd *fds, size_t n)
{
	int exited = 0;

	for (size_t k = 0; k < n; k++) {
		if (!fds[k].revents)
			continue;
		if (fds[k].fd == t->ifd) {
			read_watched(t);
			continue;
		}
		for (size_t i = 0; i < t->n; i++)
			if (run_pidfd(t->runs[i]) == fds[k].fd)
				exited = 1;
	}
	if (exited)
		instances_reap(t);
}

void instances_reap(instances *t)
{
	struct run_exit x;

	for (size_t i = t->n; i-- > 0;) {
		int e = run_reap(t->runs[i], &x);
		if (e < 0)
			log_warn("%s", err_msg());
		else if (e == 1)
			finish(t, i, &x);
	}
}

double instances_tick(instances *t, double now)
{
	int look = 0;

	if (t->chores_at && now >= t->chores_at)
		do_chores(t, now);
	if (t->n == 0)
		return t->chores_at;
	if (now >= t->next_log) {
		for (size_t i = 0; i < t->n; i++)
			relay_log(t, t->runs[i], 0);
		t->next_log = now + LOG_PERIOD_S;
	}
	for (size_t i = 0; i < t->n; i++)
		look |= run_watch_id(t->runs[i]) < 0 || run_pidfd(t->runs[i]) < 0;
	if (!look)
		return run_earliest(t->next_log, t->chores_at);
	if (now >= t->next_look) {
		for (size_t i = 0; i < t->n; i++)
			if (run_watch_id(t->runs[i]) < 0)
				run_read_progress(t->runs[i], on_note, t);
		instances_reap(t);
		t->next_look = now + LOOK_PERIOD_S;
	}
	return run_earliest(run_earliest(t->next_look, t->next_log), t->chores_at);
}

size_t instances_adopt(instances *t, const json_t *cursors)
{
	char *inst = fs_join(t->env.rc->work_dir, "inst"), *path = NULL;
	struct dirent *de;
	struct run_exit x;
	size_t n = 0;
	DIR *d;
	run *r;
	int e;

	if (!inst || !(d = opendir(inst))) {
		free(inst);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		free(path);
		if (!(path = fs_join(inst, de->d_name)))
			break;
		if (de->d_name[0] == '.') { /* the rest of a removal */
			fs_rm_rf(path);
			continue;
		}
		r = NULL;
		e = run_adopt(&r, t->env.rc, de->d_name, json_object_get(cursors, de->d_name));
		if (e == ERR_NOTFOUND || e == ERR_INVALID) {
			log_info("removing '%s': %s", path, err_msg());
			fs_rm_rf(path);
			continue;
		}
		if (e < 0 || (e = reserve(t)) < 0) {
			log_warn("cannot take over '%s': %s", path, err_msg());
			run_free(r); /* the directory stays for the next start */
			continue;
		}
		if (outbox_has_exit(t->env.ob, run_instance(r), run_generation(r))) {
			/* Saved with its exit event just before the directory was to go. */
			log_info("instance '%s' generation %" PRIu64 ": its exit is already queued",
				 run_instance(r), run_generation(r));
			if (run_reap(r, &x) == 1)
				run_free(r);
			else
				run_discard(r);
			continue;
		}
		queue(t, run_instance(r), run_generation(r), proto_event_running(), NULL);
		pin_tree(t, r);
		add(t, r);
		log_info("instance '%s' generation %" PRIu64 " taken over (object pid %d)", run_instance(r),
			 run_generation(r), (int)run_pid(r));
		report(t, "adopted", r, NULL);
		n++;
	}
	closedir(d);
	free(path);
	free(inst);
	run_sweep_groups(t->env.rc);
	/* Exits that happened while no agent was there. */
	instances_reap(t);
	t->chores_at = run_now(); /* the spares (removed above with the other dot-entries), at the first tick */
	return n;
}

json_t *instances_cursors(const instances *t)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < t->n; i++)
		json_object_set_new(o, run_name(t->runs[i]), run_cursor(t->runs[i]));
	return o;
}

json_t *instances_running(const instances *t)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < t->n; i++)
		json_array_append_new(a, json_pack("{sssI}", "instance", run_instance(t->runs[i]),
						   "generation", (json_int_t)run_generation(t->runs[i])));
	return a;
}
