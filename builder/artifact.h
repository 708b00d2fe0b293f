/* artifact.h - artifact bundles: one executable plus its description. */
#ifndef DISPATCH_ARTIFACT_H
#define DISPATCH_ARTIFACT_H

#include <jansson.h>

#include "cas.h"

/*
 * An artifact is a deterministic tar.zst in the CAS holding
 *   meta.json      what was built, for which target, by which compiler
 *   bin/<entry>    the executable
 * It is named by the SHA-256 of the bundle.
 */

/* Packs exe (copied as bin/<entry>) and meta (borrowed) into the store. */
int artifact_pack(digest_hex *out, cas *store, const char *exe, const char *entry, json_t *meta);

/*
 * Verifies the bundle, then writes its executable to dest (mode 0755,
 * atomically). ERR_CORRUPT when the bundle does not match its digest.
 */
int artifact_extract_exe(cas *store, const char *digest, const char *entry, const char *dest);

/*
 * Checks that path is an ELF executable for the given machine, word size
 * and byte order; the message says what it is instead.
 */
int artifact_check_elf(const char *path, int machine, int bits, int big_endian);

#endif
