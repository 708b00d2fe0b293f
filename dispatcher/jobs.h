/* jobs.h - accepting jobs and building what the cluster's nodes need. */
#ifndef DISPATCH_JOBS_H
#define DISPATCH_JOBS_H

#include <jansson.h>

#include "core.h"

/*
 * Accepts a job bundle (a tar of manifest.json and its sources): extracts
 * it safely into the jobs directory, validates the manifest, stores the job
 * and its instances in one transaction, and asks the build thread to build.
 * Core lock held. On success *out is the API answer (new); on failure the
 * message names the problem and the return code says whose fault it is.
 */
int jobs_submit(struct core *c, const char *bundle, json_t **out);

/*
 * The build thread: whenever a job or a node appears, builds every job's
 * objects for the (ISA, level) pairs the up nodes need, cache first, without
 * holding the core lock, then records the results and runs a placement pass.
 */
void *jobs_build_thread(void *core);

#endif
