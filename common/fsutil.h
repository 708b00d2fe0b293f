/* fsutil.h - file system helpers: bounded reads, atomic writes, trees. */
#ifndef DISPATCH_FSUTIL_H
#define DISPATCH_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* Reads the whole file into out (appending); fails with ERR_LIMIT past max. */
int fs_read_file(struct buf *out, const char *path, size_t max);

/*
 * Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename, fsync of the directory. Readers see the old or the new
 * contents, never a mix, even across a crash.
 */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Like fs_write_atomic() without the fsyncs: a temporary file renamed over
 * path. Readers, and a process started after this one crashed, see the old
 * or the new contents; after a power loss either may be lost. For files
 * that only have to survive the process (a machine that goes down takes
 * what they describe with it).
 */
int fs_write_renamed(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Writes data to path in place (created or truncated; a symlink is not
 * followed): no temporary file, no fsync. The caller renames it when
 * readers must not see it half written.
 */
int fs_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* Writes all of data to fd, retrying short writes; name is for the message. */
int fs_write_all(int fd, const void *data, size_t len, const char *name);

/* rename(2) with a message naming both paths. */
int fs_rename(const char *from, const char *to);

/* Renames tmp to path and fsyncs both the file and the directory. */
int fs_commit(const char *tmp, const char *path);

int fs_fsync_dir(const char *dir);

/* mkdir -p; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode);

/* rm -rf that never follows symbolic links; a missing path is fine. */
int fs_rm_rf(const char *path);

/* Copies a tree (regular files, directories, symlinks as links). */
int fs_copy_tree(const char *from, const char *to);

/* Copies one regular file, keeping the mode's permission bits. */
int fs_copy_file(const char *from, const char *to);

/* Changes the owner of every entry below (and including) path; links are not followed. */
int fs_chown_tree(const char *path, uid_t uid, gid_t gid);

/* Whether path exists (any type). */
int fs_exists(const char *path);

/* Makes a unique directory "base/prefix-XXXXXX" and returns its path (new). */
int fs_mkdtemp(char **out, const char *base, const char *prefix);

/*
 * Opens path (created, mode 0600) and takes an exclusive flock() on it
 * without waiting; *fd holds it for as long as it stays open (close-on-exec).
 * ERR_EXISTS when another process holds it.
 */
int fs_lock_file(int *fd, const char *path);

/* Joins a and b with one '/' (new string, NULL on allocation failure). */
char *fs_join(const char *a, const char *b);

/*
 * Whether rel is a safe relative path: not absolute, no "..", no empty
 * component abuse, no NUL. Used for every path taken from outside.
 */
int fs_rel_is_safe(const char *rel);

#endif
