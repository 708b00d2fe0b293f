/* test_agent_run.c - objects (here /bin/sh scripts) started through the real launcher, dispatch-run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "bundle.h"
#include "cgroup.h"
#include "cpu.h"
#include "error.h"
#include "fsutil.h"
#include "protocol.h"
#include "run.h"
#include "run_int.h" /* out_dir, to break it */
#include "sandbox.h"

#ifndef DISPATCH_RUN_PATH
#error "DISPATCH_RUN_PATH names the dispatch-run executable"
#endif

struct fixture {
	char *dir;	/* the test's directory, also WORK */
	char *artifact; /* the bundle built by make_artifact() */
	struct run_config cfg;
	struct run_note notes[64];
	size_t nnotes;
	char cgroup[CGROUP_PATH_MAX]; /* the runs' control groups, as the agent makes them; "": none */
};

/* Whether this process is in a cgroup v2 group at all (else runs cannot get groups, and that is fine). */
static int have_cgroup2(void)
{
	struct buf text = BUF_INIT(4096);
	int r = fs_read_file(&text, "/proc/self/cgroup", 4096) == 0 &&
		(!strncmp(buf_str(&text), "0::", 3) || strstr(buf_str(&text), "\n0::"));

	buf_release(&text);
	return r;
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));
	struct passwd *pw;

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->dir, tmp && *tmp ? tmp : "/tmp", "run"), 0);
	assert_int_equal(chmod(f->dir, 0711), 0); /* the object's user passes through */
	f->artifact = fs_join(f->dir, "artifact.tar.zst");
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
	/*
	 * As the agent does: as root with cgroup v2, every run gets a control group. Where groups cannot
	 * be made (a read-only /sys/fs/cgroup in a container), the tests of them are skipped; the
	 * cluster tests check that agents make them.
	 */
	if (geteuid() == 0 && have_cgroup2()) {
		char why[256];
		int fast;
		if (cgroup_agent_base(f->dir, f->cgroup, sizeof(f->cgroup), &fast, why, sizeof(why)) == 0)
			f->cfg.cgroup_base = f->cgroup;
		else
			print_message("no control groups for runs here: %s\n", why);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->cfg.cgroup_base && rmdir(f->cgroup) < 0 && errno != ENOENT)
		fail_msg("a run's control group is left in '%s': %s", f->cgroup, strerror(errno));
	fs_rm_rf(f->dir);
	free(f->dir);
	free(f->artifact);
	free(f);
	return 0;
}

/* Packs an artifact holding meta.json (for isa) and, unless script is NULL, bin/obj running it. */
static void make_artifact(struct fixture *f, const char *isa, const char *script)
{
	char *src = fs_join(f->dir, "src"), *bin = fs_join(src, "bin"), *meta = fs_join(src, "meta.json");
	char *exe = fs_join(bin, "obj"), text[256];
	struct buf sh = BUF_INIT(1 << 20);

	fs_rm_rf(src);
	assert_int_equal(fs_mkdir_p(bin, 0755), 0);
	snprintf(text, sizeof(text), "{\"object\": \"obj\", \"entry\": \"obj\", \"isa\": \"%s\"}", isa);
	assert_int_equal(fs_write_atomic(meta, text, strlen(text), 0644), 0);
	if (script) {
		assert_int_equal(buf_printf(&sh, "#!/bin/sh\n%s\n", script), 0);
		assert_int_equal(fs_write_atomic(exe, sh.data, sh.len, 0755), 0);
	}
	assert_int_equal(bundle_pack_dir(src, f->artifact), 0);
	buf_release(&sh);
	free(src);
	free(bin);
	free(meta);
	free(exe);
}

static struct proto_msg start_msg(const char *instance, char **args, size_t nargs)
{
	struct proto_msg m = {
	    .type = PROTO_START, .generation = 3, .fork_index = 2, .args = args, .nargs = nargs};

	snprintf(m.instance, sizeof(m.instance), "%s", instance);
	snprintf(m.entry, sizeof(m.entry), "obj");
	return m;
}

/* Creates, unpacks and starts a run of script. */
static run *start(struct fixture *f, const char *script)
{
	char *args[] = {"first arg", "second", NULL};
	struct proto_msg m = start_msg("i-7", args, 2);
	run *r = NULL;

	make_artifact(f, cpu_isa(), script);
	assert_int_equal(run_new(&r, &f->cfg, &m), 0);
	if (run_unpack(r, f->artifact, NULL) < 0 || run_start(r) < 0)
		fail_msg("cannot start: %s", err_msg());
	return r;
}

static void collect(void *ud, run *r, const struct run_note *note)
{
	struct fixture *f = ud;

	(void)r;
	if (f->nnotes < sizeof(f->notes) / sizeof(f->notes[0]))
		f->notes[f->nnotes++] = *note;
}

/* Reads the progress lines until a note of kind arrives, or (kind 0) the object exited and all are read. */
static void read_until(struct fixture *f, run *r, enum run_note_kind kind)
{
	struct run_exit x;

	for (int i = 0; i < 2000; i++) {
		size_t before = f->nnotes;
		if (!kind && run_reap(r, &x) < 0)
			fail_msg("%s", err_msg());
		if (run_read_progress(r, collect, f) == 1)
			return;
		for (size_t k = before; kind && k < f->nnotes; k++)
			if (f->notes[k].kind == kind)
				return;
		usleep(10000);
	}
	fail_msg("no progress line came");
}

static void finish(run *r, struct run_exit *x)
{
	if (run_wait(r, x, 20000) < 0)
		fail_msg("%s", err_msg());
}

/* The whole log (relaying it as the agent does). */
static void read_log(run *r, struct buf *out)
{
	while (run_read_log(r, out, 65536, 1) > 0)
		;
}

static void test_run__progress_lines_are_parsed(void **state)
{
	struct fixture *f = *state;
	struct run_exit x;
	run *r =
	    start(f, "echo 'progress 0.25' >&3\n"
		     "echo '{}' > \"$DISPATCH_STATE_OUT/state.json\"\n"
		     "echo 'checkpoint 1' >&3\n"
		     "echo 'progress 7' >&3; echo 'hello there' >&3; printf 'progress 0.5' >&3; echo >&3\n"
		     "head -c 5000 /dev/zero | tr '\\0' x >&3; echo >&3\n"
		     "echo finished >&3");

	read_until(f, r, 0);
	finish(r, &x);
	assert_int_equal(x.code, 0);
	assert_false(x.checkpointed);
	assert_string_equal(x.error, "");
	assert_int_equal(f->nnotes, 4);
	assert_int_equal(f->notes[0].kind, RUN_NOTE_PROGRESS);
	assert_true(f->notes[0].progress == 0.25);
	assert_int_equal(f->notes[1].kind, RUN_NOTE_CHECKPOINT);
	assert_int_equal(f->notes[1].checkpoint, 1);
	assert_int_equal(f->notes[2].kind, RUN_NOTE_PROGRESS);
	assert_true(f->notes[2].progress == 0.5);
	assert_int_equal(f->notes[3].kind, RUN_NOTE_FINISHED);
	run_free(r);
}

/* The supervisor keeps the progress file small: the newest progress of each half second, no repeats, no junk. */
static void test_run__progress_is_thinned(void **state)
{
	struct fixture *f = *state;
	struct run_exit x;
	size_t progress = 0, checkpoints = 0;
	run *r = start(f, "i=0; while [ $i -lt 100 ]; do printf 'progress 0.%02d\\n' $i >&3; i=$((i + 1)); done\n"
			  "echo '{}' > \"$DISPATCH_STATE_OUT/state.json\"\n"
			  "echo 'checkpoint 1' >&3; echo 'checkpoint 1' >&3\n"
			  "head -c 300 /dev/zero | tr '\\0' x >&3; echo >&3; echo 'progress 1' >&3\n"
			  "echo finished >&3");

	read_until(f, r, 0);
	finish(r, &x);
	assert_int_equal(x.code, 0);
	for (size_t i = 0; i < f->nnotes; i++) {
		progress += f->notes[i].kind == RUN_NOTE_PROGRESS;
		checkpoints += f->notes[i].kind == RUN_NOTE_CHECKPOINT;
	}
	assert_true(progress >= 3 && progress < 20);
	assert_int_equal(checkpoints, 1);
	assert_int_equal(f->notes[0].kind, RUN_NOTE_PROGRESS);
	assert_true(f->notes[0].progress == 0);
	/* What was pending goes out before the checkpoint line, the last progress before "finished". */
	for (size_t i = 1; i < f->nnotes; i++)
		if (f->notes[i].kind == RUN_NOTE_CHECKPOINT) {
			assert_int_equal(f->notes[i - 1].kind, RUN_NOTE_PROGRESS);
			assert_true(f->notes[i - 1].progress == 0.99);
		}
	assert_int_equal(f->notes[f->nnotes - 1].kind, RUN_NOTE_FINISHED);
	assert_true(f->notes[f->nnotes - 2].progress == 1);
	run_free(r);
}

static void test_run__parse_line(void **state)
{
	struct run_note n;

	(void)state;
	assert_int_equal(run_parse_line(&n, "progress 1"), 0);
	assert_true(n.progress == 1.0);
	assert_int_equal(run_parse_line(&n, "checkpoint 12"), 0);
	assert_int_equal(n.checkpoint, 12);
	assert_int_equal(run_parse_line(&n, "finished"), 0);
	assert_int_equal(run_parse_line(&n, "progress -0.1"), ERR_INVALID);
	assert_int_equal(run_parse_line(&n, "progress nan"), ERR_INVALID);
	assert_int_equal(run_parse_line(&n, "progress 0.5x"), ERR_INVALID);
	assert_int_equal(run_parse_line(&n, "checkpoint -1"), ERR_INVALID);
	assert_int_equal(run_parse_line(&n, "checkpoint"), ERR_INVALID);
	assert_int_equal(run_parse_line(&n, "finished now"), ERR_INVALID);
	assert_int_equal(run_parse_line(&n, ""), ERR_INVALID);
}

static void test_run__exit_85_is_checkpointed(void **state)
{
	struct fixture *f = *state;
	char *bundle = fs_join(f->dir, "state.tar.zst"), *dest = fs_join(f->dir, "unpacked"), *json;
	struct buf text = BUF_INIT(4096);
	struct run_exit x;
	run *r =
	    start(f, "mkdir \"$DISPATCH_STATE_OUT/blobs\"; echo data > \"$DISPATCH_STATE_OUT/blobs/b.bin\"\n"
		     "echo '{\"dispatch-state\": 1}' > \"$DISPATCH_STATE_OUT/state.json\"; exit 85");

	finish(r, &x);
	assert_int_equal(x.code, 85);
	assert_true(x.checkpointed);
	assert_string_equal(x.error, "");
	assert_int_equal(run_pack_state(r, bundle), 0);
	assert_int_equal(fs_mkdir_p(dest, 0755), 0);
	assert_int_equal(bundle_extract_file(bundle, dest, 0, NULL), 0);
	json = fs_join(dest, "state.json");
	assert_int_equal(fs_read_file(&text, json, 4096), 0);
	assert_string_equal(buf_str(&text), "{\"dispatch-state\": 1}\n");
	run_free(r);
	buf_release(&text);
	free(json);
	free(bundle);
	free(dest);
}

/* A state bundle larger than the file size limit is refused, and nothing past the limit is written. */
static void test_run__packed_state_is_bounded(void **state)
{
	struct fixture *f = *state;
	char *bundle = fs_join(f->dir, "big.tar.zst");
	struct run_exit x;
	struct stat st;
	run *r;

	f->cfg.fsize = 8192; /* each file below it, the bundle of all of them above */
	r = start(f, "for i in 1 2 3 4; do head -c 6000 /dev/urandom > \"$DISPATCH_STATE_OUT/r$i\"; done\n"
		     "echo '{\"dispatch-state\": 1}' > \"$DISPATCH_STATE_OUT/state.json\"; exit 85");
	finish(r, &x);
	assert_int_equal(x.code, 85);
	assert_int_equal(run_pack_state(r, bundle), ERR_LIMIT);
	assert_int_equal(stat(bundle, &st), 0);
	assert_true(st.st_size <= 8192 + (1 << 16));
	run_free(r);
	free(bundle);
}

/* A packed state that cannot be written is an error at once: the packer, stuck on a full pipe, is stopped. */
static void test_run__packed_state_write_error_does_not_hang(void **state)
{
	struct fixture *f = *state;
	struct run_exit x;
	run *r = start(f, "head -c 400000 /dev/urandom > \"$DISPATCH_STATE_OUT/noise\"\n"
			  "echo '{\"dispatch-state\": 1}' > \"$DISPATCH_STATE_OUT/state.json\"; exit 85");

	finish(r, &x);
	assert_int_equal(x.code, 85);
	alarm(20); /* a hang fails the test instead of blocking the suite */
	assert_true(run_pack_state(r, "/dev/full") < 0);
	alarm(0);
	run_free(r);
}

/* An ended run's directory is renamed aside at once and removed at the sweep. */
static void test_run__directory_goes_at_the_sweep(void **state)
{
	struct fixture *f = *state;
	struct run_config other = f->cfg;
	struct run_exit x;
	run *r = start(f, "echo '{\"dispatch-state\": 1}' > \"$DISPATCH_STATE_OUT/state.json\"; exit 0");
	char *dir = strdup(run_dir(r)), *inst = fs_join(f->dir, "inst"), *gone;
	char name[256];

	finish(r, &x);
	snprintf(name, sizeof(name), ".gone-%s", strrchr(dir, '/') + 1);
	gone = fs_join(inst, name);
	run_free(r);
	/* Out of the way at once (no later agent takes it for a run), removed only at the sweep. */
	assert_false(fs_exists(dir));
	assert_true(fs_exists(gone));
	assert_int_equal(run_sweep(&f->cfg, 4), 1);
	assert_false(fs_exists(gone));
	assert_true(fs_exists(inst));
	/* Nothing to sweep, or no inst/ at all: fine. */
	assert_int_equal(run_sweep(&f->cfg, 4), 0);
	other.work_dir = gone;
	assert_int_equal(run_sweep(&other, 4), 0);
	free(dir);
	free(inst);
	free(gone);
}

/* A start renames a spare directory into place; its out/ and cwd/ become the object's only then. */
static void test_run__spare_directories(void **state)
{
	struct fixture *f = *state;
	char *inst = fs_join(f->dir, "inst"), *spare, *spare_out, *out, *spare3;
	struct run_exit x;
	struct stat st;
	run *r;

	assert_int_equal(run_make_spares(f->dir, 2), 2); /* at most as many as asked */
	assert_int_equal(run_make_spares(f->dir, 10), 2);
	spare = fs_join(inst, ".spare-0");
	spare_out = fs_join(spare, "out");
	spare3 = fs_join(inst, ".spare-3");
	assert_true(fs_exists(spare3));
	/* Until taken, nothing in it is the object's user's. */
	assert_int_equal(stat(spare_out, &st), 0);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(st.st_mode & 0777, 0700);
	r = start(f, "echo '{\"dispatch-state\": 1}' > \"$DISPATCH_STATE_OUT/state.json\"; echo hello; exit 0");
	assert_false(fs_exists(spare)); /* this run's directory now */
	out = fs_join(run_dir(r), "out");
	assert_int_equal(stat(out, &st), 0);
	if (f->cfg.drop)
		assert_int_equal(st.st_uid, f->cfg.uid);
	finish(r, &x);
	assert_int_equal(x.code, 0);
	assert_true(run_has_state(r));
	run_free(r);
	/* Made again, and a second call changes nothing. */
	assert_int_equal(run_make_spares(f->dir, 10), 1);
	assert_true(fs_exists(spare));
	assert_int_equal(run_make_spares(f->dir, 10), 0);
	free(inst);
	free(spare);
	free(spare_out);
	free(spare3);
	free(out);
}

/*
 * A process one run left behind (setsid, its working directory the run's
 * out/) cannot put anything in a later run's out/: spares are never made of
 * directories an object could still hold.
 */
static void test_run__leftover_process_cannot_reach_the_next_run(void **state)
{
	struct fixture *f = *state;
	char *planted;
	struct run_exit x;
	run *r = start(f, "cd \"$DISPATCH_STATE_OUT\" || exit 1\n"
			  "setsid sh -c 'i=0; while [ $i -lt 40 ]; do echo planted > planted 2>/dev/null; "
			  "rm -f planted 2>/dev/null; i=$((i+1)); sleep 0.05; done; echo planted > planted' "
			  "</dev/null >/dev/null 2>&1 &\nsleep 0.2; exit 0");

	finish(r, &x);
	run_free(r);
	/* What the chores do next: a spare made, the ended run swept. */
	assert_true(run_make_spares(f->dir, 1) >= 0);
	assert_true(run_sweep(&f->cfg, 4) >= 0);
	r = start(f, "sleep 2.5; exit 0"); /* past the leftover's last try */
	finish(r, &x);
	planted = fs_join(run_dir(r), "out/planted");
	assert_false(fs_exists(planted));
	run_free(r);
	free(planted);
}

static void test_run__checkpoint_waits_for_a_complete_state(void **state)
{
	struct fixture *f = *state;
	char *bundle = fs_join(f->dir, "state.tar.zst");
	struct run_exit x;
	run *r = start(f, "O=$DISPATCH_STATE_OUT; echo '{}' > \"$O/state.json\"; sleep 0.1\n"
			  "mkdir \"$O/blobs\"; echo half > \"$O/blobs/grid.bin.tmp\"\n"
			  "trap 'rm \"$O/blobs/grid.bin.tmp\"; echo \"progress 0.2\" >&3' USR1\n"
			  "echo 'progress 0.1' >&3; while :; do sleep 0.05; done");

	read_until(f, r, RUN_NOTE_PROGRESS);
	assert_int_equal(run_pack_state(r, bundle), ERR_CONFLICT);
	assert_non_null(strstr(err_msg(), "writing its next checkpoint"));
	assert_int_equal(run_stop(r, PROTO_STOP_CHECKPOINT), 0);
	read_until(f, r, RUN_NOTE_PROGRESS);
	assert_int_equal(f->nnotes, 2);
	assert_int_equal(run_pack_state(r, bundle), 0);
	assert_int_equal(run_stop(r, PROTO_STOP_KILL), 0);
	finish(r, &x);
	run_free(r);
	free(bundle);
}

static void test_run__no_state_is_reported(void **state)
{
	struct fixture *f = *state;
	char *bundle = fs_join(f->dir, "state.tar.zst");
	struct run_exit x;
	run *r = start(f, "exit 3");

	finish(r, &x);
	assert_int_equal(x.code, 3);
	assert_string_equal(x.error, "exit 3");
	assert_int_equal(run_pack_state(r, bundle), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "wrote no state.json"));
	run_free(r);
	free(bundle);
}

/* A state that cannot be looked at is an error, not "no state": the instance must not end done without its result. */
static void test_run__unreadable_state_is_an_error(void **state)
{
	struct fixture *f = *state;
	char *bundle = fs_join(f->dir, "state.tar.zst");
	struct run_exit x;
	run *r = start(f, "echo '{}' > \"$DISPATCH_STATE_OUT/state.json\"; exit 0");

	finish(r, &x);
	assert_int_equal(x.code, 0);
	assert_int_equal(fs_rm_rf(r->out_dir), 0);
	assert_int_equal(fs_write_renamed(r->out_dir, "not a directory", 15, 0600), 0);
	assert_int_equal(run_pack_state(r, bundle), ERR_IO);
	assert_non_null(strstr(err_msg(), "state.json"));
	run_free(r);
	free(bundle);
}

static void test_run__stop_sends_sigusr1(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(1 << 20);
	struct run_exit x;
	run *r = start(f, "trap 'echo got usr1; echo {} > \"$DISPATCH_STATE_OUT/state.json\"; exit 85' USR1\n"
			  "echo 'progress 0' >&3\n"
			  "while :; do sleep 0.05; done");

	read_until(f, r, RUN_NOTE_PROGRESS);
	assert_int_equal(run_reap(r, &x), 0); /* still running */
	assert_int_equal(run_stop(r, PROTO_STOP_CHECKPOINT), 0);
	finish(r, &x);
	assert_int_equal(x.code, 85);
	assert_true(x.checkpointed);
	read_log(r, &log);
	assert_non_null(strstr(buf_str(&log), "got usr1"));
	run_free(r);
	buf_release(&log);
}

/* The checkpoint that answers a stop comes with the exit, not as a periodic checkpoint of its own. */
static void test_run__stop_checkpoint_is_not_a_periodic_one(void **state)
{
	struct fixture *f = *state;
	struct run_exit x;
	run *r = start(f, "trap 'echo {} > \"$DISPATCH_STATE_OUT/state.json\"; echo \"checkpoint 2\" >&3; exit 85' USR1\n"
			  "echo '{}' > \"$DISPATCH_STATE_OUT/state.json\"; echo 'checkpoint 1' >&3\n"
			  "while :; do sleep 0.05; done");

	read_until(f, r, RUN_NOTE_CHECKPOINT); /* a periodic one: reported */
	assert_int_equal(run_stop(r, PROTO_STOP_CHECKPOINT), 0);
	finish(r, &x);
	assert_true(x.checkpointed);
	read_until(f, r, 0);
	for (size_t k = 0; k < f->nnotes; k++)
		if (f->notes[k].kind == RUN_NOTE_CHECKPOINT)
			assert_int_equal(f->notes[k].checkpoint, 1);
	run_free(r);
}

static void test_run__kill_takes_the_process_group(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(4096);
	struct run_exit x;
	char path[64];
	long child;
	run *r = start(f, "sleep 300 & echo $! ; echo 'progress 0' >&3; wait");

	read_until(f, r, RUN_NOTE_PROGRESS);
	assert_int_equal(run_stop(r, PROTO_STOP_KILL), 0);
	finish(r, &x);
	assert_int_equal(x.signo, SIGKILL);
	assert_string_equal(x.error, "killed on request");
	read_log(r, &log);
	child = strtol(buf_str(&log), NULL, 10);
	assert_true(child > 0);
	/* The background child is gone too (or a zombie waiting for init). */
	snprintf(path, sizeof(path), "/proc/%ld/status", child);
	for (int i = 0; i < 100 && fs_exists(path); i++) {
		struct buf st = BUF_INIT(8192);
		int zombie = fs_read_file(&st, path, 8192) == 0 && strstr(buf_str(&st), "State:\tZ");
		buf_release(&st);
		if (zombie)
			break;
		usleep(10000);
		if (i == 99)
			fail_msg("pid %ld survived", child);
	}
	run_free(r);
	buf_release(&log);
}

/* The pid an object's detached process wrote to cwd/stray. */
static long stray_pid(run *r)
{
	struct buf text = BUF_INIT(64);
	char *path = fs_join(r->cwd_dir, "stray");
	long pid = -1;

	for (int i = 0; i < 500 && pid <= 0; i++) {
		buf_reset(&text);
		if (fs_read_file(&text, path, 64) == 0)
			pid = strtol(buf_str(&text), NULL, 10);
		if (pid <= 0)
			usleep(10000);
	}
	assert_true(pid > 0);
	buf_release(&text);
	free(path);
	return pid;
}

/* pid is dead: gone, or a zombie its new parent has not reaped yet. */
static int is_dead(long pid)
{
	struct buf st = BUF_INIT(8192);
	char path[64];
	int dead;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	dead = fs_read_file(&st, path, 8192) < 0 || strstr(buf_str(&st), "State:\tZ") != NULL;
	buf_release(&st);
	return dead;
}

/* The object's process that left its session, and its children, in a script. */
#define DETACH                                                                                               \
	"setsid sh -c 'echo $$ > stray.tmp && mv stray.tmp stray; exec sleep 30' </dev/null >/dev/null 2>&1 &\n"

/*
 * A process that leaves the object's session (setsid) is out of reach of a
 * kill of the process group; in the run's control group it is not: it is
 * dead by the time the run's exit is known, and the group is gone.
 */
static void test_run__detached_process_ends_with_the_run(void **state)
{
	struct fixture *f = *state;
	struct run_exit x;
	char group[CGROUP_PATH_MAX + 64], *go;
	long pid;
	run *r;

	if (!f->cfg.cgroup_base)
		skip();
	r = start(f, DETACH "while [ ! -e go ]; do sleep 0.01; done; exit 0");
	snprintf(group, sizeof(group), "%s/%s", f->cgroup, r->name);
	pid = stray_pid(r);
	assert_true(fs_exists(group));
	go = fs_join(r->cwd_dir, "go");
	assert_int_equal(fs_write_atomic(go, "", 0, 0644), 0);
	free(go);
	finish(r, &x);
	assert_int_equal(x.code, 0);
	if (!is_dead(pid))
		fail_msg("the detached process %ld outlived its run", pid);
	assert_false(fs_exists(group));
	run_free(r);
}

/* The same for a run that is killed on request while its detached process runs. */
static void test_run__kill_takes_detached_processes(void **state)
{
	struct fixture *f = *state;
	struct run_exit x;
	long pid;
	run *r;

	if (!f->cfg.cgroup_base)
		skip();
	r = start(f, DETACH "echo 'progress 0' >&3; sleep 30");
	pid = stray_pid(r);
	read_until(f, r, RUN_NOTE_PROGRESS);
	assert_false(is_dead(pid));
	assert_int_equal(run_stop(r, PROTO_STOP_KILL), 0);
	finish(r, &x);
	assert_int_equal(x.signo, SIGKILL);
	if (!is_dead(pid))
		fail_msg("the detached process %ld outlived the kill", pid);
	run_free(r);
}

/*
 * Groups whose supervisor could not remove them (killed with -9): the
 * sweep removes a swept run's group, and an agent that starts removes the
 * groups of runs that have no directory, killing what is in them.
 */
static void test_run__groups_of_gone_runs_are_removed(void **state)
{
	struct fixture *f = *state;
	char group[CGROUP_PATH_MAX + 64], gone[CGROUP_PATH_MAX + 64], *dir;
	int fd, st;
	pid_t pid;

	if (!f->cfg.cgroup_base)
		skip();
	snprintf(group, sizeof(group), "%s/i-9-1", f->cgroup);
	assert_true((fd = cgroup_open_run(group)) >= 0);
	pid = fork();
	if (pid == 0) {
		if (cgroup_enter(fd) < 0)
			_exit(1);
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(1);
	}
	assert_true(pid > 0);
	close(fd);
	for (int i = 0; i < 500; i++) { /* until the child is in the group */
		struct buf procs = BUF_INIT(256);
		char path[CGROUP_PATH_MAX + 80];
		snprintf(path, sizeof(path), "%s/cgroup.procs", group);
		int in = fs_read_file(&procs, path, 256) == 0 && procs.len > 0;
		buf_release(&procs);
		if (in)
			break;
		usleep(10000);
	}
	/* A run directory keeps its group; without one, the group goes with what it holds. */
	dir = fs_join(f->dir, "inst/i-9-1");
	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	run_sweep_groups(&f->cfg);
	assert_true(fs_exists(group));
	fs_rm_rf(dir);
	run_sweep_groups(&f->cfg);
	assert_false(fs_exists(group));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* The sweep of an ended run's directory takes its group. */
	snprintf(gone, sizeof(gone), "%s/i-9-2", f->cgroup);
	assert_true((fd = cgroup_open_run(gone)) >= 0);
	close(fd);
	free(dir);
	dir = fs_join(f->dir, "inst/.gone-i-9-2");
	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	assert_int_equal(run_sweep(&f->cfg, 4), 1);
	assert_false(fs_exists(gone));
	free(dir);
}

static void test_run__log_is_captured_and_bounded(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(4u << 20);
	struct run_exit x;
	run *r = start(f, "echo to stdout; echo to stderr >&2\n"
			  "head -c 3000000 /dev/zero | tr '\\0' a\n"
			  "printf '\\nthe end \\342\\202\\254\\n'");

	finish(r, &x);
	assert_int_equal(x.code, 0);
	read_log(r, &log);
	assert_true(log.len < (1u << 20) + (80u << 10));
	assert_true(!strncmp(buf_str(&log), "to stdout\nto stderr\n", 20));
	assert_non_null(strstr(buf_str(&log), "bytes of log left out]"));
	assert_non_null(strstr(buf_str(&log), "the end \xe2\x82\xac\n"));
	run_free(r);
	buf_release(&log);
}

static void test_run__environment_and_arguments(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(65536);
	struct run_exit x;
	char want[256];
	run *r =
	    start(f, "echo \"isa=$DISPATCH_ISA inst=$DISPATCH_INSTANCE gen=$DISPATCH_GENERATION "
		     "fork=$DISPATCH_FORK_INDEX fd=$DISPATCH_PROGRESS_FD\"\n"
		     "echo \"args=$#:$1:$2\"; pwd; echo \"state=$DISPATCH_STATE out=$DISPATCH_STATE_OUT\"\n"
		     "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo");

	finish(r, &x);
	assert_int_equal(x.code, 0);
	read_log(r, &log);
	snprintf(want, sizeof(want), "isa=%s inst=i-7 gen=3 fork=2 fd=3\n", cpu_isa());
	assert_non_null(strstr(buf_str(&log), want));
	assert_non_null(strstr(buf_str(&log), "args=2:first arg:second\n"));
	snprintf(want, sizeof(want), "%s/cwd\n", run_dir(r));
	assert_non_null(strstr(buf_str(&log), want));
	snprintf(want, sizeof(want), "state=%s/state out=%s/out\n", run_dir(r), run_dir(r));
	assert_non_null(strstr(buf_str(&log), want));
	/* stdin, stdout, stderr, the progress channel, and ls's own directory descriptor: nothing else. */
	assert_non_null(strstr(buf_str(&log), "0 1 2 3 4 \n"));
	run_free(r);
	buf_release(&log);
}

static void test_run__missing_binary_is_reported(void **state)
{
	struct fixture *f = *state;
	struct proto_msg m = start_msg("i-8", NULL, 0);
	char *args[] = {NULL};
	run *r = NULL;

	m.args = args;
	make_artifact(f, cpu_isa(), NULL);
	assert_int_equal(run_new(&r, &f->cfg, &m), 0);
	assert_int_equal(run_unpack(r, f->artifact, NULL), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "has no executable 'bin/obj'"));
	run_free(r);
	/* Present but not executable: its interpreter is missing. */
	make_artifact(f, cpu_isa(), "");
	{
		char *src = fs_join(f->dir, "src"), *exe = fs_join(src, "bin/obj");
		assert_int_equal(fs_write_atomic(exe, "#!/nonexistent/sh\n", 18, 0755), 0);
		assert_int_equal(bundle_pack_dir(src, f->artifact), 0);
		free(exe);
		free(src);
	}
	assert_int_equal(run_new(&r, &f->cfg, &m), 0);
	assert_int_equal(run_unpack(r, f->artifact, NULL), 0);
	assert_int_equal(run_start(r), ERR_CHILD);
	assert_non_null(strstr(err_msg(), "cannot execute"));
	assert_non_null(strstr(err_msg(), "bin/obj"));
	run_free(r);
	/* No launcher at all. */
	f->cfg.launcher = "/nonexistent/dispatch-run";
	assert_int_equal(run_new(&r, &f->cfg, &m), 0);
	assert_int_equal(run_unpack(r, f->artifact, NULL), 0);
	assert_int_equal(run_start(r), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "launcher"));
	run_free(r);
}

static void test_run__other_isa_is_refused(void **state)
{
	struct fixture *f = *state;
	const char *other = strcmp(cpu_isa(), "s390x") ? "s390x" : "x86_64";
	struct proto_msg m = start_msg("i-9", NULL, 0);
	char *args[] = {NULL};
	run *r = NULL;

	m.args = args;
	make_artifact(f, other, "exit 0");
	assert_int_equal(run_new(&r, &f->cfg, &m), 0);
	assert_int_equal(run_unpack(r, f->artifact, NULL), ERR_UNSUPPORTED);
	assert_non_null(strstr(err_msg(), other));
	run_free(r);
}

static void test_run__wall_clock_limit(void **state)
{
	struct fixture *f = *state;
	char *args[] = {NULL};
	struct proto_msg m = start_msg("i-10", args, 0);
	struct run_exit x;
	run *r = NULL;

	m.limits.wall_s = 1;
	make_artifact(f, cpu_isa(), "sleep 30");
	assert_int_equal(run_new(&r, &f->cfg, &m), 0);
	assert_int_equal(run_unpack(r, f->artifact, NULL), 0);
	assert_int_equal(run_start(r), 0);
	/* The supervisor enforces it: the agent only waits. */
	assert_int_equal(run_wait(r, &x, 5000), 0);
	assert_int_equal(x.signo, SIGKILL);
	assert_non_null(strstr(x.error, "wall-clock limit of 1 s"));
	run_free(r);
}

/* As root: the object runs as nobody, in an empty network namespace, with no_new_privs and seccomp. */
static void test_run__sandbox_drops_privileges_and_network(void **state)
{
	struct fixture *f = *state;
	struct buf log = BUF_INIT(65536);
	struct run_exit x;
	char want[32];
	run *r;

	if (!f->cfg.drop) {
		printf("# not root: skipped\n");
		return;
	}
	r = start(f, "id -u; echo net:; tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' '\n"
		     "echo sys:; ls /sys/class/net; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status\n"
		     "touch \"$DISPATCH_STATE_OUT/ok\" && echo out-writable; touch ../bin/x 2>/dev/null || "
		     "echo bin-ro\n"
		     "unshare -U true 2>/dev/null && echo userns-allowed || echo userns-denied");
	finish(r, &x);
	read_log(r, &log);
	printf("# %s", buf_str(&log));
	assert_int_equal(x.code, 0);
	snprintf(want, sizeof(want), "%u\n", (unsigned)f->cfg.uid);
	assert_true(!strncmp(buf_str(&log), want, strlen(want)));
	assert_non_null(strstr(buf_str(&log), "net:\nlo\nsys:\nlo\n"));
	assert_non_null(strstr(buf_str(&log), "NoNewPrivs:\t1\n"));
	assert_non_null(strstr(buf_str(&log), "Seccomp:\t2\n"));
	assert_non_null(strstr(buf_str(&log), "out-writable\nbin-ro\n"));
	assert_non_null(strstr(buf_str(&log), "userns-denied\n")); /* seccomp: no new namespaces */
	run_free(r);
	buf_release(&log);
}

/*
 * As root, with the namespaces the agent makes once (sandbox_make_ns()):
 * every object enters the same empty network namespace, keeps every other
 * protection, and does not inherit the namespace descriptors.
 */
static void test_run__objects_share_one_empty_network(void **state)
{
	struct fixture *f = *state;
	struct buf log1 = BUF_INIT(65536), log2 = BUF_INIT(65536);
	const char *script = "id -u; readlink /proc/self/ns/net; echo net:; tail -n +3 /proc/self/net/dev | "
			     "cut -d: -f1 | tr -d ' '\n"
			     "echo sys:; ls /sys/class/net; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status\n"
			     "for fd in 5 6 7; do [ -e /proc/self/fd/$fd ] && echo fd$fd-open; done; echo fds-checked\n"
			     "unshare -U true 2>/dev/null && echo userns-allowed || echo userns-denied";
	char err[256], want[64];
	struct run_exit x;
	struct stat st;
	run *r;

	if (!f->cfg.drop) {
		printf("# not root: skipped\n");
		return;
	}
	assert_int_equal(sandbox_make_ns(&f->cfg.netns_fd, &f->cfg.mntns_fd, err, sizeof(err)), 0);
	assert_true(f->cfg.netns_fd > 9 && f->cfg.mntns_fd > 9);
	assert_int_equal(fstat(f->cfg.netns_fd, &st), 0);
	snprintf(want, sizeof(want), "\nnet:[%lu]\nnet:\nlo\nsys:\nlo\n", (unsigned long)st.st_ino);
	r = start(f, script);
	finish(r, &x);
	read_log(r, &log1);
	run_free(r);
	assert_int_equal(x.code, 0);
	r = start(f, script);
	finish(r, &x);
	read_log(r, &log2);
	run_free(r);
	printf("# %s", buf_str(&log2));
	assert_int_equal(x.code, 0);
	assert_string_equal(buf_str(&log1), buf_str(&log2));
	assert_non_null(strstr(buf_str(&log1), want));
	assert_non_null(strstr(buf_str(&log1), "NoNewPrivs:\t1\n"));
	assert_non_null(strstr(buf_str(&log1), "Seccomp:\t2\n"));
	assert_non_null(strstr(buf_str(&log1), "Seccomp:\t2\nfds-checked\n"));
	assert_non_null(strstr(buf_str(&log1), "userns-denied\n"));
	snprintf(want, sizeof(want), "%u\n", (unsigned)f->cfg.uid);
	assert_true(!strncmp(buf_str(&log1), want, strlen(want)));
	close(f->cfg.netns_fd);
	close(f->cfg.mntns_fd);
	buf_release(&log1);
	buf_release(&log2);
}

/* The loop's poll timeout: nothing due is "wait for a descriptor", never a 0 that spins (the sender's waits). */
static void test_run__poll_timeout(void **state)
{
	(void)state;
	assert_int_equal(run_poll_timeout(0, 100.0), -1);
	assert_int_equal(run_poll_timeout(run_earliest(0, 0), 100.0), -1);
	assert_int_equal(run_poll_timeout(99.0, 100.0), 0);
	assert_int_equal(run_poll_timeout(100.0, 100.0), 0);
	assert_int_equal(run_poll_timeout(100.0015, 100.0), 2);
	assert_int_equal(run_poll_timeout(105.0, 100.0), 5001);
	assert_int_equal(run_poll_timeout(1e12, 100.0), 86400 * 1000);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_run__poll_timeout),
		T(test_run__progress_lines_are_parsed),
		T(test_run__progress_is_thinned),
		T(test_run__parse_line),
		T(test_run__exit_85_is_checkpointed),
		T(test_run__packed_state_is_bounded),
		T(test_run__packed_state_write_error_does_not_hang),
		T(test_run__directory_goes_at_the_sweep),
		T(test_run__spare_directories),
		T(test_run__leftover_process_cannot_reach_the_next_run),
		T(test_run__checkpoint_waits_for_a_complete_state),
		T(test_run__no_state_is_reported),
		T(test_run__unreadable_state_is_an_error),
		T(test_run__stop_sends_sigusr1),
		T(test_run__stop_checkpoint_is_not_a_periodic_one),
		T(test_run__kill_takes_the_process_group),
		T(test_run__detached_process_ends_with_the_run),
		T(test_run__kill_takes_detached_processes),
		T(test_run__groups_of_gone_runs_are_removed),
		T(test_run__log_is_captured_and_bounded),
		T(test_run__environment_and_arguments),
		T(test_run__missing_binary_is_reported),
		T(test_run__other_isa_is_refused),
		T(test_run__wall_clock_limit),
		T(test_run__sandbox_drops_privileges_and_network),
		T(test_run__objects_share_one_empty_network),
	};

	/* The launcher's pipes must not kill the test when an object goes early. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
