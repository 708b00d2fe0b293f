/* progress.c - rendering build progress. */
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LIVE_LINES_MAX 8

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(struct progress *p, FILE *out, int quiet)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->quiet = quiet;
	p->tty = isatty(fileno(out)) && !(getenv("TERM") && !strcmp(getenv("TERM"), "dumb"));
	p->start = now_s();
}

static void clear_block(struct progress *p)
{
	for (int i = 0; i < p->drawn; i++)
		fputs("\033[1A\033[2K", p->out);
	p->drawn = 0;
}

static int term_width(FILE *f)
{
	struct winsize ws;

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

static void print_final(struct progress *p, const struct build_result *r, size_t done, size_t total)
{
	if (r->state == BUILD_FAILED)
		fprintf(p->out, "[%zu/%zu] FAILED %s for %s: %.*s\n", done, total, r->object->name, r->target,
			(int)strcspn(r->message ? r->message : "", "\n"), r->message ? r->message : "");
	else if (!p->quiet)
		fprintf(p->out, "[%zu/%zu] %s %s for %s (%.1f s)\n", done, total, build_state_name(r->state),
			r->object->name, r->target, r->seconds);
}

static void redraw(struct progress *p, const struct build_report *rep)
{
	size_t done = rep->built + rep->cached + rep->failed;
	int width = term_width(p->out), bar = 24, filled, live = 0;

	clear_block(p);
	filled = rep->count ? (int)(bar * done / rep->count) : bar;
	fprintf(p->out, "building [");
	for (int i = 0; i < bar; i++)
		fputc(i < filled ? '#' : '.', p->out);
	fprintf(p->out, "] %zu/%zu  built %zu  cached %zu  failed %zu  %.1f s\n", done, rep->count,
		rep->built, rep->cached, rep->failed, now_s() - p->start);
	p->drawn = 1;
	for (size_t i = 0; i < rep->count && live < LIVE_LINES_MAX; i++) {
		const struct build_result *r = &rep->results[i];
		if (r->state != BUILD_RUNNING)
			continue;
		char line[512];
		snprintf(line, sizeof(line), "  compiling %s for %s", r->object->name, r->target);
		fprintf(p->out, "%.*s\n", width - 1, line);
		live++;
		p->drawn++;
	}
	fflush(p->out);
}

void progress_update(void *data, const struct build_report *rep, const struct build_result *changed)
{
	struct progress *p = data;
	size_t done = rep->built + rep->cached + rep->failed;

	if (changed && (changed->state == BUILD_BUILT || changed->state == BUILD_CACHED ||
			changed->state == BUILD_FAILED))
		done = ++p->reported; /* the n-th result reported, whatever order they settle in */
	if (p->tty) {
		if (changed && changed->state == BUILD_FAILED) {
			clear_block(p);
			print_final(p, changed, done, rep->count);
		}
		if (!p->quiet)
			redraw(p, rep);
		return;
	}
	if (changed && (changed->state == BUILD_BUILT || changed->state == BUILD_CACHED ||
			changed->state == BUILD_FAILED)) {
		print_final(p, changed, done, rep->count);
		fflush(p->out);
	}
}

void progress_finish(struct progress *p)
{
	if (p->tty)
		clear_block(p);
	fflush(p->out);
}
