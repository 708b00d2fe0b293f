/* follow.h - waiting on the dispatcher: for a job's instances to finish, or for one instance's state. */
#ifndef DISPATCH_CLI_FOLLOW_H
#define DISPATCH_CLI_FOLLOW_H

#include <jansson.h>

#include "client.h"

#define FOLLOW_TIMEOUT_S 600 /* the default --timeout of the commands that wait on an instance */

/* What of a job to follow: all of it with its builds, or some of its instances (an instance's forks). */
struct follow_set {
	const char *job_id; /* j-N */
	const json_t *only; /* borrowed: an array of instance IDs; NULL: the whole job */
	const char *label;  /* with only: what they are, for headings and messages ("forks of i-3") */
};

/*
 * Polls the job until every followed instance has finished, showing it on
 * stderr: a table redrawn every 0.2 s on a terminal, elsewhere a line for
 * every change of state and every 10% of progress, polled every second
 * (a large job less often). A dispatcher that cannot be reached for up to
 * a minute is waited for. timeout_s 0 waits without limit.
 *
 * Returns 0 with *final the last job document (new; with only, just the
 * followed instances and no builds), or a negative code: ERR_LIMIT at the
 * timeout, ERR_IO after Ctrl-C or SIGTERM (the instances go on).
 */
int follow_job(json_t **final, client *c, const struct follow_set *set, double timeout_s);

/*
 * Prints on stderr what failed (builds, instances) and a summary line of
 * the job document from follow_job(). Returns 1 when every followed
 * instance succeeded (and, for a whole job, the job did), else 0.
 */
int follow_report(const json_t *job, const struct follow_set *set);

/*
 * Says whether a wait for an instance is over: 1 when it is, 0 to poll
 * again, or a negative code with a message recorded when it can no longer
 * end well (the wait fails with that code). inst is borrowed.
 */
typedef int (*follow_check_fn)(const json_t *inst, void *arg);

/*
 * Polls the instance (i-N) until check says the wait is over, printing
 * a line on stderr for each change of its state, node or generation.
 * Polls every 0.2 s when stderr is a terminal, else every second; a
 * dispatcher restart is ridden out as in follow_job(). Returns 0 with
 * *final the last instance document (new), or the negative code of the
 * check, ERR_LIMIT at the timeout, ERR_IO after Ctrl-C.
 */
int follow_instance(json_t **final, client *c, const char *id, double timeout_s, follow_check_fn check,
		    void *arg);

/* The time since an arbitrary fixed point, in seconds (CLOCK_MONOTONIC). */
double follow_now(void);

#endif
