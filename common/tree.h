/* tree.h - the content digest of a directory tree. */
#ifndef DISPATCH_TREE_H
#define DISPATCH_TREE_H

#include <stdint.h>

#include "digest.h"

/*
 * Hashes every entry below dir in sorted order: its relative path, its
 * kind (file, executable file, directory, symlink) and its content or link
 * target. Times, owners and other mode bits do not count, so a copy of a
 * tree has the digest of the original. Directories named ".git" are
 * skipped. Fails with ERR_LIMIT past max_files entries or max_bytes of
 * content (0: no limit), and with ERR_INVALID on other file types.
 */
int tree_digest(digest_hex *out, const char *dir, uint64_t max_files, uint64_t max_bytes);

#endif
