/*
 * fuzz_toolchain.c - toolchain_set_load() and toolchain_resolve().
 *
 * The input is a target spec, a newline, then a toolchain JSON file:
 *
 *   x86_64:v2
 *   {"isa": "x86_64", ...}
 *
 * The file is written to a per-process directory and loaded as a set of
 * one. A loaded toolchain must have every field toolchain.h describes; a
 * spec that resolves must match its target, and the target's name must
 * resolve back to the same ISA and level name. Compilers are not probed.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "fuzz.h"
#include "toolchain.h"

#define SPEC_MAX 256

static char *dir;  /* $TMPDIR/fuzz-toolchain-XXXXXX */
static char *file; /* dir/t.json */

static void dir_remove(void)
{
	if (dir)
		fs_rm_rf(dir);
	free(dir);
	free(file);
	dir = file = NULL;
}

static void dir_init(void)
{
	const char *tmp = getenv("TMPDIR");

	if (fs_mkdtemp(&dir, tmp && *tmp ? tmp : "/tmp", "fuzz-toolchain") < 0)
		fuzz_fail("cannot make a directory: %s", err_msg());
	if (!(file = fs_join(dir, "t.json")))
		fuzz_fail("out of memory");
	atexit(dir_remove);
}

/*
 * Replaces the one file of the set. Unlinks rather than truncates: ext4
 * flushes a file truncated and rewritten at close, which costs 90% of the
 * speed.
 */
static void write_file(const uint8_t *data, size_t size)
{
	int fd;

	if (unlink(file) < 0 && errno != ENOENT)
		fuzz_fail("cannot remove '%s': %s", file, strerror(errno));
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		fuzz_fail("cannot create '%s': %s", file, strerror(errno));
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fuzz_fail("cannot write '%s': %s", file, strerror(errno));
		data += n;
		size -= (size_t)n;
	}
	close(fd);
}

static void check_set(const struct toolchain_set *s)
{
	const struct toolchain *tc = &s->items[0];

	if (s->count != 1)
		fuzz_fail("%zu toolchains loaded from one file", s->count);
	if (!tc->isa[0] || !tc->triple[0] || !tc->cc[0] || !tc->package[0] || !tc->qemu[0])
		fuzz_fail("empty string field accepted");
	if (strcmp(tc->endian, "little") && strcmp(tc->endian, "big"))
		fuzz_fail("endian '%s' accepted", tc->endian);
	if ((tc->bits != 32 && tc->bits != 64) || tc->elf_machine <= 0)
		fuzz_fail("bits %d, elf_machine %d accepted", tc->bits, tc->elf_machine);
	if (tc->nlevels == 0 || !tc->levels)
		fuzz_fail("no levels accepted");
	for (size_t i = 0; i < tc->nlevels; i++)
		if (!tc->levels[i].name || !tc->levels[i].name[0] || !tc->levels[i].cflags)
			fuzz_fail("levels[%zu]: missing name or cflags", i);
	if (!tc->file || strcmp(tc->file, file))
		fuzz_fail("file is '%s'", tc->file ? tc->file : "(null)");
}

static void check_resolve(const struct toolchain_set *s, const char *spec)
{
	struct toolchain *tc = NULL, *tc2 = NULL;
	const struct toolchain_level *lvl = NULL, *lvl2 = NULL;
	char name[SPEC_MAX];
	int r;

	err_clear();
	r = toolchain_resolve(&tc, &lvl, s, spec);
	if (r == ERR_NOTFOUND) {
		if (!fuzz_has_message())
			fuzz_fail("ERR_NOTFOUND without a message");
		return;
	}
	if (r != 0 || !tc || !lvl)
		fuzz_fail("toolchain_resolve('%s') returned %d: %s", spec, r, err_msg());
	if (lvl < tc->levels || lvl >= tc->levels + tc->nlevels)
		fuzz_fail("level outside its toolchain");
	if (!toolchain_target_matches(spec, tc, lvl))
		fuzz_fail("'%s' resolves to a target it does not match", spec);
	if (!toolchain_target_matches("*", tc, lvl))
		fuzz_fail("'*' does not match");
	if ((size_t)snprintf(name, sizeof(name), "%s:%s", tc->isa, lvl->name) >= sizeof(name))
		return;
	if (strcmp(toolchain_target_name(name, sizeof(name), tc, lvl), name))
		fuzz_fail("toolchain_target_name disagrees");
	if (toolchain_resolve(&tc2, &lvl2, s, name) < 0)
		fuzz_fail("target name '%s' does not resolve: %s", name, err_msg());
	if (tc2 != tc || strcmp(lvl2->name, lvl->name))
		fuzz_fail("'%s' resolves to another target", name);
	if (!toolchain_target_matches(name, tc, lvl))
		fuzz_fail("'%s' does not match itself", name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t slen = nl ? (size_t)(nl - data) : 0;
	struct toolchain_set *s = NULL;
	char spec[SPEC_MAX];
	int r;

	if (!nl || slen >= sizeof(spec))
		return 0;
	memcpy(spec, data, slen);
	spec[slen] = '\0';
	if (!dir)
		dir_init();
	write_file(nl + 1, size - slen - 1);

	err_clear();
	r = toolchain_set_load(&s, dir);
	fuzz_report(r);
	if (r < 0) {
		if (r != ERR_INVALID && r != ERR_LIMIT && r != ERR_NOMEM)
			fuzz_fail("unexpected error %d: %s", r, err_msg());
		if (s)
			fuzz_fail("*out written on failure");
		if (!fuzz_has_message())
			fuzz_fail("error %d without a message", r);
		return 0;
	}
	check_set(s);
	check_resolve(s, spec);
	toolchain_set_free(s);
	return 0;
}
