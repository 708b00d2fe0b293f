/* store.h - the agent's bounded cache of artifacts and state bundles, evicted least recently used first. */
#ifndef DISPATCH_AGENT_STORE_H
#define DISPATCH_AGENT_STORE_H

#include <stdint.h>

#include "digest.h"

/*
 * A cas (common/cas.h) under WORK/cache plus an index of its blobs: size,
 * last use and a pin count. Whenever the blobs add up to more than the
 * cap, the least recently used unpinned blobs are deleted until they fit
 * again. A pinned blob (being extracted, or waiting to be uploaded) is
 * never deleted, so the cache may stay above its cap while pins last.
 * The order of use survives restarts through the blobs' mtimes.
 * Not thread-safe: the agent's main thread owns it.
 */
typedef struct store store;

/* Opens (creating) the cache in dir; leftovers in its tmp/ and corrupt/ are removed. *out is new. */
int store_open(store **out, const char *dir, uint64_t max_bytes);
void store_free(store *s);

/* Where to write a file that store_adopt() will take (borrowed). */
const char *store_tmpdir(const store *s);

/* The path of a blob (new string), whether or not it is stored. */
char *store_path(const store *s, const char *digest);

/* Whether the blob is stored; marks it used when it is. */
int store_has(store *s, const char *digest);

/*
 * Moves the file tmp into the cache (consumed either way), marks it used
 * and evicts what no longer fits, never the newcomer itself: it is about
 * to be used, so pin it before the next eviction. When expect is not NULL
 * the file's digest must be expect (ERR_CORRUPT otherwise, and nothing is
 * kept). out may be NULL.
 */
int store_adopt(store *s, digest_hex *out, const char *tmp, const char *expect);

/*
 * Re-hashes a stored blob before it is used: 0 when it matches,
 * ERR_NOTFOUND when absent, ERR_CORRUPT when the disk changed it (it is
 * then dropped, so that it can be fetched again).
 */
int store_verify(store *s, const char *digest);

/* Pins are counted: every store_pin() needs a store_unpin(). Pinning an absent digest is fine. */
int store_pin(store *s, const char *digest);
void store_unpin(store *s, const char *digest);

/* Deletes least recently used unpinned blobs while the total is above the cap. */
void store_evict(store *s);

/* The bytes held and the number of blobs. */
uint64_t store_size(const store *s);
size_t store_count(const store *s);

#endif
