/* run.c - instance directories, the progress lines, requests to the supervisor, exits. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bundle.h"
#include "cgroup.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "run_int.h"

#define META_MAX (64u << 10)

double run_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double run_earliest(double a, double b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

int run_poll_timeout(double next, double now)
{
	if (!next)
		return -1;
	if (next <= now)
		return 0;
	/* Rounded up: waking a moment early would only poll again. */
	return next - now > 86400 ? 86400 * 1000 : (int)((next - now) * 1000) + 1;
}

/* Copies a NULL-terminated vector; NULL when out of memory. */
static char **strv_dup(char *const *v, size_t n)
{
	char **c = calloc(n + 1, sizeof(*c));

	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			strv_free(c);
			return NULL;
		}
	return c;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int make_dir(const char *path, mode_t mode)
{
	/* chmod: the mode must not depend on the umask (the object's user needs exactly these bits). */
	if ((mkdir(path, mode) < 0 && errno != EEXIST) || chmod(path, mode) < 0)
		return err_errno(ERR_IO, errno, "cannot create directory '%s'", path);
	return 0;
}

/*
 * Spare run directories, WORK/inst/.spare-K: made ahead of time, because
 * creating a file or directory is what a start spends most of its time on
 * where the file system makes that slow (0.3 to 0.7 ms each on some virtual
 * disks; a start creates nine). A spare holds state/, out/ and cwd/ and the
 * files of a run, empty; it stays the agent's (root's) until a start renames
 * it into place and gives out/ and cwd/ to the object's user, so no object
 * can put anything in it before.
 */
#define SPARE_PREFIX ".spare-"
#define SPARE_MAX 4
static const char *const spare_dirs[] = {"state", "out", "cwd"};
static const mode_t spare_modes[] = {0755, 0700, 0700};
static const char *const spare_files[] = {"log", "lock", "progress", "pid.tmp", "exit.tmp", "instance.json.tmp"};

/* Renames a spare to dir: 1 when there was one, 0 when not (dir is then made the slow way). */
static int take_spare(const char *inst, const char *dir)
{
	char name[32], *path;
	int ok = 0;

	for (int k = 0; k < SPARE_MAX && !ok; k++) {
		snprintf(name, sizeof(name), SPARE_PREFIX "%d", k);
		if ((path = fs_join(inst, name)) && rename(path, dir) == 0)
			ok = 1;
		free(path);
	}
	return ok;
}

/*
 * Makes a run directory as path.tmp, then renames it to path: a half-made
 * one never looks ready. A spare, or a start's own when there is none.
 */
static int make_run_dir(const char *path)
{
	char tmp[PATH_MAX], sub[PATH_MAX + 32];
	int e = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return err_set(ERR_INVALID, "path too long: '%s'", path);
	if ((e = fs_rm_rf(tmp)) < 0 || (e = make_dir(tmp, 0711)) < 0)
		return e;
	for (size_t i = 0; e == 0 && i < sizeof(spare_dirs) / sizeof(spare_dirs[0]); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", tmp, spare_dirs[i]);
		e = make_dir(sub, spare_modes[i]);
	}
	for (size_t i = 0; e == 0 && i < sizeof(spare_files) / sizeof(spare_files[0]); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", tmp, spare_files[i]);
		e = fs_write_file(sub, "", 0, 0600);
	}
	if (e == 0)
		e = fs_rename(tmp, path);
	if (e < 0)
		fs_rm_rf(tmp);
	return e;
}

int run_make_spares(const char *work_dir, int max)
{
	char name[32], *inst = fs_join(work_dir, "inst"), *path = NULL;
	int e = inst ? fs_mkdir_p(inst, 0711) : err_set(ERR_NOMEM, "out of memory"), made = 0;

	for (int k = 0; e == 0 && k < SPARE_MAX && made < max; k++) {
		snprintf(name, sizeof(name), SPARE_PREFIX "%d", k);
		free(path);
		if (!(path = fs_join(inst, name)))
			e = err_set(ERR_NOMEM, "out of memory");
		else if (!fs_exists(path) && (e = make_run_dir(path)) == 0)
			made++;
	}
	free(path);
	free(inst);
	return e < 0 ? e : made;
}

run *run_alloc(const struct run_config *cfg, const char *name)
{
	run *r = calloc(1, sizeof(*r));
	char *inst = fs_join(cfg->work_dir, "inst");

	if (!r || !inst)
		goto fail;
	r->cfg = *cfg;
	r->shim = r->pid = -1;
	r->pidfd = r->progress = r->wd = r->log_rd = -1;
	if (!(r->dir = fs_join(inst, name)) || !(r->state_dir = fs_join(r->dir, "state")) ||
	    !(r->out_dir = fs_join(r->dir, "out")) || !(r->cwd_dir = fs_join(r->dir, "cwd")))
		goto fail;
	r->name = r->dir + strlen(inst) + 1;
	free(inst);
	return r;
fail:
	free(inst);
	run_free(r);
	return NULL;
}

int run_new(run **out, const struct run_config *cfg, const struct proto_msg *start)
{
	char name[PROTO_ID_MAX + 32], *inst = NULL;
	run *r = NULL;
	int e;

	if (!proto_id_is_valid(start->instance))
		return err_set(ERR_INVALID, "'%s' is not an instance id", start->instance);
	snprintf(name, sizeof(name), "%s-%" PRIu64, start->instance, start->generation);
	if (!(r = run_alloc(cfg, name)) || !(inst = fs_join(cfg->work_dir, "inst"))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	memcpy(r->instance, start->instance, sizeof(r->instance));
	r->generation = start->generation;
	r->fork_index = start->fork_index;
	r->checkpoint_s = start->checkpoint_s;
	r->limits = start->limits;
	r->grace_s = cfg->stop_grace_s;
	memcpy(r->entry, start->entry, sizeof(r->entry));
	if (!(r->args = strv_dup(start->args, start->nargs))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	/* Objects of another user must be able to reach their own directories. */
	if ((e = fs_mkdir_p(inst, 0711)) < 0 || (e = fs_rm_rf(r->dir)) < 0)
		goto fail;
	if (chmod(inst, 0711) < 0) {
		e = err_errno(ERR_IO, errno, "cannot chmod '%s'", inst);
		goto fail;
	}
	if (!take_spare(inst, r->dir) && (e = make_run_dir(r->dir)) < 0)
		goto fail;
	r->made_dir = 1;
	if (cfg->drop &&
	    (chown(r->out_dir, cfg->uid, cfg->gid) < 0 || chown(r->cwd_dir, cfg->uid, cfg->gid) < 0)) {
		e = err_errno(ERR_IO, errno, "cannot give '%s' to uid %u", r->dir, (unsigned)cfg->uid);
		goto fail;
	}
	free(inst);
	*out = r;
	return 0;
fail:
	free(inst);
	run_free(r);
	return e;
}

#define GONE_PREFIX ".gone-"

/*
 * Renamed out of the way: a directory half removed must not look like a run
 * to a later agent. The removal itself (a few ms of unlinks) waits for
 * run_sweep(), off the path of the exit event.
 */
static void remove_dir(run *r)
{
	char gone[PROTO_ID_MAX + 48], *inst = fs_join(r->cfg.work_dir, "inst"), *path = NULL;

	/* Taken back from the object's user first: nothing of it walks in there by name any more. */
	if (r->cfg.drop) {
		const char *mine[] = {r->out_dir, r->cwd_dir};
		for (size_t i = 0; i < 2; i++)
			if (fchownat(AT_FDCWD, mine[i], 0, 0, AT_SYMLINK_NOFOLLOW) == 0)
				chmod(mine[i], 0700);
	}
	snprintf(gone, sizeof(gone), GONE_PREFIX "%s", r->name);
	if (!inst || !(path = fs_join(inst, gone)) || rename(r->dir, path) < 0)
		fs_rm_rf(r->dir);
	free(inst);
	free(path);
}

/*
 * Removes the control group of the run named name, should it still be there
 * (cgroup.h): 0; 1 when a run of that name is live (its group is left
 * alone); -1 when processes are still in it a moment after the kill (said
 * unless they are just slow to die, EBUSY: then the caller tries again
 * later).
 */
static int remove_group(const struct run_config *cfg, const char *name, int wait_ms)
{
	char path[CGROUP_PATH_MAX], dir[PATH_MAX];

	if (!cfg->cgroup_base || (size_t)snprintf(path, sizeof(path), "%s/%s", cfg->cgroup_base, name) >=
					 sizeof(path))
		return 0;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/inst/%s", cfg->work_dir, name) >= sizeof(dir) || fs_exists(dir))
		return 1;
	if (cgroup_remove(path, wait_ms) == 0)
		return 0;
	if (errno != EBUSY)
		log_warn("cannot remove the control group '%s': %s", path, strerror(errno));
	return -1;
}

int run_sweep(const struct run_config *cfg, int max)
{
	char *inst = fs_join(cfg->work_dir, "inst"), *path = NULL;
	struct dirent *de;
	DIR *d;
	int r = 0, e, removed = 0;

	if (!inst)
		return err_set(ERR_NOMEM, "out of memory");
	if (!(d = opendir(inst))) {
		r = errno == ENOENT ? 0 : err_errno(ERR_IO, errno, "cannot read '%s'", inst);
		free(inst);
		return r;
	}
	while (removed < max && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, GONE_PREFIX, strlen(GONE_PREFIX)) != 0)
			continue;
		free(path);
		if (!(path = fs_join(inst, de->d_name))) {
			r = err_set(ERR_NOMEM, "out of memory");
			break;
		}
		/*
		 * Its supervisor removed the group; one killed with -9 could not. The directory stays
		 * while the group does, so that a later sweep tries again (a short wait: this runs on
		 * the agent's loop).
		 */
		if (remove_group(cfg, de->d_name + strlen(GONE_PREFIX), 20) < 0)
			break;
		/*
		 * One that cannot go now (a process of an object still filling it, say) is said and tried
		 * at a later sweep; this one stops, so that such a directory costs one removal's time budget
		 * per sweep, not one per directory.
		 */
		if ((e = fs_rm_rf(path)) < 0) {
			log_warn("%s", err_msg());
			break;
		}
		removed++;
	}
	closedir(d);
	free(path);
	free(inst);
	return r < 0 ? r : removed;
}

void run_sweep_groups(const struct run_config *cfg)
{
	struct dirent *de;
	DIR *d;
	int r;

	if (!cfg->cgroup_base || !(d = opendir(cfg->cgroup_base)))
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.' || (r = remove_group(cfg, de->d_name, 1000)) > 0)
			continue;
		if (r == 0)
			log_info("removed the control group of run '%s', which is gone", de->d_name);
		else
			log_warn("the control group of run '%s' is not empty yet: the next start tries again",
				 de->d_name);
	}
	closedir(d);
}

void run_free(run *r)
{
	if (!r)
		return;
	if (r->pidfd >= 0)
		close(r->pidfd);
	if (r->progress >= 0)
		close(r->progress);
	if (r->log_rd >= 0)
		close(r->log_rd);
	if (r->made_dir && (!r->started || r->exited))
		remove_dir(r);
	strv_free(r->args);
	free(r->dir);
	free(r->state_dir);
	free(r->out_dir);
	free(r->cwd_dir);
	free(r->root);
	free(r);
}

void run_discard(run *r)
{
	struct run_exit x;

	if (!r)
		return;
	if (r->started && !r->exited && run_stop(r, PROTO_STOP_KILL) == 0 && run_wait(r, &x, 2000) < 0)
		log_warn("%s", err_msg());
	r->exited = 1; /* whatever happened: the directory goes */
	run_free(r);
}

const char *run_instance(const run *r)
{
	return r->instance;
}

uint64_t run_generation(const run *r)
{
	return r->generation;
}

const char *run_dir(const run *r)
{
	return r->dir;
}

const char *run_artifact(const run *r)
{
	return r->artifact;
}

const char *run_name(const run *r)
{
	return r->name;
}

pid_t run_pid(const run *r)
{
	return r->pid;
}

int run_pidfd(const run *r)
{
	return r->pidfd;
}

int run_watch(run *r, int fd)
{
	char *path = fs_join(r->dir, "progress");
	int wd;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	wd = inotify_add_watch(fd, path, IN_MODIFY);
	free(path);
	if (wd < 0)
		return err_errno(ERR_IO, errno, "cannot watch the progress of instance '%s'", r->instance);
	r->wd = wd;
	return 0;
}

int run_watch_id(const run *r)
{
	return r->wd;
}

/* Checks root/meta.json against this node and the start message. */
static int check_meta(run *r, const char *root)
{
	struct buf text = BUF_INIT(META_MAX);
	char *path = fs_join(root, "meta.json");
	const char *isa, *entry;
	json_error_t jerr;
	json_t *meta = NULL;
	int e;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	if ((e = fs_read_file(&text, path, META_MAX)) < 0) {
		e = err_prefix(e == ERR_NOTFOUND ? ERR_INVALID : e, "the artifact has no usable meta.json");
		goto out;
	}
	if (!(meta = json_loadb(text.data, text.len, 0, &jerr)) || !json_is_object(meta)) {
		e = err_set(ERR_INVALID, "the artifact's meta.json is not a JSON object");
		goto out;
	}
	isa = json_string_value(json_object_get(meta, "isa"));
	entry = json_string_value(json_object_get(meta, "entry"));
	if (!isa || strcmp(isa, r->cfg.isa) != 0) {
		e = err_set(ERR_UNSUPPORTED, "the artifact was built for %s%s%s, this node is %s",
			    isa ? "'" : "", isa ? isa : "no ISA", isa ? "'" : "", r->cfg.isa);
		goto out;
	}
	if (entry && strcmp(entry, r->entry) != 0) {
		e = err_set(ERR_INVALID, "the start message names entry '%s', the artifact holds '%s'",
			    r->entry, entry);
		goto out;
	}
	e = 0;
out:
	json_decref(meta);
	buf_release(&text);
	free(path);
	return e;
}

/* Checks the artifact in root (meta.json, bin/<entry>) and makes it the run's. */
static int use_root(run *r, const char *root)
{
	char rel[PROTO_ENTRY_MAX + 8];
	char *exe = NULL, *copy = NULL;
	struct stat st;
	int e;

	if ((e = check_meta(r, root)) < 0)
		return e;
	snprintf(rel, sizeof(rel), "bin/%s", r->entry);
	if (!(exe = fs_join(root, rel)) || !(copy = strdup(root))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (lstat(exe, &st) < 0 || !S_ISREG(st.st_mode))
		e = err_set(ERR_NOTFOUND, "the artifact has no executable '%s'", rel);
	else if (!(st.st_mode & 0111))
		e = err_set(ERR_INVALID, "the artifact's '%s' is not executable", rel);
	if (e < 0)
		goto out;
	free(r->root);
	r->root = copy;
	copy = NULL;
out:
	free(exe);
	free(copy);
	return e;
}

int run_unpack(run *r, const char *artifact_path, const char *state_path)
{
	struct bundle_limits lim = RUN_ARTIFACT_LIMITS;
	int e;

	if (artifact_path) {
		if ((e = bundle_extract_file(artifact_path, r->dir, 0, &lim)) < 0)
			return err_prefix(e, "cannot unpack the artifact");
		if ((e = use_root(r, r->dir)) < 0)
			return e;
		r->artifact[0] = '\0';
	}
	/* A state bundle holds state.json and blobs/; its limits are the extractor's defaults (1 GiB). */
	if (state_path && (e = bundle_extract_file(state_path, r->state_dir, 0, NULL)) < 0)
		return err_prefix(e, "cannot unpack the state");
	return 0;
}

int run_use_tree(run *r, const char *tree, const char *digest)
{
	int e;

	if (!digest_is_valid(digest))
		return err_set(ERR_INVALID, "'%.70s' is not a digest", digest);
	if ((e = use_root(r, tree)) < 0)
		return e;
	memcpy(r->artifact, digest, sizeof(r->artifact));
	return 0;
}

int run_parse_line(struct run_note *out, const char *line)
{
	struct run_note n = {0};
	char *end;

	if (!strncmp(line, "progress ", 9)) {
		errno = 0;
		n.progress = strtod(line + 9, &end);
		if (errno || end == line + 9 || *end || !(n.progress >= 0 && n.progress <= 1))
			return err_set(ERR_INVALID, "bad progress line '%.64s'", line);
		n.kind = RUN_NOTE_PROGRESS;
	} else if (!strncmp(line, "checkpoint ", 11)) {
		errno = 0;
		if (line[11] < '0' || line[11] > '9')
			return err_set(ERR_INVALID, "bad checkpoint line '%.64s'", line);
		n.checkpoint = strtoull(line + 11, &end, 10);
		if (errno || *end)
			return err_set(ERR_INVALID, "bad checkpoint line '%.64s'", line);
		n.kind = RUN_NOTE_CHECKPOINT;
	} else if (!strcmp(line, "finished")) {
		n.kind = RUN_NOTE_FINISHED;
	} else {
		return err_set(ERR_INVALID, "unknown progress line '%.64s'", line);
	}
	*out = n;
	return 0;
}

/* Calls fn for the line [p, p + n) when it is one of the ABI's. */
static void on_line(run *r, const char *p, size_t n,
		    void (*fn)(void *ud, run *r, const struct run_note *note), void *ud)
{
	char line[RUN_LINE_MAX + 1];
	struct run_note note;

	if (n > RUN_LINE_MAX)
		return;
	memcpy(line, p, n);
	line[n] = '\0';
	/*
	 * The checkpoint that answers a stop is followed by exit 85, whose event
	 * carries that state: reported here as well, it would be packed and
	 * uploaded twice.
	 */
	if (strlen(line) == n && run_parse_line(&note, line) == 0 &&
	    !(note.kind == RUN_NOTE_CHECKPOINT && r->checkpoint_asked))
		fn(ud, r, &note);
}

int run_read_progress(run *r, void (*fn)(void *ud, run *r, const struct run_note *note), void *ud)
{
	char chunk[4096];
	ssize_t n;

	if (r->progress < 0)
		run_open_outputs(r); /* not there yet when the run was taken over */
	if (r->progress < 0)
		return r->exited;
	for (;;) {
		size_t start = 0;
		n = pread(r->progress, chunk, sizeof(chunk), (off_t)r->progress_pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* Whole lines only: the supervisor writes each with its newline in one write(). */
		for (size_t i = 0; i < (size_t)n; i++)
			if (chunk[i] == '\n') {
				on_line(r, chunk + start, i - start, fn, ud);
				start = i + 1;
			}
		if (start == 0 && (size_t)n == sizeof(chunk))
			start = sizeof(chunk); /* no line of the ABI is this long */
		r->progress_pos += start;
		if (start == 0 || (size_t)n < sizeof(chunk))
			break;
	}
	return r->exited;
}

/* Signals the supervisor: through its pidfd, or its pid while its lock says it runs. */
static int signal_shim(run *r, int sig)
{
	if (r->pidfd >= 0 && syscall(SYS_pidfd_send_signal, r->pidfd, sig, NULL, 0) == 0)
		return 0;
	if (r->pidfd < 0 && r->shim > 0 && !run_shim_gone(r) && kill(r->shim, sig) == 0)
		return 0;
	return err_errno(ERR_NOTFOUND, errno, "cannot signal the supervisor of instance '%s'", r->instance);
}

int run_stop(run *r, enum proto_stop_mode mode)
{
	if (!r->started || r->exited)
		return err_set(ERR_NOTFOUND, "instance '%s' is not running", r->instance);
	if (mode != PROTO_STOP_KILL)
		r->checkpoint_asked = 1;
	return signal_shim(r, mode == PROTO_STOP_KILL ? SIGUSR2 : SIGUSR1);
}

/* Fills out from a wait status and the supervisor's reason for a kill. */
static void describe_exit(run *r, int st, const char *reason, struct run_exit *out)
{
	struct run_exit x = {0};

	if (WIFSIGNALED(st)) {
		x.signo = WTERMSIG(st);
		x.code = 128 + x.signo;
	} else {
		x.code = WEXITSTATUS(st);
	}
	x.checkpointed = !x.signo && x.code == 85;
	if (!strcmp(reason, "timeout"))
		snprintf(x.error, sizeof(x.error), "wall-clock limit of %" PRIu64 " s reached",
			 r->limits.wall_s);
	else if (!strcmp(reason, "grace"))
		snprintf(x.error, sizeof(x.error), "no checkpoint within %u s of the request: killed",
			 r->grace_s);
	else if (!strcmp(reason, "killed"))
		snprintf(x.error, sizeof(x.error), "killed on request");
	else if (!strcmp(reason, "lost"))
		snprintf(x.error, sizeof(x.error),
			 "its supervisor (dispatch-run) ended without recording "
			 "its exit: killed with it");
	else if (x.signo == SIGXCPU || (x.signo == SIGKILL && r->limits.cpu_s))
		snprintf(x.error, sizeof(x.error), "killed by signal %d (%s): CPU limit of %" PRIu64 " s?",
			 x.signo, strsignal(x.signo), r->limits.cpu_s);
	else if (x.signo)
		snprintf(x.error, sizeof(x.error), "killed by signal %d (%s)", x.signo, strsignal(x.signo));
	else if (x.code != 0 && x.code != 85)
		snprintf(x.error, sizeof(x.error), "exit %d", x.code);
	*out = x;
}

/* DIR/exit as the supervisor wrote it, "WAIT-STATUS REASON\n"; without one the object died with its
 * supervisor. */
static void read_exit(run *r, struct run_exit *out)
{
	struct buf text = BUF_INIT(128);
	char *path = fs_join(r->dir, "exit"), *end, reason[16];
	long st = -1;

	if (path && fs_read_file(&text, path, 128) == 0 && text.len) {
		errno = 0;
		st = strtol(buf_str(&text), &end, 10);
		if (errno || end == buf_str(&text) || *end != ' ' || st < 0 || st > 0xffff ||
		    sscanf(end + 1, "%15[a-z-]", reason) != 1)
			st = -1;
	}
	if (st < 0) {
		st = SIGKILL;
		snprintf(reason, sizeof(reason), "lost");
	}
	describe_exit(r, (int)st, reason, out);
	buf_release(&text);
	free(path);
}

int run_reap(run *r, struct run_exit *out)
{
	int gone;

	if (!r->started)
		return err_set(ERR_NOTFOUND, "instance '%s' was not started", r->instance);
	if (!r->exited) {
		if ((gone = run_shim_gone(r)) <= 0)
			return gone;
		read_exit(r, &r->exit);
		r->exited = 1;
	}
	*out = r->exit;
	return 1;
}

int run_wait(run *r, struct run_exit *out, int timeout_ms)
{
	double end = run_now() + timeout_ms / 1000.0;
	int e;

	while ((e = run_reap(r, out)) == 0) {
		double left = end - run_now();
		struct pollfd p = {.fd = r->pidfd, .events = POLLIN};
		if (left <= 0)
			return err_set(ERR_LIMIT, "instance '%s' is still running", r->instance);
		if (r->pidfd >= 0)
			poll(&p, 1, (int)(left * 1000) + 1);
		else
			usleep(10000);
	}
	return e < 0 ? e : 0;
}
