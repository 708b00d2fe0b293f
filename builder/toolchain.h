/* toolchain.h - compilation targets: ISAs, their compilers and tuning levels. */
#ifndef DISPATCH_TOOLCHAIN_H
#define DISPATCH_TOOLCHAIN_H

#include <stddef.h>

#include "digest.h"

/*
 * One JSON file per ISA in the toolchains directory (see toolchains/ and
 * docs/toolchains.md). A target is "isa:level"; a bare "isa" means the
 * ISA's first level, its baseline.
 */
struct toolchain_level {
	char *name;
	char **cflags; /* NULL-terminated */
};

struct toolchain {
	char *isa;
	char *triple;
	char *cc;          /* compiler name or path */
	char *package;     /* the Debian package that provides cc */
	char *qemu;        /* qemu-user binary name for running foreign code */
	char *endian;      /* "little" or "big" */
	int bits;
	int elf_machine;   /* e_machine of the binaries it produces */
	struct toolchain_level *levels;
	size_t nlevels;
	char *file;        /* the JSON file it was read from */
	digest_hex file_digest;

	/* Filled by toolchain_probe(). */
	int probed;
	int available;
	char *cc_path;     /* resolved compiler */
	char *version;     /* gcc -dumpfullversion */
	digest_hex identity; /* the compiler's identity: version and binaries */
	char *why;         /* why it is unavailable */
};

struct toolchain_set {
	struct toolchain *items;
	size_t count;
	char *dir;
};

/* Reads every *.json in dir, sorted by ISA. *out is new: toolchain_set_free(). */
int toolchain_set_load(struct toolchain_set **out, const char *dir);
void toolchain_set_free(struct toolchain_set *s);

/* The directory to read toolchains from: $DISPATCH_TOOLCHAINS, installed, or source tree. */
const char *toolchain_default_dir(void);

struct toolchain *toolchain_set_find(const struct toolchain_set *s, const char *isa);

/*
 * Resolves "isa" or "isa:level". ERR_NOTFOUND with a message listing what
 * exists when the ISA or level is unknown.
 */
int toolchain_resolve(struct toolchain **tc, const struct toolchain_level **lvl,
		      const struct toolchain_set *s, const char *spec);

/*
 * Finds the compiler and computes its identity: its version, target
 * triple and the SHA-256 of the driver and cc1. The result is remembered
 * in cache_dir/toolchains.json keyed by the binaries' size, mtime and
 * inode, so that a warm build only stats them. cache_dir may be NULL.
 * An unusable compiler is not an error: tc->available is 0, tc->why says why.
 * With may_compute 0 only a remembered identity is taken (no compiler runs,
 * nothing is hashed): when there is none, tc->available and tc->why stay
 * unset and a later probe may compute it.
 */
int toolchain_probe(struct toolchain *tc, const char *cache_dir, int may_compute);

/* Builds the "isa:level" name into buf. */
const char *toolchain_target_name(char *buf, size_t len, const struct toolchain *tc,
				  const struct toolchain_level *lvl);

/* Whether target "isa:level" is selected by a manifest's targets entry. */
int toolchain_target_matches(const char *pattern, const struct toolchain *tc,
			     const struct toolchain_level *lvl);

#endif
