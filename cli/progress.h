/* progress.h - the build progress display: live on a terminal, plain lines elsewhere. */
#ifndef DISPATCH_PROGRESS_H
#define DISPATCH_PROGRESS_H

#include <stdio.h>

#include "builder.h"

struct progress {
	FILE *out;
	int tty;          /* redraw in place */
	int quiet;        /* print nothing but failures */
	int drawn;        /* lines drawn by the last redraw */
	size_t reported;  /* plain mode: results already printed */
	double start;
};

void progress_init(struct progress *p, FILE *out, int quiet);

/* A builder_progress_fn; data is a struct progress. */
void progress_update(void *data, const struct build_report *rep, const struct build_result *changed);

/* Clears the live display. */
void progress_finish(struct progress *p);

#endif
