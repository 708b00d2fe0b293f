/* follow.c - polling a job or an instance, with a live table or plain lines on stderr. */
#include "follow.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "error.h"

#define POLL_TTY_S 0.2          /* a redrawn table wants to move smoothly */
#define POLL_PLAIN_S 1.0        /* a log does not need more */
#define POLL_MAX_S 5.0          /* the slowest a large job is polled */
#define UNREACHABLE_MAX_S 60.0  /* how long a wait rides out a dispatcher restart */
#define BAR_MAX 30            /* progress bar columns on a wide terminal */
#define BAR_MIN 6             /* narrower than this, only the percentage */

static volatile sig_atomic_t interrupted;

static void note_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

double follow_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	/* A signal ends the sleep early; the loop then sees `interrupted`. */
	nanosleep(&ts, NULL);
}

static int stderr_is_tty(void)
{
	return isatty(STDERR_FILENO) && !(getenv("TERM") && !strcmp(getenv("TERM"), "dumb"));
}

/* The length of the first line of s: messages may carry a compiler's whole output. */
static int line_len(const char *s)
{
	return (int)strcspn(s, "\n");
}

static int is_final(const char *state)
{
	return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

/* ---- the polling loop ---- */

/*
 * Called after every poll with the latest document (owned by the loop; the
 * step may change it), fresh when this poll brought it, and a notice while
 * the dispatcher cannot be reached. Returns 1 when the wait is over, 0 to
 * go on, a negative code to fail.
 */
typedef int (*step_fn)(void *arg, json_t *doc, int fresh, const char *notice);

struct poller {
	const char *collection;   /* "jobs" or "instances" */
	const char *id;
	double timeout_s;
	int tty;
	int shows_notice;         /* on a terminal, the step draws the notice */
	double start;
	step_fn step;
	void *arg;
	const char *on_interrupt; /* ends "interrupted; " */
	const char *on_timeout;   /* ends "timed out after N s waiting for " */
};

static int poll_run(json_t **final, client *c, const struct poller *p)
{
	struct sigaction sa = { .sa_handler = note_interrupt }, old_int, old_term;
	json_t *doc = NULL;
	double unreachable_since = 0;
	char notice[512];
	int r = 0;

	interrupted = 0;
	sigemptyset(&sa.sa_mask);
	/* Ctrl-C ends the wait, not the work; a signal the caller ignores stays ignored. */
	sigaction(SIGINT, NULL, &old_int);
	sigaction(SIGTERM, NULL, &old_term);
	if (old_int.sa_handler != SIG_IGN)
		sigaction(SIGINT, &sa, NULL);
	if (old_term.sa_handler != SIG_IGN)
		sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		double t0 = follow_now(), took, pause;
		const char *shown = NULL;
		json_t *next = NULL;
		int fresh = 0;

		r = client_get_json(&next, c, "/v1/%s/%s", p->collection, p->id);
		took = follow_now() - t0;
		if (r == ERR_NET && (!unreachable_since || t0 - unreachable_since < UNREACHABLE_MAX_S)) {
			/* A dispatcher restart should not end the wait: it keeps its jobs. */
			if (!unreachable_since)
				unreachable_since = t0;
			snprintf(notice, sizeof(notice), "%s; retrying", err_msg());
			shown = notice;
			if (!(p->tty && p->shows_notice && doc))
				fprintf(stderr, "%7.1fs  %s\n", follow_now() - p->start, notice);
		} else if (r < 0) {
			break;
		} else {
			unreachable_since = 0;
			json_decref(doc);
			doc = next;
			fresh = 1;
		}
		if (doc && (r = p->step(p->arg, doc, fresh, shown)) != 0)
			break;
		r = 0;
		if (interrupted) {
			r = err_set(ERR_IO, "interrupted; %s", p->on_interrupt);
			break;
		}
		if (p->timeout_s > 0 && follow_now() - p->start >= p->timeout_s) {
			r = err_set(ERR_LIMIT, "timed out after %.0f s waiting for %s", p->timeout_s,
				    p->on_timeout);
			break;
		}
		/* Big jobs cost the dispatcher to describe: never poll faster than twice the answer took. */
		pause = p->tty ? POLL_TTY_S : POLL_PLAIN_S;
		if (2 * took > pause)
			pause = 2 * took < POLL_MAX_S ? 2 * took : POLL_MAX_S;
		if (p->timeout_s > 0 && follow_now() + pause - p->start > p->timeout_s)
			pause = p->timeout_s - (follow_now() - p->start);
		if (pause > 0 && !interrupted)
			sleep_s(pause);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (r < 0) {
		json_decref(doc);
		return r;
	}
	*final = doc;
	return 0;
}

/* ---- a job ---- */

/* What the display remembers between polls. */
struct watch {
	const struct follow_set *set;
	json_t *wanted;     /* with set->only: id -> true */
	int tty;
	int drawn;          /* lines of the last redraw */
	double start;
	json_t *seen;       /* plain mode: id -> {"state", "tenth"} already reported */
	const char *notice; /* a line shown above the table: "dispatcher unreachable ..." */
};

static int term_size(int *rows)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) {
		*rows = ws.ws_row > 5 ? ws.ws_row : 24;
		return ws.ws_col;
	}
	*rows = 24;
	return 80;
}

/* Display order when not every instance fits: what moves or went wrong first. */
enum { RANK_RUNNING, RANK_CHECKPOINTED, RANK_FAILED, RANK_PENDING, RANK_FINISHED, RANKS };

static int rank(const char *state)
{
	if (!strcmp(state, "running") || !strcmp(state, "starting"))
		return RANK_RUNNING;
	if (!strcmp(state, "checkpointed"))
		return RANK_CHECKPOINTED;
	if (!strcmp(state, "failed"))
		return RANK_FAILED;
	if (!strcmp(state, "pending"))
		return RANK_PENDING;
	return RANK_FINISHED;
}

static void add_line(struct buf *b, int width, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_line(struct buf *b, int width, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_printf(b, "%.*s\033[K\n", width - 1, line);
}

/* The columns of a row besides the object's name and the bar: ID, node, target, percentage, state. */
#define ROW_FIXED (9 + 1 + 7 + 19 + 3 + 4 + 2 + 12)

static void format_row(char *out, size_t len, const json_t *in, int wo, int bar_w)
{
	char target[96], bar[BAR_MAX + 4] = "", pct[8];
	double p = cli_progress(in);
	const char *state = cli_jstr(in, "state", "?");
	int filled;

	if (!strcmp(state, "done"))
		p = 1;
	filled = p < 0 ? 0 : (int)(p * bar_w + 0.5);
	if (bar_w >= BAR_MIN) {
		bar[0] = '[';
		for (int i = 0; i < bar_w; i++)
			bar[i + 1] = i < filled ? '#' : '.';
		bar[bar_w + 1] = ']';
		bar[bar_w + 2] = ' ';
		bar[bar_w + 3] = '\0';
	}
	if (p < 0)
		snprintf(pct, sizeof(pct), "   -");
	else
		snprintf(pct, sizeof(pct), "%3.0f%%", p * 100);
	snprintf(out, len, "%-8s %-*.*s %-6s %-18s %s%s  %s", cli_jstr(in, "id", "?"), wo, wo,
		 cli_jstr(in, "object", "?"), cli_jstr(in, "node", "-"),
		 cli_target(target, sizeof(target), in), bar, pct, state);
}

static void redraw(struct watch *w, const json_t *job)
{
	const json_t *instances = json_object_get(job, "instances"), *v;
	const json_t *builds = json_object_get(job, "builds");
	size_t n = json_array_size(instances), nb = json_array_size(builds), i, shown = 0;
	size_t hidden[RANKS] = { 0 }, builds_done = 0, cached = 0, done = 0, failed = 0;
	struct buf b = BUF_INIT(1u << 20);
	int rows, width = term_size(&rows), wo = 6, max_rows = rows > 8 ? rows - 5 : 3, bar_w;
	char row[512];

	json_array_foreach(instances, i, v) {
		const char *s = cli_jstr(v, "state", "?");
		int len = (int)strlen(cli_jstr(v, "object", ""));
		wo = len > wo ? (len > 24 ? 24 : len) : wo;
		hidden[rank(s)]++;
		done += !strcmp(s, "done");
		failed += !strcmp(s, "failed");
	}
	json_array_foreach(builds, i, v) {
		const char *s = cli_jstr(v, "status", "");
		builds_done += strcmp(s, "pending") && strcmp(s, "building") && strcmp(s, "queued");
		cached += json_is_true(json_object_get(v, "cached"));
	}
	for (i = 0; i < (size_t)w->drawn; i++)
		buf_puts(&b, "\033[1A\033[2K");
	w->drawn = 0;
	if (w->set->only)
		snprintf(row, sizeof(row), "%s (job %s '%s'): %zu/%zu done, %zu failed   %.0f s",
			 w->set->label, w->set->job_id, cli_jstr(job, "name", "?"), done, n, failed,
			 follow_now() - w->start);
	else
		snprintf(row, sizeof(row), "job %s '%s': %s   %zu/%zu instances done, %zu failed   builds "
			 "%zu/%zu (%zu cached)   %.0f s", w->set->job_id, cli_jstr(job, "name", "?"),
			 cli_jstr(job, "state", "?"), done, n, failed, builds_done, nb, cached,
			 follow_now() - w->start);
	add_line(&b, width, "%s", row);
	w->drawn++;
	if (w->notice) {
		add_line(&b, width, "  %s", w->notice);
		w->drawn++;
	}
	bar_w = width - 1 - ROW_FIXED - wo;
	bar_w = bar_w > BAR_MAX ? BAR_MAX : bar_w < BAR_MIN ? 0 : bar_w;
	snprintf(row, sizeof(row), "%-8s %-*s %-6s %-18s %-*s  %s", "INSTANCE", wo, "OBJECT", "NODE",
		 "TARGET", bar_w ? bar_w + 7 : 4, "PROGRESS", "STATE");
	add_line(&b, width, "%s", row);
	w->drawn++;
	/* Every instance when they fit; else the busiest first, in job order within a rank. */
	if (n <= (size_t)max_rows) {
		json_array_foreach(instances, i, v) {
			format_row(row, sizeof(row), v, wo, bar_w);
			add_line(&b, width, "%s", row);
			w->drawn++;
			shown++;
		}
		memset(hidden, 0, sizeof(hidden));
	}
	for (int r = 0; n > (size_t)max_rows && r < RANKS; r++) {
		json_array_foreach(instances, i, v) {
			if (shown + 1 >= (size_t)max_rows)
				break;
			if (rank(cli_jstr(v, "state", "?")) != r)
				continue;
			hidden[r]--;
			format_row(row, sizeof(row), v, wo, bar_w);
			add_line(&b, width, "%s", row);
			w->drawn++;
			shown++;
		}
	}
	if (shown < n) {
		static const char *const names[RANKS] = { "running", "checkpointed", "failed", "pending",
							  "finished" };
		char more[256];
		int len = snprintf(more, sizeof(more), "... %zu more:", n - shown);

		for (int r = 0, first = 1; r < RANKS; r++)
			if (hidden[r] && len > 0 && (size_t)len < sizeof(more)) {
				len += snprintf(more + len, sizeof(more) - (size_t)len, "%s %zu %s",
						first ? "" : ",", hidden[r], names[r]);
				first = 0;
			}
		add_line(&b, width, "%s", more);
		w->drawn++;
	}
	fputs(buf_str(&b), stderr);
	fflush(stderr);
	buf_release(&b);
}

/* Plain mode: a line per change of state and per tenth of progress. */
static void report_changes(struct watch *w, const json_t *job)
{
	const json_t *in, *b;
	char target[96], key[160];
	size_t i;

	json_array_foreach(json_object_get(job, "builds"), i, b) {
		const char *s = cli_jstr(b, "status", "?");
		json_t *seen;

		snprintf(key, sizeof(key), "build %s %s", cli_jstr(b, "object", "?"),
			 cli_jstr(b, "target", "?"));
		seen = json_object_get(w->seen, key);
		if (seen && !strcmp(json_string_value(seen), s))
			continue;
		fprintf(stderr, "%7.1fs  build of %s for %s: %s%s%s%.*s\n", follow_now() - w->start,
			cli_jstr(b, "object", "?"), cli_jstr(b, "target", "?"), s,
			json_is_true(json_object_get(b, "cached")) ? " (cached)" : "",
			cli_jstr(b, "error", NULL) ? ": " : "", line_len(cli_jstr(b, "error", "")),
			cli_jstr(b, "error", ""));
		json_object_set_new(w->seen, key, json_string(s));
	}
	json_array_foreach(json_object_get(job, "instances"), i, in) {
		const char *id = cli_jstr(in, "id", "?"), *s = cli_jstr(in, "state", "?");
		json_t *seen = json_object_get(w->seen, id);
		double p = cli_progress(in);
		int tenth = p < 0 ? -1 : (int)(p * 10);
		const char *err = cli_jstr(in, "error", NULL);

		if (seen && !strcmp(cli_jstr(seen, "state", ""), s)) {
			if (tenth <= json_integer_value(json_object_get(seen, "tenth")) || is_final(s))
				continue;
			fprintf(stderr, "%7.1fs  %s %s: %d%%\n", follow_now() - w->start, id,
				cli_jstr(in, "object", "?"), tenth * 10);
		} else if (!strcmp(s, "running") || !strcmp(s, "starting")) {
			fprintf(stderr, "%7.1fs  %s %s: %s on %s (%s)\n", follow_now() - w->start, id,
				cli_jstr(in, "object", "?"), s, cli_jstr(in, "node", "?"),
				cli_target(target, sizeof(target), in));
		} else {
			const json_t *code = json_object_get(in, "exit_code");
			char exit_code[32] = "";
			if (is_final(s) && json_is_integer(code) && !(err && *err))
				snprintf(exit_code, sizeof(exit_code), " (exit %lld)",
					 (long long)json_integer_value(code));
			fprintf(stderr, "%7.1fs  %s %s: %s%s%s%.*s\n", follow_now() - w->start, id,
				cli_jstr(in, "object", "?"), s, exit_code, err && *err ? ": " : "",
				err ? line_len(err) : 0, err ? err : "");
		}
		json_object_set_new(w->seen, id, json_pack("{sssi}", "state", s, "tenth", tenth));
	}
	fflush(stderr);
}

/* Whether the job is over: every followed instance finished, or the job says so. */
static int job_finished(const json_t *job)
{
	const char *state = cli_jstr(job, "state", "");
	const json_t *in;
	size_t i;

	if (!strcmp(state, "done") || !strcmp(state, "cancelled"))
		return 1;
	if (!json_array_size(json_object_get(job, "instances")))
		return is_final(state);
	json_array_foreach(json_object_get(job, "instances"), i, in)
		if (!is_final(cli_jstr(in, "state", "")))
			return 0;
	return 1;
}

/* Keeps only the followed instances of a fresh job document, and no builds. */
static int narrow(json_t *job, const struct watch *w)
{
	json_t *mine = json_array(), *in;
	size_t i;

	if (!mine)
		return err_set(ERR_NOMEM, "out of memory");
	json_array_foreach(json_object_get(job, "instances"), i, in)
		if (json_object_get(w->wanted, cli_jstr(in, "id", "")))
			json_array_append(mine, in);
	if (json_array_size(mine) != json_object_size(w->wanted)) {
		json_decref(mine);
		return err_set(ERR_CORRUPT, "the dispatcher's job %s lacks some of the %s", w->set->job_id,
			       w->set->label);
	}
	json_object_set_new(job, "instances", mine);
	json_object_del(job, "builds");
	return 0;
}

static int job_step(void *arg, json_t *job, int fresh, const char *notice)
{
	struct watch *w = arg;
	int r;

	if (fresh && w->wanted && (r = narrow(job, w)) < 0)
		return r;
	w->notice = notice;
	if (w->tty)
		redraw(w, job);
	else if (fresh)
		report_changes(w, job);
	return job_finished(job);
}

int follow_job(json_t **final, client *c, const struct follow_set *set, double timeout_s)
{
	struct watch w = { .set = set, .start = follow_now(), .tty = stderr_is_tty() };
	struct poller p = { .collection = "jobs", .id = set->job_id, .timeout_s = timeout_s, .tty = w.tty,
			  .shows_notice = 1, .start = w.start, .step = job_step, .arg = &w };
	char on_interrupt[256], on_timeout[256];
	const json_t *v;
	size_t i;
	int r;

	if (set->only) {
		snprintf(on_interrupt, sizeof(on_interrupt), "the %s go on ('dispatch status %s' shows "
			 "them)", set->label, set->job_id);
		snprintf(on_timeout, sizeof(on_timeout), "the %s, which go on ('dispatch status %s' shows "
			 "them)", set->label, set->job_id);
	} else {
		snprintf(on_interrupt, sizeof(on_interrupt), "job %s goes on ('dispatch status %s' shows it, "
			 "'dispatch cancel %s' stops it)", set->job_id, set->job_id, set->job_id);
		snprintf(on_timeout, sizeof(on_timeout), "job %s, which goes on ('dispatch cancel %s' stops "
			 "it)", set->job_id, set->job_id);
	}
	p.on_interrupt = on_interrupt;
	p.on_timeout = on_timeout;
	if (!(w.seen = json_object()) || (set->only && !(w.wanted = json_object()))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(set->only, i, v) {
		const char *id = json_string_value(v);

		if (json_object_set_new(w.wanted, id ? id : "?", json_true()) < 0) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	r = poll_run(final, c, &p);
out:
	json_decref(w.wanted);
	json_decref(w.seen);
	return r;
}

int follow_report(const json_t *job, const struct follow_set *set)
{
	const json_t *in, *b, *code;
	size_t i, total = 0, ok = 0;
	char target[96];

	/* A compiler's whole output once per object: the other targets usually fail alike. */
	json_array_foreach(json_object_get(job, "builds"), i, b) {
		const char *err = cli_jstr(b, "error", NULL), *obj = cli_jstr(b, "object", "?");
		const json_t *prev;
		size_t j;
		int first = 1;

		if (!err || !*err)
			continue;
		json_array_foreach(json_object_get(job, "builds"), j, prev) {
			if (j >= i)
				break;
			if (!strcmp(cli_jstr(prev, "object", ""), obj) && cli_jstr(prev, "error", NULL))
				first = 0;
		}
		fprintf(stderr, "build of %s for %s failed: %.*s\n", obj, cli_jstr(b, "target", "?"),
			first ? (int)strlen(err) : line_len(err), err);
	}
	json_array_foreach(json_object_get(job, "instances"), i, in) {
		const char *s = cli_jstr(in, "state", "?"), *err = cli_jstr(in, "error", NULL);
		const char *node = cli_jstr(in, "node", NULL);

		total++;
		if (!strcmp(s, "done")) {
			ok++;
			continue;
		}
		code = json_object_get(in, "exit_code");
		fprintf(stderr, "%s %s", cli_jstr(in, "id", "?"), cli_jstr(in, "object", "?"));
		if (node)
			fprintf(stderr, " on %s (%s)", node, cli_target(target, sizeof(target), in));
		fprintf(stderr, ": %s", s);
		/* The dispatcher's error already says "exit N: ..." when there is one. */
		if (err && *err)
			fprintf(stderr, ": %.*s\n", line_len(err), err);
		else if (json_is_integer(code))
			fprintf(stderr, ", exit %lld\n", (long long)json_integer_value(code));
		else
			fputc('\n', stderr);
	}
	if (set->only) {
		/* Other instances of the job are none of this wait's business. */
		fprintf(stderr, "%s: %zu of %zu succeeded\n", set->label, ok, total);
		return ok == total;
	}
	fprintf(stderr, "job %s: %s, %zu of %zu instances succeeded\n", cli_jstr(job, "id", "?"),
		cli_jstr(job, "state", "?"), ok, total);
	return ok == total && strcmp(cli_jstr(job, "state", ""), "failed") &&
	       strcmp(cli_jstr(job, "state", ""), "cancelled");
}

/* ---- one instance ---- */

struct instance_watch {
	const char *id;
	follow_check_fn check;
	void *arg;
	double start;
	char last[128];        /* state, node and generation last reported */
	char on_timeout[256];  /* kept up to date: the timeout says where the instance was */
};

static int instance_step(void *arg, json_t *inst, int fresh, const char *notice)
{
	struct instance_watch *w = arg;
	const char *s = cli_jstr(inst, "state", "?"), *node = cli_jstr(inst, "node", NULL);
	long long gen = (long long)json_integer_value(json_object_get(inst, "generation"));
	const char *err = cli_jstr(inst, "error", NULL);
	char key[128], target[96];

	(void)notice; /* printed by the loop */
	if (!fresh)
		return 0;
	snprintf(key, sizeof(key), "%s %s %lld", s, node ? node : "-", gen);
	if (strcmp(key, w->last)) {
		if (node && (!strcmp(s, "running") || !strcmp(s, "starting")))
			fprintf(stderr, "%7.1fs  %s: %s on %s (%s), generation %lld\n",
				follow_now() - w->start, w->id, s, node,
				cli_target(target, sizeof(target), inst), gen);
		else
			fprintf(stderr, "%7.1fs  %s: %s%s%.*s\n", follow_now() - w->start, w->id, s,
				err && *err ? ": " : "", err ? line_len(err) : 0, err ? err : "");
		fflush(stderr);
		snprintf(w->last, sizeof(w->last), "%s", key);
	}
	snprintf(w->on_timeout, sizeof(w->on_timeout), "%s, which is %s%s%s", w->id, s, node ? " on " : "",
		 node ? node : "");
	return w->check(inst, w->arg);
}

int follow_instance(json_t **final, client *c, const char *id, double timeout_s, follow_check_fn check,
		    void *arg)
{
	struct instance_watch w = { .id = id, .check = check, .arg = arg, .start = follow_now() };
	struct poller p = { .collection = "instances", .id = id, .timeout_s = timeout_s, .tty = stderr_is_tty(),
			  .start = w.start, .step = instance_step, .arg = &w, .on_timeout = w.on_timeout };
	char on_interrupt[128];

	snprintf(on_interrupt, sizeof(on_interrupt), "what was asked of %s stands ('dispatch status %s' "
		 "shows it)", id, id);
	snprintf(w.on_timeout, sizeof(w.on_timeout), "%s", id);
	p.on_interrupt = on_interrupt;
	return poll_run(final, c, &p);
}
