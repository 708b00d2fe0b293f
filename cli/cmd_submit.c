/* cmd_submit.c - `dispatch submit`: send a job, optionally follow it to the end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "bundle_job.h"
#include "cli.h"
#include "client.h"
#include "error.h"
#include "fsutil.h"

#define POLL_TTY_S 0.2          /* a redrawn table wants to move smoothly */
#define POLL_PLAIN_S 1.0        /* a log does not need more */
#define POLL_MAX_S 5.0          /* the slowest a large job is polled */
#define UNREACHABLE_MAX_S 60.0  /* how long --wait rides out a dispatcher restart */
#define BAR_MAX 30            /* progress bar columns on a wide terminal */
#define BAR_MIN 6             /* narrower than this, only the percentage */

static const char usage[] =
	"usage: dispatch submit MANIFEST [--wait] [--json] [--timeout S] [--url URL] [--token TOKEN]\n"
	"\n"
	"Validates MANIFEST, packs it with its local sources (path sources and\n"
	"local archives; .git directories are left out) into a job bundle and\n"
	"submits it to the dispatcher, which builds every object for the ISAs of\n"
	"its nodes and runs the instances. Prints the job's ID.\n"
	"\n"
	"  --wait         follow the job until every instance has finished and exit\n"
	"                 0 only if all of them succeeded. On a terminal, a table of\n"
	"                 the instances (node, target, progress, state) is redrawn\n"
	"                 on stderr, polling every 0.2 s; elsewhere a line is printed\n"
	"                 for every change of state and every 10% of progress,\n"
	"                 polling every second. A large job is polled less often.\n"
	"  --timeout S    with --wait: stop waiting after S seconds and exit 1; the\n"
	"                 job goes on\n"
	"  --json         print the dispatcher's answer as JSON; with --wait, the\n"
	"                 final state of the job\n" CLI_REMOTE_HELP;

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now_s(void)
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

/* The length of the first line of s: messages may carry a compiler's whole output. */
static int line_len(const char *s)
{
	return (int)strcspn(s, "\n");
}

static int is_final(const char *state)
{
	return !strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

/* What the display remembers between polls. */
struct watch {
	const char *job_id;
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
	add_line(&b, width,
		 "job %s '%s': %s   %zu/%zu instances done, %zu failed   builds %zu/%zu (%zu cached)   "
		 "%.0f s",
		 w->job_id, cli_jstr(job, "name", "?"), cli_jstr(job, "state", "?"), done, n, failed,
		 builds_done, nb, cached, now_s() - w->start);
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
		fprintf(stderr, "%7.1fs  build of %s for %s: %s%s%s%.*s\n", now_s() - w->start,
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
			fprintf(stderr, "%7.1fs  %s %s: %d%%\n", now_s() - w->start, id,
				cli_jstr(in, "object", "?"), tenth * 10);
		} else if (!strcmp(s, "running") || !strcmp(s, "starting")) {
			fprintf(stderr, "%7.1fs  %s %s: %s on %s (%s)\n", now_s() - w->start, id,
				cli_jstr(in, "object", "?"), s, cli_jstr(in, "node", "?"),
				cli_target(target, sizeof(target), in));
		} else {
			const json_t *code = json_object_get(in, "exit_code");
			char exit_code[32] = "";
			if (is_final(s) && json_is_integer(code) && !(err && *err))
				snprintf(exit_code, sizeof(exit_code), " (exit %lld)",
					 (long long)json_integer_value(code));
			fprintf(stderr, "%7.1fs  %s %s: %s%s%s%.*s\n", now_s() - w->start, id,
				cli_jstr(in, "object", "?"), s, exit_code, err && *err ? ": " : "",
				err ? line_len(err) : 0, err ? err : "");
		}
		json_object_set_new(w->seen, id, json_pack("{sssi}", "state", s, "tenth", tenth));
	}
	fflush(stderr);
}

/* Whether the job is over: every instance finished, or the job says so. */
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

/* Prints what failed; returns whether every instance is done. */
static int report_outcome(const json_t *job)
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
	fprintf(stderr, "job %s: %s, %zu of %zu instances succeeded\n", cli_jstr(job, "id", "?"),
		cli_jstr(job, "state", "?"), ok, total);
	return ok == total && strcmp(cli_jstr(job, "state", ""), "failed") &&
	       strcmp(cli_jstr(job, "state", ""), "cancelled");
}

/* Follows the job until it is over. *final is the last job document (new). */
static int watch(json_t **final, client *c, const char *job_id, double timeout_s)
{
	struct watch w = { .job_id = job_id, .start = now_s() };
	struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
	json_t *job = NULL;
	double unreachable_since = 0;
	char notice[512];
	int r = 0;

	w.tty = isatty(STDERR_FILENO) && !(getenv("TERM") && !strcmp(getenv("TERM"), "dumb"));
	w.seen = json_object();
	if (!w.seen)
		return err_set(ERR_NOMEM, "out of memory");
	sigemptyset(&sa.sa_mask);
	/* Ctrl-C ends the wait, not the job; a signal the caller ignores stays ignored. */
	sigaction(SIGINT, NULL, &old_int);
	sigaction(SIGTERM, NULL, &old_term);
	if (old_int.sa_handler != SIG_IGN)
		sigaction(SIGINT, &sa, NULL);
	if (old_term.sa_handler != SIG_IGN)
		sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		double t0 = now_s(), took, pause;
		json_t *next = NULL;

		r = client_get_json(&next, c, "/v1/jobs/%s", job_id);
		took = now_s() - t0;
		if (r == ERR_NET && (!unreachable_since || t0 - unreachable_since < UNREACHABLE_MAX_S)) {
			/* A dispatcher restart should not end the wait: it keeps its jobs. */
			if (!unreachable_since)
				unreachable_since = t0;
			snprintf(notice, sizeof(notice), "%s; retrying", err_msg());
			w.notice = notice;
			if (!w.tty || !job)
				fprintf(stderr, "%7.1fs  %s\n", now_s() - w.start, notice);
		} else if (r < 0) {
			break;
		} else {
			unreachable_since = 0;
			w.notice = NULL;
			json_decref(job);
			job = next;
		}
		if (job && w.tty)
			redraw(&w, job);
		else if (job && r == 0)
			report_changes(&w, job);
		r = 0;
		if (job && job_finished(job))
			break;
		if (interrupted) {
			r = err_set(ERR_IO, "interrupted; job %s goes on ('dispatch status %s' shows it, "
				    "'dispatch cancel %s' stops it)", job_id, job_id, job_id);
			break;
		}
		if (timeout_s > 0 && now_s() - w.start >= timeout_s) {
			r = err_set(ERR_LIMIT, "timed out after %.0f s waiting for job %s, which goes on "
				    "('dispatch cancel %s' stops it)", timeout_s, job_id, job_id);
			break;
		}
		/* Big jobs cost the dispatcher to describe: never poll faster than twice the answer took. */
		pause = w.tty ? POLL_TTY_S : POLL_PLAIN_S;
		if (2 * took > pause)
			pause = 2 * took < POLL_MAX_S ? 2 * took : POLL_MAX_S;
		if (timeout_s > 0 && now_s() + pause - w.start > timeout_s)
			pause = timeout_s - (now_s() - w.start);
		if (pause > 0 && !interrupted)
			sleep_s(pause);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	json_decref(w.seen);
	if (r < 0) {
		json_decref(job);
		return r;
	}
	*final = job;
	return 0;
}

/* Bundles the manifest into a temporary file and posts it. */
static int submit(json_t **answer, client *c, const char *manifest)
{
	struct bundle_job_info info;
	const char *tmpdir = getenv("TMPDIR");
	char *work = NULL, *file = NULL;
	int r;

	if ((r = fs_mkdtemp(&work, tmpdir && *tmpdir ? tmpdir : "/tmp", "dispatch-submit")) < 0)
		return r;
	if (!(file = fs_join(work, "job.tar.zst"))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = bundle_job_create(&info, file, manifest, NULL)) < 0)
		goto out;
	r = client_post_file(answer, c, file, "application/x-dispatch-bundle", "/v1/jobs");
out:
	fs_rm_rf(work);
	free(file);
	free(work);
	return r;
}

int cmd_submit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 'T' },
		CLI_REMOTE_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_remote opt = { 0 };
	json_t *answer = NULL, *job = NULL;
	const char *job_id;
	client *c = NULL;
	long timeout_s = 0;
	int ch, r, wait = 0, rc = EXIT_FAIL;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'w') {
			wait = 1;
		} else if (ch == 'T') {
			if ((timeout_s = cli_parse_count(optarg, 30L * 86400)) < 0) {
				cli_error("--timeout: '%s' is not a number of seconds from 1 to %ld", optarg,
					  30L * 86400);
				return EXIT_USAGE;
			}
		} else if ((r = cli_remote_option(&opt, ch, usage, 1)) < 0) {
			return EXIT_OK;
		} else if (r == 0) {
			return cli_usage(usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage(usage);
	if (timeout_s && !wait) {
		cli_error("--timeout only applies with --wait");
		return EXIT_USAGE;
	}
	if (client_connect(&c, opt.url, opt.token) < 0 || submit(&answer, c, argv[optind]) < 0)
		goto fail;
	job_id = cli_jstr(answer, "job", NULL);
	if (!cli_is_id(job_id, 'j')) {
		err_set(ERR_CORRUPT, "the dispatcher at '%s' accepted the job but named no job ID",
			client_url(c));
		goto fail;
	}
	if (!wait) {
		if (opt.json)
			cli_print_json(answer);
		else
			printf("%s\n", job_id);
		rc = EXIT_OK;
		goto out;
	}
	if (!opt.json) {
		printf("%s\n", job_id);
		fflush(stdout);
	}
	if (watch(&job, c, job_id, (double)timeout_s) < 0)
		goto fail;
	rc = report_outcome(job) ? EXIT_OK : EXIT_FAIL;
	if (opt.json)
		cli_print_json(job);
	goto out;
fail:
	cli_error("%s", err_msg());
out:
	json_decref(job);
	json_decref(answer);
	client_free(c);
	return rc;
}
