/* cas.h - a content-addressed store of files, named by their SHA-256. */
#ifndef DISPATCH_CAS_H
#define DISPATCH_CAS_H

#include <stdint.h>

#include "digest.h"

/*
 * Layout: ROOT/sha256/ab/<64 hex>, read-only files, and ROOT/tmp for
 * files being written. A blob is written to tmp, fsynced, then renamed
 * into place, so a crash never leaves a partial blob under its name.
 * Blobs are verified when read: a blob whose content does not match its
 * name is moved aside to ROOT/corrupt/ and reported as ERR_CORRUPT.
 */
typedef struct cas cas;

/* Opens (creating) the store at root. *out is new: free with cas_free(). */
int cas_open(cas **out, const char *root);
void cas_free(cas *c);

/*
 * A cache: blobs are renamed into place without the fsyncs, and a blob
 * stored again replaces the copy there (which a crash may have torn)
 * instead of being dropped as a duplicate. Only for a store whose user
 * verifies a blob before each use (cas_verify()), so that a torn blob is
 * fetched again or dropped rather than used: the agent's cache.
 */
void cas_set_cache(cas *c);

/* The store's scratch directory, on the same file system (borrowed). */
const char *cas_tmpdir(const cas *c);

/* Stores bytes; *out receives their digest. */
int cas_put_buf(cas *c, digest_hex *out, const void *data, size_t len);

/* Stores a copy of the file at path. */
int cas_put_file(cas *c, digest_hex *out, const char *path);

/*
 * Moves a file the caller wrote (normally under cas_tmpdir()) into the
 * store. The file is consumed whether or not the call succeeds.
 */
int cas_adopt(cas *c, digest_hex *out, const char *tmp_path);

/* The path a blob has (new string), whether or not it exists. */
char *cas_path(const cas *c, const char *digest);

/* Whether the blob exists (no verification). */
int cas_has(const cas *c, const char *digest);

/*
 * Re-hashes the blob. 0 when it matches; ERR_NOTFOUND when absent;
 * ERR_CORRUPT (blob moved aside) when it does not match. size may be NULL.
 * A blob this process verified before is not hashed again while its
 * inode, size, mtime and ctime are unchanged and were already a second
 * old then (a write, or a copy renamed over it, changes them; a crash that
 * could tear a cache's unsynced copy also ends the process that verified it).
 */
int cas_verify(cas *c, const char *digest, uint64_t *size);

#endif
