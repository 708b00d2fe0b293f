/* builder.h - builds every object of a manifest for every target, cached. */
#ifndef DISPATCH_BUILDER_H
#define DISPATCH_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "cas.h"
#include "digest.h"
#include "manifest.h"
#include "toolchain.h"

enum build_state {
	BUILD_PENDING,
	BUILD_RUNNING,
	BUILD_BUILT,   /* compiled now */
	BUILD_CACHED,  /* found in the cache, nothing compiled */
	BUILD_FAILED,
};

/* One (object, target) pair. Strings are owned by the report. */
struct build_result {
	const struct manifest_object *object; /* borrowed from the manifest */
	struct toolchain *tc;                 /* borrowed from the toolchain set */
	const struct toolchain_level *level;
	char target[96];                      /* "isa:level" */
	enum build_state state;
	digest_hex key;                       /* cache key */
	digest_hex artifact;                  /* valid when BUILT or CACHED */
	uint64_t size;
	char *path;                           /* the artifact bundle in the CAS */
	char *message;                        /* why it failed: error and compiler output */
	char *note;                           /* e.g. "corrupt cache entry rebuilt" */
	double seconds;
};

struct build_report {
	struct build_result *results;
	size_t count;
	size_t built, cached, failed;
	double seconds;
	struct toolchain_set *toolchains; /* owned; the results point into it */
};

/* Called from worker threads, serialized; changed is NULL for a periodic tick. */
typedef void (*builder_progress_fn)(void *data, const struct build_report *rep,
				    const struct build_result *changed);

struct builder_opts {
	const char *cache_dir;        /* default: builder_default_cache_dir() */
	const char *toolchains_dir;   /* default: toolchain_default_dir() */
	const char *const *targets;   /* NULL-terminated; NULL or empty: every available baseline */
	int jobs;                     /* default: the number of CPUs */
	unsigned timeout_s;           /* per (object, target); default 600 */
	const char *build_user;       /* user compilers run as when root; default "nobody" */
	const char *sdk_dir;          /* the object SDK's sources; default builder_default_sdk_dir() */
	builder_progress_fn progress;
	void *progress_data;
	/*
	 * Only look the pairs up, quickly and without waiting on anything:
	 * nothing is compiled, no compiler is probed beyond its remembered
	 * identity, a git source is not resolved, a path source of more than
	 * 4 MiB is not hashed, a manifest of more than 64 objects is ERR_LIMIT.
	 * What cannot be settled that way stays BUILD_PENDING in the report.
	 */
	int cached_only;
};

/*
 * Builds the matrix. Returns 0 when the matrix could be set up (even if
 * some pairs failed: see the report), or a negative code for errors that
 * stop everything (bad target name, unreadable cache). *out is new.
 * No worker thread is started when the cache settles every pair.
 */
int builder_run(struct build_report **out, const struct manifest *m, const struct builder_opts *o);
void build_report_free(struct build_report *rep);

/* $DISPATCH_CACHE, else $XDG_CACHE_HOME/dispatch, else ~/.cache/dispatch. */
const char *builder_default_cache_dir(void);

const char *build_state_name(enum build_state s);

/* $DISPATCH_SDK, else the source tree's sdk/, else the installed copy. */
const char *builder_default_sdk_dir(void);

/* Opens the artifact store of a cache directory. */
int builder_open_store(cas **out, const char *cache_dir);

#endif
