/* bundle.h - deterministic tar bundles and safe extraction (libarchive). */
#ifndef DISPATCH_BUNDLE_H
#define DISPATCH_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Limits applied while extracting. Input comes from outside (source
 * tarballs, artifacts and state bundles fetched over the network), so
 * every extraction is bounded in total bytes, entry count and per-entry
 * size; a zero field means "use the default".
 */
/* Entries deeper than this many directories are refused (ERR_LIMIT). */
#define BUNDLE_MAX_DEPTH 128

struct bundle_limits {
	uint64_t max_total;      /* sum of entry sizes; default 1 GiB */
	uint64_t max_entries;    /* default 100000; directories created on the way count */
	uint64_t max_entry_size; /* default 512 MiB */
};

/*
 * Packs the tree below dir into a zstd-compressed tar written atomically
 * to out_path (renamed into place, not fsynced: every caller packs into a
 * scratch file that is uploaded or adopted into a cas, which decides how
 * durable it is). The result depends only on names, contents, the
 * executable bit and link targets: entries are sorted, owners are 0,
 * times are 0. Regular files, directories and relative symlinks only.
 */
int bundle_pack_dir(const char *dir, const char *out_path);

/* The same bundle written to fd (a file or a pipe; not closed). */
int bundle_pack_fd(const char *dir, int fd);

/*
 * Extracts an archive in any format and compression libarchive reads
 * (tar, tar.gz, tar.xz, tar.zst, zip ...) into dest, which must exist.
 * strip removes that many leading path components (entries left with no
 * name are skipped). Refuses, with ERR_INVALID and a message naming the
 * entry: absolute paths, "..", symlinks whose target is absolute or leaves
 * dest, hard links, device nodes, fifos and sockets; refuses with
 * ERR_LIMIT archives past the limits (lim may be NULL for defaults). Never
 * writes outside dest and never follows a symlink it extracted. On error
 * dest may hold a partial tree: the caller removes it.
 */
int bundle_extract_file(const char *path, const char *dest, int strip,
			const struct bundle_limits *lim);
int bundle_extract_mem(const void *data, size_t len, const char *dest, int strip,
		       const struct bundle_limits *lim);

/*
 * Reads the regular file name ("state.json"; a leading "./" in the archive
 * is ignored) of the archive at path into out, whose cap bounds it
 * (ERR_LIMIT past it), without writing anything to disk. ERR_NOTFOUND when
 * the archive has no such entry. Entries before it are skipped, which
 * decompresses them: at most the default limits' entries and bytes.
 */
struct buf;
int bundle_read_entry(struct buf *out, const char *path, const char *name);

#endif
