/* test_agent_restart.c - objects outlive a kill -9 of their agent; the next agent takes them over. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "bundle.h"
#include "cpu.h"
#include "error.h"
#include "fsutil.h"
#include "instances.h"
#include "outbox.h"
#include "protocol.h"
#include "run.h"
#include "store.h"

#ifndef DISPATCH_RUN_PATH
#error "DISPATCH_RUN_PATH names the dispatch-run executable"
#endif

#define GEN 3

struct fixture {
	char *dir; /* WORK */
	char *inst;
	char *outbox; /* WORK/outbox.json */
	struct run_config cfg;
	uint64_t cache_max; /* 0: 1 GiB */
};

/*
 * An agent as agent.c puts one together, without the network: its store,
 * outbox and instances over the fixture's WORK, and a persist() that saves
 * the outbox with the cursors. Several of them live and die in one test.
 */
struct agent {
	struct fixture *f;
	store *st;
	outbox *ob;
	instances *inst;
	int adopted, exited, started;
	int crash_after_save; /* persist() saves, then the process dies: the window before a directory goes */
};

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));
	struct passwd *pw;

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->dir, tmp && *tmp ? tmp : "/tmp", "restart"), 0);
	assert_int_equal(chmod(f->dir, 0711), 0);
	f->inst = fs_join(f->dir, "inst");
	f->outbox = fs_join(f->dir, "outbox.json");
	assert_int_equal(fs_mkdir_p(f->inst, 0711), 0);
	f->cfg = (struct run_config){.work_dir = f->dir,
				     .launcher = DISPATCH_RUN_PATH,
				     .isa = cpu_isa(),
				     .no_net = 1,
				     .fsize = 64u << 20,
				     .nofile = 256,
				     .stop_grace_s = 5};
	if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL) {
		f->cfg.drop = 1;
		f->cfg.uid = pw->pw_uid;
		f->cfg.gid = pw->pw_gid;
	}
	*state = f;
	return 0;
}

/* Kills what a test left running: every supervisor still holding a directory. */
static void kill_leftovers(struct fixture *f)
{
	const char *names[] = {"i-1-3", "i-2-3", "i-3-3", "i-4-3", "i-5-3", "i-6-3"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *dir = fs_join(f->inst, names[i]), *pidf = dir ? fs_join(dir, "pid") : NULL;
		struct buf b = BUF_INIT(64);
		long shim, obj;
		if (pidf && fs_read_file(&b, pidf, 64) == 0 &&
		    sscanf(buf_str(&b), "%ld %ld", &shim, &obj) == 2) {
			kill(-(pid_t)obj, SIGKILL);
			kill((pid_t)shim, SIGKILL);
		}
		buf_release(&b);
		free(pidf);
		free(dir);
	}
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kill_leftovers(f);
	fs_rm_rf(f->dir);
	free(f->dir);
	free(f->inst);
	free(f->outbox);
	free(f);
	return 0;
}

static void on_report(void *ud, const char *event, const char *instance, uint64_t generation,
		      const char *detail)
{
	struct agent *a = ud;

	(void)instance, (void)generation, (void)detail;
	a->adopted += !strcmp(event, "adopted");
	a->exited += !strcmp(event, "exited");
	a->started += !strcmp(event, "started");
}

static int persist(void *ud)
{
	struct agent *a = ud;
	json_t *cursors = instances_cursors(a->inst);
	int r = outbox_save(a->ob, a->f->outbox, cursors, 0);

	json_decref(cursors);
	if (a->crash_after_save)
		_exit(9);
	return r;
}

/* Starts an agent over WORK: the outbox and cursors of the last one, then what runs is taken over. */
static void agent_open(struct fixture *f, struct agent *a, int crash_after_save)
{
	char *cache = fs_join(f->dir, "cache");
	json_t *cursors = NULL;
	struct instances_env env;

	memset(a, 0, sizeof(*a));
	a->f = f;

	a->crash_after_save = crash_after_save;
	char *trees = fs_join(f->dir, "unpacked");

	if (store_open(&a->st, cache, f->cache_max ? f->cache_max : 1u << 30) < 0 ||
	    (f->cfg.drop && store_set_trees(a->st, trees, "boot-1") < 0) || outbox_new(&a->ob, a->st) < 0 ||
	    outbox_load(a->ob, f->outbox, &cursors) < 0)
		fail_msg("%s", err_msg());
	free(trees);
	env = (struct instances_env){
	    .st = a->st, .ob = a->ob, .rc = &f->cfg, .report = on_report, .persist = persist, .ud = a};
	assert_int_equal(instances_new(&a->inst, &env), 0);
	instances_adopt(a->inst, cursors);
	json_decref(cursors);
	free(cache);
}

/* Forgets everything in memory, as a dead agent does; the objects go on. */
static void agent_close(struct agent *a)
{
	instances_free(a->inst);
	outbox_free(a->ob);
	store_free(a->st);
}

/* The queued events of an instance, in order (new reference). */
static json_t *events(struct agent *a, const char *instance)
{
	char *path = fs_join(a->f->dir, "inspect.json");
	struct buf b = BUF_INIT(16u << 20);
	json_t *doc = NULL, *out = json_array(), *e;
	size_t i;

	assert_int_equal(outbox_save(a->ob, path, NULL, 0), 0);
	if (fs_read_file(&b, path, 16u << 20) == 0)
		doc = json_loadb(b.data, b.len, 0, NULL);
	json_array_foreach(json_object_get(doc, "events"), i,
			   e) if (!strcmp(json_string_value(json_object_get(e, "instance")), instance))
	    json_array_append(out, json_object_get(e, "event"));
	json_decref(doc);
	buf_release(&b);
	unlink(path);
	free(path);
	return out;
}

static size_t count(struct agent *a, const char *instance, const char *kind)
{
	json_t *ev = events(a, instance), *e;
	size_t i, n = 0;

	json_array_foreach(ev, i, e) n += !strcmp(json_string_value(json_object_get(e, "kind")), kind);
	json_decref(ev);
	return n;
}

/* The log text relayed for an instance, all chunks together. */
static void log_text(struct agent *a, const char *instance, struct buf *out)
{
	json_t *ev = events(a, instance), *e;
	size_t i;

	json_array_foreach(ev, i, e) if (!strcmp(json_string_value(json_object_get(e, "kind")), "log"))
	    assert_int_equal(buf_append(out, json_string_value(json_object_get(e, "text")),
					json_string_length(json_object_get(e, "text"))),
			     0);
	json_decref(ev);
}

/* One turn of agent.c's loop, without signals and the network. */
static void turn(struct agent *a)
{
	struct pollfd fds[16];
	size_t n = instances_pollfds(a->inst, fds, 16);

	poll(fds, n, 20);
	instances_ready(a->inst, fds, n);
	instances_reap(a->inst);
	instances_tick(a->inst, run_now());
}

/* Turns until instance has an event of kind (or, kind NULL, until nothing runs); 0, or -1 after 20 s. */
static int turn_until(struct agent *a, const char *instance, const char *kind)
{
	for (int i = 0; i < 1000; i++) {
		turn(a);
		if (kind ? count(a, instance, kind) > 0 : instances_count(a->inst) == 0)
			return 0;
	}
	return -1;
}

/* Stores an artifact running script and returns its digest in d. */
static void make_artifact(struct fixture *f, const char *script, digest_hex *d)
{
	char *src = fs_join(f->dir, "src"), *bin = fs_join(src, "bin"), *meta = fs_join(src, "meta.json");
	char *exe = fs_join(bin, "obj"), *cache = fs_join(f->dir, "cache"), *tar = NULL, text[256];
	struct buf sh = BUF_INIT(1 << 20);
	store *st = NULL;

	fs_rm_rf(src);
	assert_int_equal(fs_mkdir_p(bin, 0755), 0);
	snprintf(text, sizeof(text), "{\"object\": \"obj\", \"entry\": \"obj\", \"isa\": \"%s\"}", cpu_isa());
	assert_int_equal(fs_write_atomic(meta, text, strlen(text), 0644), 0);
	assert_int_equal(buf_printf(&sh, "#!/bin/sh\n%s\n", script), 0);
	assert_int_equal(fs_write_atomic(exe, sh.data, sh.len, 0755), 0);
	assert_int_equal(store_open(&st, cache, 1u << 30), 0);
	tar = fs_join(store_tmpdir(st), "artifact.tar.zst");
	assert_int_equal(bundle_pack_dir(src, tar), 0);
	assert_int_equal(store_adopt(st, d, tar, NULL), 0);
	store_free(st);
	buf_release(&sh);
	free(src);
	free(bin);
	free(meta);
	free(exe);
	free(cache);
	free(tar);
}

static void start(struct agent *a, const char *instance, const digest_hex *artifact, uint64_t wall_s)
{
	char *args[] = {NULL};
	struct proto_msg m = {.type = PROTO_START, .generation = GEN, .args = args, .limits.wall_s = wall_s};

	snprintf(m.instance, sizeof(m.instance), "%s", instance);
	snprintf(m.entry, sizeof(m.entry), "obj");
	snprintf(m.artifact, sizeof(m.artifact), "%s", artifact->hex);
	instances_handle(a->inst, &m);
}

/* WORK/inst/<instance>-GEN/<file> (new string). */
static char *inst_path(struct fixture *f, const char *instance, const char *file)
{
	char name[96];

	snprintf(name, sizeof(name), "%s-%d%s%s", instance, GEN, file ? "/" : "", file ? file : "");
	return fs_join(f->inst, name);
}

/* The pids in the supervisor's pid file. */
static void pids(struct fixture *f, const char *instance, pid_t *shim, pid_t *obj)
{
	char *path = inst_path(f, instance, "pid");
	struct buf b = BUF_INIT(64);
	long s, o;

	assert_int_equal(fs_read_file(&b, path, 64), 0);
	assert_int_equal(sscanf(buf_str(&b), "%ld %ld", &s, &o), 2);
	*shim = (pid_t)s;
	*obj = (pid_t)o;
	buf_release(&b);
	free(path);
}

/* Lets the object (waiting for cwd/NAME) go on. */
static void touch(struct fixture *f, const char *instance, const char *name)
{
	char rel[64], *path;

	snprintf(rel, sizeof(rel), "cwd/%s", name);
	path = inst_path(f, instance, rel);
	assert_int_equal(fs_write_atomic(path, "", 0, 0644), 0);
	free(path);
}

static void wait_for_file(struct fixture *f, const char *instance, const char *file)
{
	char *path = inst_path(f, instance, file);

	for (int i = 0; i < 1000 && !fs_exists(path); i++)
		usleep(10000);
	if (!fs_exists(path))
		fail_msg("'%s' never came", path);
	free(path);
}

/*
 * Whether a process of the group (pgid) or, with pid > 0, that process still
 * runs: zombies do not count, nobody may reap orphans in a container.
 */
static int alive(pid_t pid, pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) != NULL) {
		char path[300], *p, state;
		struct buf b = BUF_INIT(4096);
		long pg;
		if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
		    (pid > 0 && strtol(e->d_name, NULL, 10) != pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (fs_read_file(&b, path, 4096) == 0 && (p = strrchr(buf_str(&b), ')')) != NULL &&
		    sscanf(p + 1, " %c %*d %ld", &state, &pg) == 2 && state != 'Z' && (pid > 0 || pg == pgid))
			n++;
		buf_release(&b);
	}
	if (d)
		closedir(d);
	return n > 0;
}

static _Noreturn void child_fail(const char *what)
{
	fprintf(stderr, "# agent process: %s: %s\n", what, err_msg());
	_exit(1);
}

/*
 * Runs an agent in a child process: it starts each instance of names with
 * artifact, turns until each has a progress event (and, with log, a log
 * event), saves, says so on a pipe and waits to be killed with SIGKILL,
 * as an agent crashing mid-run would be.
 */
static void crash_agent(struct fixture *f, const char **names, size_t n, const digest_hex *artifact,
			uint64_t wall_s, int log)
{
	int p[2], st;
	char c;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct agent a;
		close(p[0]);
		agent_open(f, &a, 0);
		for (size_t i = 0; i < n; i++)
			start(&a, names[i], artifact, wall_s);
		if (a.started != (int)n)
			child_fail("start");
		for (size_t i = 0; i < n; i++)
			if (turn_until(&a, names[i], "progress") < 0 ||
			    (log && turn_until(&a, names[i], "log") < 0))
				child_fail("no progress");
		if (persist(&a) < 0 || write(p[1], "k", 1) != 1)
			child_fail("save");
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		fail_msg("the agent process failed");
	close(p[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* The object goes on after its agent died; the next agent reports its later lines and its exit, once. */
static void test_restart__object_survives_and_is_taken_over(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"i-1"};
	struct buf log = BUF_INIT(1 << 20);
	json_t *ev, *running, *exit_ev = NULL, *e;
	struct agent a;
	digest_hex art;
	pid_t shim, obj;
	size_t i;
	char *dir;

	make_artifact(f,
		      "echo before\n"
		      "echo 'progress 0.25' >&3\n"
		      "while [ ! -e go ]; do sleep 0.02; done\n"
		      "echo after\n"
		      "echo '{\"n\": 1}' > \"$DISPATCH_STATE_OUT/state.json\"; echo 'checkpoint 1' >&3\n"
		      "sleep 0.6; echo 'progress 0.75' >&3\n"
		      "while [ ! -e go2 ]; do sleep 0.02; done\n"
		      "echo '{\"n\": 2}' > \"$DISPATCH_STATE_OUT/state.json\"; echo finished >&3",
		      &art);
	crash_agent(f, names, 1, &art, 0, 1);
	/* The agent is dead; its object is not. */
	pids(f, "i-1", &shim, &obj);
	assert_true(alive(shim, 0));
	assert_true(alive(obj, 0));

	agent_open(f, &a, 0);
	assert_int_equal(a.adopted, 1);
	assert_int_equal(instances_count(a.inst), 1);
	running = instances_running(a.inst);
	assert_string_equal(json_string_value(json_object_get(json_array_get(running, 0), "instance")),
			    "i-1");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(running, 0), "generation")), GEN);
	json_decref(running);
	touch(f, "i-1", "go");
	assert_int_equal(turn_until(&a, "i-1", "checkpoint"), 0);
	touch(f, "i-1", "go2");
	assert_int_equal(turn_until(&a, "i-1", NULL), 0);
	assert_int_equal(a.exited, 1);

	ev = events(&a, "i-1");
	assert_int_equal(count(&a, "i-1", "exit"), 1);
	assert_int_equal(count(&a, "i-1", "checkpoint"), 1);
	json_array_foreach(ev, i, e)
	{
		const char *kind = json_string_value(json_object_get(e, "kind"));
		if (!strcmp(kind, "exit"))
			exit_ev = e;
		if (!strcmp(kind, "progress")) /* the newest replaced the one queued before the crash */
			assert_true(json_real_value(json_object_get(e, "value")) == 0.75);
	}
	assert_non_null(exit_ev);
	assert_int_equal(json_integer_value(json_object_get(exit_ev, "code")), 0);
	assert_true(json_is_string(json_object_get(exit_ev, "state")));
	/* The log was relayed from where the dead agent stopped: nothing twice. */
	log_text(&a, "i-1", &log);
	assert_string_equal(buf_str(&log), "before\nafter\n");
	dir = inst_path(f, "i-1", NULL);
	assert_false(fs_exists(dir));
	agent_close(&a);

	/* Yet another agent: nothing to take over, the exit is queued once. */
	agent_open(f, &a, 0);
	assert_int_equal(a.adopted, 0);
	assert_int_equal(count(&a, "i-1", "exit"), 1);
	agent_close(&a);
	json_decref(ev);
	buf_release(&log);
	free(dir);
}

/* The object exits while no agent runs; an agent dies again right after saving that exit. */
static void test_restart__exit_while_away_is_reported_once(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"i-2", "i-3"};
	json_t *ev;
	struct agent a;
	digest_hex art;
	char *dir2, *dir3;
	pid_t pid;
	int st;

	make_artifact(f,
		      "echo 'progress 0.5' >&3\n"
		      "while [ ! -e go ]; do sleep 0.02; done\n"
		      "exit 3",
		      &art);
	crash_agent(f, names, 2, &art, 0, 0);
	touch(f, "i-2", "go");
	touch(f, "i-3", "go");
	wait_for_file(f, "i-2", "exit");
	wait_for_file(f, "i-3", "exit");

	/* This agent reports the exits, saves them, and dies before their directories go. */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		agent_open(f, &a, 1);
		_exit(0); /* not reached: persist() ends the process */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 9);
	dir2 = inst_path(f, "i-2", NULL);
	dir3 = inst_path(f, "i-3", NULL);
	assert_true(fs_exists(dir2) || fs_exists(dir3));

	agent_open(f, &a, 0);
	assert_int_equal(turn_until(&a, NULL, NULL), 0);
	assert_int_equal(count(&a, "i-2", "exit"), 1);
	assert_int_equal(count(&a, "i-3", "exit"), 1);
	ev = events(&a, "i-2");
	assert_int_equal(
	    json_integer_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1), "code")), 3);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1), "error")),
	    "exit 3");
	assert_false(fs_exists(dir2));
	assert_false(fs_exists(dir3));
	agent_close(&a);
	json_decref(ev);
	free(dir2);
	free(dir3);
}

/* Stop messages reach taken-over objects: a checkpoint request, a kill. */
static void test_restart__stop_after_takeover(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"i-4", "i-5"};
	struct proto_msg stop = {.type = PROTO_STOP, .generation = GEN};
	json_t *ev;
	struct agent a;
	digest_hex art;
	pid_t shim, obj;

	make_artifact(f,
		      "trap 'echo {} > \"$DISPATCH_STATE_OUT/state.json\"; exit 85' USR1\n"
		      "sleep 300 &\n"
		      "echo 'progress 0.1' >&3\n"
		      "while :; do sleep 0.02; done",
		      &art);
	crash_agent(f, names, 2, &art, 0, 0);
	pids(f, "i-5", &shim, &obj);

	agent_open(f, &a, 0);
	assert_int_equal(a.adopted, 2);
	snprintf(stop.instance, sizeof(stop.instance), "i-4");
	stop.mode = PROTO_STOP_CHECKPOINT;
	instances_handle(a.inst, &stop);
	snprintf(stop.instance, sizeof(stop.instance), "i-5");
	stop.mode = PROTO_STOP_KILL;
	instances_handle(a.inst, &stop);
	assert_int_equal(turn_until(&a, NULL, NULL), 0);

	ev = events(&a, "i-4");
	{
		json_t *x = json_array_get(ev, json_array_size(ev) - 1);
		assert_string_equal(json_string_value(json_object_get(x, "kind")), "exit");
		assert_int_equal(json_integer_value(json_object_get(x, "code")), 85);
		assert_true(json_is_string(json_object_get(x, "state")));
	}
	json_decref(ev);
	ev = events(&a, "i-5");
	{
		json_t *x = json_array_get(ev, json_array_size(ev) - 1);
		assert_string_equal(json_string_value(json_object_get(x, "kind")), "exit");
		assert_int_equal(json_integer_value(json_object_get(x, "signal")), SIGKILL);
		assert_string_equal(json_string_value(json_object_get(x, "error")), "killed on request");
	}
	/* The whole process group went, the background sleep too. */
	assert_false(alive(0, obj));
	agent_close(&a);
	json_decref(ev);
}

/* The supervisor enforces the wall-clock limit while no agent runs. */
static void test_restart__wall_clock_limit_without_agent(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"i-6"};
	json_t *ev, *x;
	struct agent a;
	digest_hex art;

	make_artifact(f, "echo 'progress 0' >&3; sleep 30", &art);
	crash_agent(f, names, 1, &art, 1, 0);
	wait_for_file(f, "i-6", "exit");
	agent_open(f, &a, 0);
	assert_int_equal(turn_until(&a, NULL, NULL), 0);
	ev = events(&a, "i-6");
	x = json_array_get(ev, json_array_size(ev) - 1);
	assert_int_equal(json_integer_value(json_object_get(x, "signal")), SIGKILL);
	assert_string_equal(json_string_value(json_object_get(x, "error")),
			    "wall-clock limit of 1 s reached");
	agent_close(&a);
	json_decref(ev);
}

/* A supervisor killed outright takes its object along, and the agent says so. */
static void test_restart__supervisor_killed(void **state)
{
	struct fixture *f = *state;
	json_t *ev, *x;
	struct agent a;
	digest_hex art;
	pid_t shim, obj;

	make_artifact(f, "echo 'progress 0' >&3; sleep 30", &art);
	agent_open(f, &a, 0);
	start(&a, "i-1", &art, 0);
	assert_int_equal(turn_until(&a, "i-1", "progress"), 0);
	pids(f, "i-1", &shim, &obj);
	assert_int_equal(kill(shim, SIGKILL), 0);
	assert_int_equal(turn_until(&a, NULL, NULL), 0);
	ev = events(&a, "i-1");
	x = json_array_get(ev, json_array_size(ev) - 1);
	assert_int_equal(json_integer_value(json_object_get(x, "signal")), SIGKILL);
	assert_non_null(strstr(json_string_value(json_object_get(x, "error")), "supervisor"));
	for (int i = 0; i < 100 && alive(obj, 0); i++)
		usleep(10000);
	assert_false(alive(obj, 0));
	agent_close(&a);
	json_decref(ev);
}

/* A directory whose start never got as far as the supervisor is removed, not reported. */
static void test_restart__unstarted_directory_is_removed(void **state)
{
	struct fixture *f = *state;
	char *dir = inst_path(f, "i-1", NULL), *json = inst_path(f, "i-1", "instance.json");
	char *junk = fs_join(f->inst, "junk"), *gone = fs_join(f->inst, ".gone-i-9-1");
	const char *text =
	    "{\"instance\": \"i-1\", \"generation\": 3, \"fork_index\": 0, \"entry\": \"obj\", "
	    "\"limits\": {\"cpu_s\": 0, \"memory\": 0, \"wall_s\": 0}, \"grace_s\": 5}";
	struct agent a;

	assert_int_equal(fs_mkdir_p(dir, 0711), 0);
	assert_int_equal(fs_write_atomic(json, text, strlen(text), 0600), 0);
	assert_int_equal(fs_mkdir_p(junk, 0711), 0);
	assert_int_equal(fs_mkdir_p(gone, 0711), 0);
	agent_open(f, &a, 0);
	assert_int_equal(a.adopted, 0);
	assert_int_equal(count(&a, "i-1", "exit"), 0);
	assert_false(fs_exists(dir));
	assert_false(fs_exists(junk));
	assert_false(fs_exists(gone));
	agent_close(&a);
	free(dir);
	free(json);
	free(junk);
	free(gone);
}

/*
 * Objects that run as another user share one read-only tree per artifact,
 * unpacked once: a run's directory holds no copy. A run taken over after a
 * restart keeps the tree pinned (instance.json names its blob), so the
 * cache cannot take it away under the object; it goes once no run uses it.
 */
static void test_restart__runs_share_one_tree_kept_while_they_run(void **state)
{
	struct fixture *f = *state;
	char *tree, *tree_exe, *inst_bin, *trees = fs_join(f->dir, "unpacked");
	struct buf text = BUF_INIT(1 << 16);
	struct agent a;
	digest_hex art;
	char *path;

	if (!f->cfg.drop) {
		free(trees);
		skip(); /* objects run as the agent's user: each run unpacks its own copy */
	}
	make_artifact(f, "while [ ! -e go ]; do sleep 0.02; done", &art);
	tree = fs_join(trees, art.hex);
	tree_exe = fs_join(tree, "bin/obj");
	agent_open(f, &a, 0);
	start(&a, "i-1", &art, 0);
	start(&a, "i-2", &art, 0);
	assert_int_equal(a.started, 2);
	assert_true(fs_exists(tree_exe));
	inst_bin = inst_path(f, "i-1", "bin");
	assert_false(fs_exists(inst_bin));
	free(inst_bin);
	inst_bin = inst_path(f, "i-2", "bin");
	assert_false(fs_exists(inst_bin));
	path = inst_path(f, "i-1", "instance.json");
	assert_int_equal(fs_read_file(&text, path, 1 << 16), 0);
	assert_non_null(strstr(buf_str(&text), art.hex));
	free(path);
	/* The agent dies; the next one has a cache too small for anything not in use. */
	agent_close(&a);
	f->cache_max = 1;
	agent_open(f, &a, 0);
	assert_int_equal(a.adopted, 2);
	store_evict(a.st);
	assert_true(fs_exists(tree_exe));
	touch(f, "i-1", "go");
	assert_int_equal(turn_until(&a, "i-1", "exit"), 0);
	assert_true(fs_exists(tree_exe)); /* i-2 still uses it */
	touch(f, "i-2", "go");
	assert_int_equal(turn_until(&a, NULL, NULL), 0);
	assert_false(fs_exists(tree));
	agent_close(&a);
	buf_release(&text);
	free(inst_bin);
	free(tree);
	free(tree_exe);
	free(trees);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_restart__object_survives_and_is_taken_over),
		T(test_restart__exit_while_away_is_reported_once),
		T(test_restart__stop_after_takeover),
		T(test_restart__wall_clock_limit_without_agent),
		T(test_restart__supervisor_killed),
		T(test_restart__unstarted_directory_is_removed),
		T(test_restart__runs_share_one_tree_kept_while_they_run),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
