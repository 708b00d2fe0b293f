/* store.h - the agent's bounded cache of artifacts and state bundles, evicted least recently used first. */
#ifndef DISPATCH_AGENT_STORE_H
#define DISPATCH_AGENT_STORE_H

#include <stdint.h>

#include "bundle.h"
#include "digest.h"

/*
 * A cas (common/cas.h) under WORK/cache plus an index of its blobs: size,
 * last use and a pin count. Whenever the blobs add up to more than the
 * cap, the least recently used unpinned blobs are deleted until they fit
 * again. A pinned blob (being extracted, or waiting to be uploaded) is
 * never deleted, so the cache may stay above its cap while pins last.
 * The order of use survives restarts through the blobs' mtimes. Nothing is
 * fsynced (cas_set_cache()): the dispatcher holds every blob durably, and
 * a blob is re-hashed before each use, so one that a machine crash tore is
 * fetched again.
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

/*
 * Artifacts unpacked once, shared by every run of them: dir/<digest> is
 * the tree a blob unpacks to, owned by the agent and read-only to anyone
 * else (directories 0755, files without write bits; dir itself 0711 so that
 * nobody can list it). A tree counts toward the cap with its blob and goes
 * when its blob is evicted; pin the blob for as long as a run uses the
 * tree. store_set_trees() creates dir and indexes the trees an earlier
 * agent left; trees whose blob is gone are indexed too, so a run taken
 * over can still pin its tree, and are evicted like any other. Trees are
 * written without fsync: boot names the machine's boot (store_boot_id());
 * when dir was filled during another boot, every tree in it is removed
 * (a crash may have torn it, and no run outlived the reboot to need it).
 * Without a record of the boot (an agent from before it), trees unpacked
 * before the machine booted are removed and later ones kept.
 */
int store_set_trees(store *s, const char *dir, const char *boot);

/* This boot of the machine (/proc/sys/kernel/random/boot_id), "" when unknown (borrowed). */
const char *store_boot_id(void);

/* The directory of the trees (borrowed), NULL before store_set_trees(). */
const char *store_tree_dir(const store *s);

/*
 * The tree of a stored blob (*out: new string): unpacked with lim when
 * there is none yet, after the blob is verified once (ERR_CORRUPT: it was
 * dropped, fetch it again). ERR_NOTFOUND when neither tree nor blob is
 * there. Marks it used.
 */
int store_tree(store *s, char **out, const char *digest, const struct bundle_limits *lim);

/* Whether the blob's tree is there; marks it used when it is. */
int store_has_tree(store *s, const char *digest);

/* Deletes least recently used unpinned blobs while the total is above the cap. */
void store_evict(store *s);

/* The bytes held (blobs and trees) and the number of blobs. */
uint64_t store_size(const store *s);
size_t store_count(const store *s);

#endif
