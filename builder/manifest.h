/* manifest.h - the manifest v1: parsing, validation and the object model. */
#ifndef DISPATCH_MANIFEST_H
#define DISPATCH_MANIFEST_H

#include <stddef.h>

#include <jansson.h>

#define MANIFEST_MAX_BYTES (1u << 20)
#define MANIFEST_MAX_OBJECTS 1000
#define MANIFEST_MAX_INSTANCES 100000

enum source_kind { SOURCE_PATH, SOURCE_GIT, SOURCE_ARCHIVE };

struct manifest_source {
	enum source_kind kind;
	char *path;    /* SOURCE_PATH: absolute directory */
	char *git;     /* SOURCE_GIT: URL or absolute path of a repository */
	char *rev;     /* SOURCE_GIT: commit, tag or branch */
	char *archive; /* SOURCE_ARCHIVE: absolute path or http(s) URL */
	char *sha256;  /* SOURCE_ARCHIVE: expected digest of the archive */
	int strip;     /* SOURCE_ARCHIVE: leading path components removed */
};

enum recipe_kind { RECIPE_C, RECIPE_MAKE, RECIPE_CMAKE, RECIPE_COMMAND };

/* A name=value pair (make variables, cmake options). */
struct manifest_kv {
	char *key;
	char *value;
};

/* String vectors are NULL-terminated and never NULL themselves. */
struct manifest_build {
	enum recipe_kind recipe;
	char **sources, **include, **defines, **cflags, **ldflags, **libs; /* c */
	char *dir;                  /* make, cmake: subdirectory, or NULL */
	char *target;               /* make, cmake: target to build, or NULL */
	struct manifest_kv *vars;   /* make: vars, cmake: options */
	size_t nvars;
	char **argv;                /* command */
	char *output;               /* make, cmake, command: the built file */
	int static_link;            /* default 1 */
};

struct manifest_object {
	char *name;
	struct manifest_source source;
	struct manifest_build build;
	char *entry;       /* the executable's name inside the artifact */
	char **args;
	int instances;
	json_t *state;     /* borrowed from the manifest's document, or NULL */
	char **targets;    /* "*", "isa" or "isa:level" */
	int sdk;           /* link the object SDK (sdk/dispatch.h) */
	int fork;          /* "fork": N — the instances are forks 0..N-1 of one start */
	int checkpoint_s;  /* "checkpoint": {"interval_s": S}, 0: none */
	char *build_json;  /* canonical JSON of what determines the build */
};

struct manifest {
	char *name;
	char *dir;         /* absolute directory the manifest's paths are relative to */
	struct manifest_object *objects;
	size_t nobjects;
	json_t *doc;       /* the whole document (owned) */
};

/*
 * Parses and validates a manifest. Every error names the JSON path and the
 * problem, e.g. "objects[1].build.sources: expected an array of strings".
 * Relative paths are resolved against base_dir. *out is new: manifest_free().
 */
int manifest_load_file(struct manifest **out, const char *path);
int manifest_load_string(struct manifest **out, const char *text, size_t len,
			 const char *base_dir, const char *what);
void manifest_free(struct manifest *m);

const char *manifest_recipe_name(enum recipe_kind k);

/* Whether name is a valid object/entry name: [A-Za-z0-9][A-Za-z0-9._+-]{0,63}. */
int manifest_name_is_valid(const char *name);

#endif
