/* source.h - identifying and materializing an object's sources. */
#ifndef DISPATCH_SOURCE_H
#define DISPATCH_SOURCE_H

#include "cas.h"
#include "digest.h"
#include "manifest.h"

/*
 * The identity of a source is a digest that changes exactly when its
 * content can: the tree digest of a directory, the commit's tree id for
 * git, and the declared SHA-256 (plus strip) for an archive. Archives are
 * fetched into the CAS under their SHA-256, so the digest check and the
 * cache lookup are the same thing.
 */
struct source_ctx {
	cas *store;
	const char *git_cache; /* directory of cached repositories */
	uint64_t path_max_bytes; /* a path source larger is ERR_LIMIT; 0: the default (2 GiB) */
};

/* Computes the identity; for git, fetches the repository if needed. */
int source_identify(digest_hex *out, const struct source_ctx *ctx, const struct manifest_source *s);

/* Writes the source tree into dest (an existing, empty directory). */
int source_materialize(const struct source_ctx *ctx, const struct manifest_source *s, const char *dest);

/* Global setup for libgit2 and libcurl; call once from main. */
int source_global_init(void);
void source_global_shutdown(void);

#endif
