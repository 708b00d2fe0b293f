/* recipe.c - the c, make, cmake and command recipes. */
#include "recipe.h"

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "fsutil.h"
#include "proc.h"

#define ARGV_MAX 8192

/* A growable NULL-terminated vector of owned strings. */
struct strv {
	char **v;
	size_t n, cap;
};

static int strv_add(struct strv *s, const char *str)
{
	if (s->n + 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 32;
		char **nv;
		if (nc > ARGV_MAX)
			return err_set(ERR_LIMIT, "more than %d arguments", ARGV_MAX);
		nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			return err_set(ERR_NOMEM, "out of memory");
		s->v = nv;
		s->cap = nc;
	}
	if (!(s->v[s->n] = strdup(str)))
		return err_set(ERR_NOMEM, "out of memory");
	s->v[++s->n] = NULL;
	return 0;
}

static int strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int strv_addf(struct strv *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT(65536);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (r == 0)
		r = strv_add(s, buf_str(&b));
	buf_release(&b);
	return r;
}

static int strv_addv(struct strv *s, char *const *items)
{
	int r = 0;

	for (; *items && r == 0; items++)
		r = strv_add(s, *items);
	return r;
}

static void strv_release(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* The triple-prefixed binutils tool, or the plain one. */
static char *tool(const struct toolchain *tc, const char *name)
{
	char pref[128];
	char *p;

	snprintf(pref, sizeof(pref), "%s-%s", tc->triple, name);
	p = proc_which(pref, NULL);
	return p ? p : strdup(name);
}

/* "cc -march=... " : the level's flags ride with CC so every build system keeps them. */
static int cc_line(struct buf *b, const struct recipe_ctx *c)
{
	int r = buf_puts(b, c->tc->cc_path);

	for (char **f = c->lvl->cflags; r == 0 && *f; f++)
		r = buf_printf(b, " %s", *f);
	return r;
}

static int make_env(struct strv *env, const struct recipe_ctx *c)
{
	struct buf cc = BUF_INIT(4096);
	char *ar = tool(c->tc, "ar"), *ranlib = tool(c->tc, "ranlib"), *strip = tool(c->tc, "strip");
	int r;

	if ((r = cc_line(&cc, c)) < 0)
		goto out;
	if ((r = strv_add(env, "PATH=/usr/local/bin:/usr/bin:/bin")) < 0 ||
	    (r = strv_add(env, "LC_ALL=C")) < 0 || (r = strv_add(env, "SOURCE_DATE_EPOCH=0")) < 0 ||
	    (r = strv_addf(env, "HOME=%s", c->work_dir)) < 0 ||
	    (r = strv_addf(env, "TMPDIR=%s", c->work_dir)) < 0 ||
	    (r = strv_addf(env, "CC=%s", buf_str(&cc))) < 0 ||
	    (r = strv_addf(env, "DISPATCH_CC=%s", buf_str(&cc))) < 0 ||
	    (r = strv_addf(env, "AR=%s", ar ? ar : "ar")) < 0 ||
	    (r = strv_addf(env, "DISPATCH_AR=%s", ar ? ar : "ar")) < 0 ||
	    (r = strv_addf(env, "RANLIB=%s", ranlib ? ranlib : "ranlib")) < 0 ||
	    (r = strv_addf(env, "DISPATCH_RANLIB=%s", ranlib ? ranlib : "ranlib")) < 0 ||
	    (r = strv_addf(env, "STRIP=%s", strip ? strip : "strip")) < 0 ||
	    (r = strv_addf(env, "DISPATCH_ISA=%s", c->tc->isa)) < 0 ||
	    (r = strv_addf(env, "DISPATCH_LEVEL=%s", c->lvl->name)) < 0 ||
	    (r = strv_addf(env, "DISPATCH_TRIPLE=%s", c->tc->triple)) < 0)
		goto out;
	if (c->obj->build.static_link && (r = strv_add(env, "LDFLAGS=-static")) < 0)
		goto out;
	if (c->obj->sdk && c->sdk_dir &&
	    ((r = strv_addf(env, "DISPATCH_SDK_DIR=%s", c->sdk_dir)) < 0 ||
	     (r = strv_addf(env, "DISPATCH_SDK_CFLAGS=-I%s", c->sdk_dir)) < 0 ||
	     (r = strv_addf(env, "DISPATCH_SDK_SRC=%s/dispatch.c", c->sdk_dir)) < 0))
		goto out;
out:
	free(ar);
	free(ranlib);
	free(strip);
	buf_release(&cc);
	return r;
}

static int run_step(const struct recipe_ctx *c, const char *step, char **argv, char **envp, const char *cwd)
{
	struct proc_opts o = {
		.argv = (const char *const *)argv,
		.envp = (const char *const *)envp,
		.cwd = cwd,
		.output_path = c->log_path,
		.output_append = 1,
		.net_isolate = 1,
		.uid = c->uid,
		.gid = c->gid,
		.timeout_ms = c->timeout_s * 1000u,
		.max_fsize = 4ULL << 30,
	};
	struct proc_result res;
	char why[128];
	FILE *log;
	int r;

	/* The log starts each step with the command, like make does. */
	log = fopen(c->log_path, "ae");
	if (log) {
		fprintf(log, "$");
		for (char **a = argv; *a; a++)
			fprintf(log, " %s", *a);
		fprintf(log, "\n");
		fclose(log);
	}
	r = proc_run(&res, &o);
	if (r < 0)
		return err_prefix(r, "%s", step);
	if (res.timed_out || res.signaled || res.exit_code != 0)
		return err_set(ERR_CHILD, "%s failed: %s", step, proc_describe(&res, why, sizeof(why)));
	return 0;
}

/* Expands the listed sources (glob patterns allowed) inside the source tree. */
static int add_sources(struct strv *argv, const struct recipe_ctx *c)
{
	int r = 0;

	for (char **s = c->obj->build.sources; *s && r == 0; s++) {
		char *pat = fs_join(c->src_dir, *s);
		glob_t g;
		int gr;

		if (!pat)
			return err_set(ERR_NOMEM, "out of memory");
		gr = glob(pat, GLOB_NOSORT | GLOB_NOCHECK, NULL, &g);
		if (gr == 0 && g.gl_pathc == 1 && !strcmp(g.gl_pathv[0], pat) && access(pat, F_OK) != 0)
			r = err_set(ERR_NOTFOUND, "source file '%s' not found in the source tree", *s);
		else if (gr != 0)
			r = err_set(ERR_NOTFOUND, "no source file matches '%s'", *s);
		for (size_t i = 0; r == 0 && gr == 0 && i < g.gl_pathc; i++)
			r = strv_add(argv, g.gl_pathv[i]);
		if (gr == 0)
			globfree(&g);
		free(pat);
	}
	return r;
}

static int build_c(char **exe, const struct recipe_ctx *c, struct strv *env)
{
	const struct manifest_build *b = &c->obj->build;
	struct strv argv = { 0 };
	char *out = fs_join(c->work_dir, c->obj->entry);
	int r;

	if (!out)
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = strv_add(&argv, c->tc->cc_path)) < 0 || (r = strv_addv(&argv, c->lvl->cflags)) < 0 ||
	    (r = strv_add(&argv, "-O2")) < 0 ||
	    (r = strv_addf(&argv, "-ffile-prefix-map=%s=.", c->src_dir)) < 0 ||
	    (r = strv_addv(&argv, b->cflags)) < 0)
		goto out;
	for (char **i = b->include; r == 0 && *i; i++)
		r = strv_addf(&argv, "-I%s/%s", c->src_dir, *i);
	for (char **d = b->defines; r == 0 && *d; d++)
		r = strv_addf(&argv, "-D%s", *d);
	if (r == 0 && c->obj->sdk) {
		if (!c->sdk_dir)
			r = err_set(ERR_NOTFOUND, "the object SDK is not installed");
		else if ((r = strv_addf(&argv, "-I%s", c->sdk_dir)) == 0)
			r = strv_addf(&argv, "%s/dispatch.c", c->sdk_dir);
	}
	if (r < 0 || (r = add_sources(&argv, c)) < 0 || (r = strv_add(&argv, "-o")) < 0 ||
	    (r = strv_add(&argv, out)) < 0)
		goto out;
	if (b->static_link && (r = strv_add(&argv, "-static")) < 0)
		goto out;
	if ((r = strv_addv(&argv, b->ldflags)) < 0)
		goto out;
	for (char **l = b->libs; r == 0 && *l; l++)
		r = strv_addf(&argv, "-l%s", *l);
	if (r < 0 || (r = run_step(c, "compile", argv.v, env->v, c->work_dir)) < 0)
		goto out;
	*exe = out;
	out = NULL;
out:
	free(out);
	strv_release(&argv);
	return r;
}

/* make, cmake and command recipes write into the tree: give them a copy. */
static int own_tree(char **tree, const struct recipe_ctx *c)
{
	char *t = fs_join(c->work_dir, "tree");
	int r;

	if (!t)
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = fs_copy_tree(c->src_dir, t)) < 0) {
		free(t);
		return r;
	}
	*tree = t;
	return 0;
}

static int build_make(char **exe, const struct recipe_ctx *c, struct strv *env, const char *tree)
{
	const struct manifest_build *b = &c->obj->build;
	struct strv argv = { 0 };
	struct buf cc = BUF_INIT(4096);
	char *dir = b->dir ? fs_join(tree, b->dir) : strdup(tree);
	int r;

	if (!dir)
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = cc_line(&cc, c)) < 0 || (r = strv_add(&argv, "make")) < 0 ||
	    (r = strv_add(&argv, "-C")) < 0 || (r = strv_add(&argv, dir)) < 0 ||
	    (b->target && (r = strv_add(&argv, b->target)) < 0) ||
	    (r = strv_addf(&argv, "CC=%s", buf_str(&cc))) < 0)
		goto out;
	for (size_t i = 0; r == 0 && i < b->nvars; i++)
		r = strv_addf(&argv, "%s=%s", b->vars[i].key, b->vars[i].value);
	if (r == 0)
		r = run_step(c, "make", argv.v, env->v, dir);
	if (r == 0 && !(*exe = fs_join(tree, b->output)))
		r = err_set(ERR_NOMEM, "out of memory");
out:
	free(dir);
	buf_release(&cc);
	strv_release(&argv);
	return r;
}

static int build_cmake(char **exe, const struct recipe_ctx *c, struct strv *env, const char *tree)
{
	const struct manifest_build *b = &c->obj->build;
	struct strv conf = { 0 }, bld = { 0 };
	struct buf flags = BUF_INIT(4096);
	char *src = b->dir ? fs_join(tree, b->dir) : strdup(tree);
	char *out = fs_join(c->work_dir, "cmake-build");
	int r = 0;

	if (!src || !out) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	for (char **f = c->lvl->cflags; r == 0 && *f; f++)
		r = buf_printf(&flags, "%s%s", flags.len ? " " : "", *f);
	if (r < 0 || (r = strv_add(&conf, "cmake")) < 0 || (r = strv_addf(&conf, "-S%s", src)) < 0 ||
	    (r = strv_addf(&conf, "-B%s", out)) < 0 || (r = strv_add(&conf, "-DCMAKE_SYSTEM_NAME=Linux")) < 0 ||
	    (r = strv_addf(&conf, "-DCMAKE_SYSTEM_PROCESSOR=%s", c->tc->isa)) < 0 ||
	    (r = strv_addf(&conf, "-DCMAKE_C_COMPILER=%s", c->tc->cc_path)) < 0 ||
	    (r = strv_addf(&conf, "-DCMAKE_C_FLAGS=%s", buf_str(&flags))) < 0 ||
	    (r = strv_add(&conf, "-DCMAKE_BUILD_TYPE=Release")) < 0 ||
	    (b->static_link && (r = strv_add(&conf, "-DCMAKE_EXE_LINKER_FLAGS=-static")) < 0))
		goto out;
	for (size_t i = 0; r == 0 && i < b->nvars; i++)
		r = strv_addf(&conf, "-D%s=%s", b->vars[i].key, b->vars[i].value);
	if (r < 0 || (r = run_step(c, "cmake configure", conf.v, env->v, c->work_dir)) < 0)
		goto out;
	if ((r = strv_add(&bld, "cmake")) < 0 || (r = strv_add(&bld, "--build")) < 0 ||
	    (r = strv_add(&bld, out)) < 0 || (r = strv_add(&bld, "-j1")) < 0 ||
	    (b->target && ((r = strv_add(&bld, "--target")) < 0 || (r = strv_add(&bld, b->target)) < 0)))
		goto out;
	if ((r = run_step(c, "cmake build", bld.v, env->v, c->work_dir)) < 0)
		goto out;
	if (!(*exe = fs_join(out, b->output)))
		r = err_set(ERR_NOMEM, "out of memory");
out:
	free(src);
	free(out);
	buf_release(&flags);
	strv_release(&conf);
	strv_release(&bld);
	return r;
}

static int build_command(char **exe, const struct recipe_ctx *c, struct strv *env, const char *tree)
{
	struct strv argv = { 0 };
	int r;

	if ((r = strv_addv(&argv, c->obj->build.argv)) < 0 ||
	    (r = run_step(c, "command", argv.v, env->v, tree)) < 0)
		goto out;
	if (!(*exe = fs_join(tree, c->obj->build.output)))
		r = err_set(ERR_NOMEM, "out of memory");
out:
	strv_release(&argv);
	return r;
}

int recipe_build(char **exe, const struct recipe_ctx *c)
{
	struct strv env = { 0 };
	char *tree = NULL, *built = NULL;
	int r;

	if ((r = make_env(&env, c)) < 0)
		goto out;
	if (c->obj->build.recipe != RECIPE_C && (r = own_tree(&tree, c)) < 0)
		goto out;
	if (tree && c->uid && (r = fs_chown_tree(tree, c->uid, c->gid)) < 0)
		goto out;
	switch (c->obj->build.recipe) {
	case RECIPE_C: r = build_c(&built, c, &env); break;
	case RECIPE_MAKE: r = build_make(&built, c, &env, tree); break;
	case RECIPE_CMAKE: r = build_cmake(&built, c, &env, tree); break;
	case RECIPE_COMMAND: r = build_command(&built, c, &env, tree); break;
	}
	if (r < 0)
		goto out;
	if (access(built, F_OK) != 0) {
		r = err_set(ERR_NOTFOUND, "the build succeeded but did not produce '%s'",
			    c->obj->build.recipe == RECIPE_C ? c->obj->entry : c->obj->build.output);
		goto out;
	}
	*exe = built;
	built = NULL;
out:
	free(built);
	free(tree);
	strv_release(&env);
	return r;
}
