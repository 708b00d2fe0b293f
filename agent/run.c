/* run.c - instance directories, spawning through the launcher, the progress channel, exits. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bundle.h"
#include "error.h"
#include "fsutil.h"
#include "run_int.h"

#define META_MAX (64u << 10)
#define ARTIFACT_LIMITS                                                                                      \
	{                                                                                                    \
		.max_total = UINT64_C(1) << 30, .max_entries = 1000                                          \
	}

double run_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

static int make_dir(const char *dir, const char *sub, mode_t mode, char **out)
{
	char *p = fs_join(dir, sub);

	if (!p)
		return err_set(ERR_NOMEM, "out of memory");
	/* chmod: the mode must not depend on the umask (the object's user needs exactly these bits). */
	if ((mkdir(p, mode) < 0 && errno != EEXIST) || chmod(p, mode) < 0) {
		int e = errno;
		free(p);
		return err_errno(ERR_IO, e, "cannot create directory '%s/%s'", dir, sub);
	}
	*out = p;
	return 0;
}

int run_new(run **out, const struct run_config *cfg, const struct proto_msg *start)
{
	run *r = calloc(1, sizeof(*r));
	char name[PROTO_ID_MAX + 32], *inst = NULL;
	int e;

	if (!r)
		return err_set(ERR_NOMEM, "out of memory");
	r->cfg = *cfg;
	r->pid = -1;
	r->pidfd = r->progress = r->log_rd = -1;
	memcpy(r->instance, start->instance, sizeof(r->instance));
	r->generation = start->generation;
	r->fork_index = start->fork_index;
	r->limits = start->limits;
	memcpy(r->entry, start->entry, sizeof(r->entry));
	if (!(r->args = strv_dup(start->args, start->nargs))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (!proto_id_is_valid(r->instance)) {
		e = err_set(ERR_INVALID, "'%s' is not an instance id", r->instance);
		goto fail;
	}
	snprintf(name, sizeof(name), "%s-%" PRIu64, r->instance, r->generation);
	if (!(inst = fs_join(cfg->work_dir, "inst")) || !(r->dir = fs_join(inst, name))) {
		e = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	/* Objects of another user must be able to reach their own directories. */
	if ((e = fs_mkdir_p(inst, 0711)) < 0 || (e = fs_rm_rf(r->dir)) < 0)
		goto fail;
	if (chmod(inst, 0711) < 0 || mkdir(r->dir, 0711) < 0 || chmod(r->dir, 0711) < 0) {
		e = err_errno(ERR_IO, errno, "cannot create directory '%s'", r->dir);
		goto fail;
	}
	r->made_dir = 1;
	if ((e = make_dir(r->dir, "state", 0755, &r->state_dir)) < 0 ||
	    (e = make_dir(r->dir, "out", 0700, &r->out_dir)) < 0 ||
	    (e = make_dir(r->dir, "cwd", 0700, &r->cwd_dir)) < 0)
		goto fail;
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

void run_free(run *r)
{
	if (!r)
		return;
	if (r->pid > 0 && !r->exited) {
		kill(-r->pid, SIGKILL);
		kill(r->pid, SIGKILL);
		while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (r->pidfd >= 0)
		close(r->pidfd);
	if (r->progress >= 0)
		close(r->progress);
	if (r->log_rd >= 0)
		close(r->log_rd);
	if (r->made_dir)
		fs_rm_rf(r->dir);
	strv_free(r->args);
	free(r->dir);
	free(r->state_dir);
	free(r->out_dir);
	free(r->cwd_dir);
	free(r);
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

pid_t run_pid(const run *r)
{
	return r->pid;
}

int run_progress_fd(const run *r)
{
	return r->progress;
}

int run_pidfd(const run *r)
{
	return r->pidfd;
}

/* Checks meta.json against this node and the start message. */
static int check_meta(run *r)
{
	struct buf text = BUF_INIT(META_MAX);
	char *path = fs_join(r->dir, "meta.json");
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

int run_unpack(run *r, const char *artifact_path, const char *state_path)
{
	struct bundle_limits lim = ARTIFACT_LIMITS;
	char rel[PROTO_ENTRY_MAX + 8];
	char *exe = NULL;
	struct stat st;
	int e;

	if ((e = bundle_extract_file(artifact_path, r->dir, 0, &lim)) < 0)
		return err_prefix(e, "cannot unpack the artifact");
	if ((e = check_meta(r)) < 0)
		return e;
	snprintf(rel, sizeof(rel), "bin/%s", r->entry);
	if (!(exe = fs_join(r->dir, rel)))
		return err_set(ERR_NOMEM, "out of memory");
	if (lstat(exe, &st) < 0 || !S_ISREG(st.st_mode))
		e = err_set(ERR_NOTFOUND, "the artifact has no executable '%s'", rel);
	else if (!(st.st_mode & 0111))
		e = err_set(ERR_INVALID, "the artifact's '%s' is not executable", rel);
	free(exe);
	if (e < 0)
		return e;
	/* A state bundle holds state.json and blobs/; its limits are the extractor's defaults (1 GiB). */
	if (state_path && (e = bundle_extract_file(state_path, r->state_dir, 0, NULL)) < 0)
		return err_prefix(e, "cannot unpack the state");
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

int run_read_progress(run *r, void (*fn)(void *ud, run *r, const struct run_note *note), void *ud)
{
	char chunk[1024];
	struct run_note note;
	ssize_t n;

	if (r->progress < 0)
		return 1;
	for (;;) {
		n = read(r->progress, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) { /* the end, or an error that ends the channel just as well */
			close(r->progress);
			r->progress = -1;
			return 1;
		}
		for (ssize_t i = 0; i < n; i++) {
			char c = chunk[i];
			if (c != '\n') {
				if (r->line_len < sizeof(r->line) - 1)
					r->line[r->line_len++] = c;
				else
					r->line_skip = 1; /* too long: no line of the ABI is */
				continue;
			}
			r->line[r->line_len] = '\0';
			if (!r->line_skip && run_parse_line(&note, r->line) == 0)
				fn(ud, r, &note);
			r->line_len = 0;
			r->line_skip = 0;
		}
	}
}

int run_signal(run *r, int sig)
{
	if (r->pid <= 0 || r->exited)
		return err_set(ERR_NOTFOUND, "instance '%s' is not running", r->instance);
	if (r->pidfd >= 0 && syscall(SYS_pidfd_send_signal, r->pidfd, sig, NULL, 0) == 0)
		return 0;
	if (kill(r->pid, sig) < 0)
		return err_errno(ERR_IO, errno, "cannot signal instance '%s'", r->instance);
	return 0;
}

int run_stop(run *r, enum proto_stop_mode mode)
{
	if (r->pid <= 0 || r->exited)
		return err_set(ERR_NOTFOUND, "instance '%s' is not running", r->instance);
	if (mode == PROTO_STOP_KILL) {
		r->killed = 1;
		kill(-r->pid, SIGKILL);
		return run_signal(r, SIGKILL);
	}
	if (!r->stop_at)
		r->stop_at = run_now();
	return run_signal(r, SIGUSR1);
}

double run_check_time(run *r, double now)
{
	double next = 0, t;

	if (r->pid <= 0 || r->exited)
		return 0;
	if (r->limits.wall_s) {
		t = r->started_at + (double)r->limits.wall_s;
		if (now >= t && !r->timed_out) {
			r->timed_out = 1;
			kill(-r->pid, SIGKILL);
		}
		next = t;
	}
	if (r->stop_at && r->cfg.stop_grace_s) {
		t = r->stop_at + r->cfg.stop_grace_s;
		if (now >= t && !r->killed) {
			r->killed = r->grace_expired = 1;
			kill(-r->pid, SIGKILL);
		}
		if (!next || t < next)
			next = t;
	}
	return next > now ? next : 0;
}

/* Fills out from a wait status. */
static void describe_exit(run *r, int st, struct run_exit *out)
{
	struct run_exit x = {0};

	if (WIFSIGNALED(st)) {
		x.signo = WTERMSIG(st);
		x.code = 128 + x.signo;
	} else {
		x.code = WEXITSTATUS(st);
	}
	x.checkpointed = !x.signo && x.code == 85;
	if (r->timed_out)
		snprintf(x.error, sizeof(x.error), "wall-clock limit of %" PRIu64 " s reached",
			 r->limits.wall_s);
	else if (r->grace_expired)
		snprintf(x.error, sizeof(x.error), "no checkpoint within %u s of the request: killed",
			 r->cfg.stop_grace_s);
	else if (r->killed)
		snprintf(x.error, sizeof(x.error), "killed on request");
	else if (x.signo == SIGXCPU || (x.signo == SIGKILL && r->limits.cpu_s))
		snprintf(x.error, sizeof(x.error), "killed by signal %d (%s): CPU limit of %" PRIu64 " s?",
			 x.signo, strsignal(x.signo), r->limits.cpu_s);
	else if (x.signo)
		snprintf(x.error, sizeof(x.error), "killed by signal %d (%s)", x.signo, strsignal(x.signo));
	else if (x.code != 0 && x.code != 85)
		snprintf(x.error, sizeof(x.error), "exit %d", x.code);
	*out = x;
}

int run_reap(run *r, struct run_exit *out)
{
	siginfo_t si = {0};
	int st = 0;

	if (r->pid <= 0)
		return err_set(ERR_NOTFOUND, "instance '%s' was not started", r->instance);
	if (r->exited) {
		*out = r->exit;
		return 1;
	}
	/* Look without reaping: while the leader is a zombie its pid (and group id) cannot be reused. */
	if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return err_errno(ERR_IO, errno, "cannot wait for instance '%s'", r->instance);
	if (si.si_pid == 0)
		return 0;
	kill(-r->pid, SIGKILL); /* strays of the object's process group */
	while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
		;
	r->exited = 1;
	describe_exit(r, st, &r->exit);
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
