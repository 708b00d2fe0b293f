/* recipe.h - turning a build recipe into sandboxed compiler runs. */
#ifndef DISPATCH_RECIPE_H
#define DISPATCH_RECIPE_H

#include <sys/types.h>

#include "manifest.h"
#include "toolchain.h"

struct recipe_ctx {
	const struct manifest_object *obj;
	const struct toolchain *tc;
	const struct toolchain_level *lvl;
	const char *src_dir;   /* the materialized source tree; never written */
	const char *work_dir;  /* this build's own writable directory */
	const char *log_path;  /* every step's output is appended here */
	const char *sdk_dir;   /* the object SDK's sources, when the object links it */
	unsigned timeout_s;
	uid_t uid;             /* when not 0, steps run as uid/gid */
	gid_t gid;
};

/*
 * Runs the recipe's steps, each in a sandboxed child (see proc.h) with
 * the toolchain in CC, AR, RANLIB, STRIP, and the target in DISPATCH_ISA,
 * DISPATCH_LEVEL, DISPATCH_TRIPLE; with the SDK, DISPATCH_SDK_DIR,
 * DISPATCH_SDK_CFLAGS and DISPATCH_SDK_SRC (the c recipe adds them itself). On success *exe is the path of the
 * built executable (new string). On failure the message names the step.
 */
int recipe_build(char **exe, const struct recipe_ctx *c);

#endif
