/* bundle_job.h - the job bundle of POST /v1/jobs: a manifest and its local sources in one tar.zst. */
#ifndef DISPATCH_CLI_BUNDLE_JOB_H
#define DISPATCH_CLI_BUNDLE_JOB_H

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_JOB_MAX (256ull << 20)       /* dispatchd refuses larger job bundles */
#define BUNDLE_JOB_MAX_FILES 100000ull      /* entries of the sources, as bundle_extract_file allows */
#define BUNDLE_JOB_MAX_BYTES (1ull << 30)   /* bytes of the sources before compression */
#define BUNDLE_JOB_MAX_DEPTH 128            /* directory nesting in a source tree */

struct bundle_job_info {
	size_t objects;
	uint64_t files;  /* files and symlinks copied from path sources */
	uint64_t bytes;  /* their bytes, with the local archives */
	uint64_t size;   /* the bundle's size */
};

/*
 * Validates the manifest at manifest_path with manifest_load_file() (its
 * errors name the JSON path) and writes the job bundle to out_path: a
 * deterministic tar.zst (bundle_pack_dir()) holding
 *
 *   manifest.json                  the manifest with its sources rewritten:
 *   sources/<object>/...           {"path": DIR} -> {"path": "sources/<object>"},
 *                                  DIR copied without its .git directories;
 *   archives/<object>/<file>       a local {"archive": FILE} ->
 *                                  {"archive": "archives/<object>/<file>"},
 *                                  FILE checked against its "sha256" first.
 *
 * Archive URLs and git URLs are kept. A git source that is a local path
 * becomes absolute: only a dispatcher that sees the same file system can
 * use it. A symlink in a source tree must stay inside it (ERR_INVALID);
 * sockets and fifos are left out. The sources are bounded by
 * BUNDLE_JOB_MAX_FILES and BUNDLE_JOB_MAX_BYTES, the bundle by
 * BUNDLE_JOB_MAX (ERR_LIMIT).
 *
 * The tree is staged in a temporary directory under tmp_base (NULL:
 * $TMPDIR, else /tmp), removed before returning. info (may be NULL) is
 * written on success.
 */
int bundle_job_create(struct bundle_job_info *info, const char *out_path, const char *manifest_path,
		      const char *tmp_base);

#endif
