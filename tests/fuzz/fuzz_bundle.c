/*
 * fuzz_bundle.c - bundle_extract_mem() of arbitrary bytes into a sandbox.
 *
 * Each process makes one sandbox, $TMPDIR/fuzz-bundle-XXXXXX, and extracts
 * every input into sandbox/up1/up2/dest, so that a write that escapes dest
 * by up to three levels lands somewhere we look. After each input:
 *
 *   - sandbox, up1 and up2 still hold exactly one directory each;
 *   - dest holds only directories, regular files and symlinks, nothing
 *     setuid, setgid or sticky; after a success, directories are 0755 and
 *     files 0644 or 0755 (after a failure the last file may still be 0600);
 *   - no symlink in dest is absolute, and resolving any of them (through
 *     the other links) never climbs above dest;
 *   - regular files stay within the limits below, in bytes and in count;
 *   - a failure has a known code and a message;
 *   - fs_rm_rf() removes dest.
 *
 * The strip count is size % 3, so that mutations explore it too.
 *
 * The soft RLIMIT_NOFILE is lowered to 1024, the default a daemon starts
 * with, so that trees too deep to remove under it are caught here rather
 * than in production.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "error.h"
#include "fsutil.h"
#include "fuzz.h"

#define MAX_TOTAL (UINT64_C(4) << 20)
#define MAX_ENTRIES 1000
#define MAX_ENTRY_SIZE (UINT64_C(1) << 20)
#define NOFILE_LIMIT 1024
#define LINK_BUDGET 40 /* the kernel's MAXSYMLINKS */

static const char *const levels[] = { "up1", "up2", "dest" };

static char *sandbox; /* $TMPDIR/fuzz-bundle-XXXXXX, made once per process */
static char *dest;    /* sandbox/up1/up2/dest */

struct tally {
	uint64_t bytes;
	uint64_t nondirs;
	int partial; /* extraction failed: files may lack their final mode */
};

static void sandbox_remove(void)
{
	if (sandbox)
		fs_rm_rf(sandbox);
	free(sandbox);
	free(dest);
	sandbox = dest = NULL;
}

static void sandbox_init(void)
{
	const char *tmp = getenv("TMPDIR");
	struct rlimit rl;
	char *p;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > NOFILE_LIMIT) {
		rl.rlim_cur = NOFILE_LIMIT;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (fs_mkdtemp(&sandbox, tmp && *tmp ? tmp : "/tmp", "fuzz-bundle") < 0)
		fuzz_fail("cannot make the sandbox: %s", err_msg());
	dest = strdup(sandbox);
	for (size_t i = 0; dest && i < sizeof(levels) / sizeof(*levels); i++) {
		p = fs_join(dest, levels[i]);
		free(dest);
		dest = p;
	}
	if (!dest)
		fuzz_fail("out of memory");
	atexit(sandbox_remove);
}

/* Reports a tree fs_rm_rf() cannot remove, after removing it with the limit raised. */
static _Noreturn void fail_rm_rf(void)
{
	char msg[512];
	struct rlimit rl;

	snprintf(msg, sizeof(msg), "%s", err_msg());
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sandbox_remove();
	fuzz_fail("fs_rm_rf cannot remove what bundle_extract_mem made: %s", msg);
}

/* sandbox, up1 and up2 must each hold exactly their one child, a real directory. */
static void check_sandbox(void)
{
	char path[PATH_MAX];
	size_t len = strlen(sandbox);
	struct dirent *e;
	struct stat st;

	if (len >= sizeof(path))
		fuzz_fail("sandbox path too long");
	memcpy(path, sandbox, len + 1);
	for (size_t i = 0; i < sizeof(levels) / sizeof(*levels); i++) {
		DIR *d = opendir(path);
		int n = 0;

		if (!d)
			fuzz_fail("cannot open '%s': %s", path, strerror(errno));
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (strcmp(e->d_name, levels[i]))
				fuzz_fail("extraction wrote outside dest: '%s/%s'", path, e->d_name);
			n++;
		}
		closedir(d);
		if (n != 1)
			fuzz_fail("'%s/%s' vanished", path, levels[i]);
		len += (size_t)snprintf(path + len, sizeof(path) - len, "/%s", levels[i]);
		if (len >= sizeof(path) || lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			fuzz_fail("'%s' is no longer a directory", path);
	}
}

/* Appends "/name" (or "name" to an empty path); 0 when it does not fit. */
static int path_push(char *path, size_t size, const char *name, size_t nlen)
{
	size_t len = strlen(path), sep = len > 0;

	if (len + sep + nlen >= size)
		return 0;
	if (sep)
		path[len] = '/';
	memcpy(path + len + sep, name, nlen);
	path[len + sep + nlen] = '\0';
	return 1;
}

static void path_pop(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash)
		*slash = '\0';
	else
		path[0] = '\0';
}

/*
 * Whether resolving the symlink at dir/... with target target, as the
 * kernel would (through other links, at most LINK_BUDGET of them), can climb
 * above dest. Missing components are taken lexically, which only errs
 * toward reporting an escape. Paths are relative to destfd.
 */
static int link_escapes(int destfd, const char *dir, const char *target)
{
	char cur[PATH_MAX], rest[2 * PATH_MAX], next[2 * PATH_MAX], link[PATH_MAX];
	int budget = LINK_BUDGET;
	struct stat st;
	const char *p;

	if (strlen(dir) >= sizeof(cur) || strlen(target) >= sizeof(rest))
		return 0; /* the kernel would say ENAMETOOLONG */
	memcpy(cur, dir, strlen(dir) + 1);
	memcpy(rest, target, strlen(target) + 1);
	p = rest;
	while (*p) {
		size_t n = strcspn(p, "/");
		const char *name = p;

		p += n;
		p += *p == '/';
		if (n == 0 || (n == 1 && name[0] == '.'))
			continue;
		if (n == 2 && name[0] == '.' && name[1] == '.') {
			if (!cur[0])
				return 1;
			path_pop(cur);
			continue;
		}
		if (!path_push(cur, sizeof(cur), name, n))
			return 0;
		if (fstatat(destfd, cur, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
			continue;
		if (--budget == 0)
			return 0; /* ELOOP */
		ssize_t len = readlinkat(destfd, cur, link, sizeof(link) - 1);
		if (len <= 0)
			return 0;
		link[len] = '\0';
		if (link[0] == '/')
			return 1;
		path_pop(cur);
		if ((size_t)snprintf(next, sizeof(next), "%s/%s", link, p) >= sizeof(next))
			return 0;
		memcpy(rest, next, strlen(next) + 1);
		p = rest;
	}
	return 0;
}

/* The symlink rel: relative, and not a way out (kept off check_tree's frames). */
static void check_link(int destfd, const char *rel)
{
	char target[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlinkat(destfd, rel, target, sizeof(target) - 1);

	if (n < 0)
		fuzz_fail("cannot read link '%s': %s", rel, strerror(errno));
	target[n] = '\0';
	if (target[0] == '/')
		fuzz_fail("symlink '%s' has absolute target '%s'", rel, target);
	memcpy(dir, rel, strlen(rel) + 1);
	path_pop(dir);
	if (link_escapes(destfd, dir, target))
		fuzz_fail("symlink '%s' -> '%s' leads out of dest", rel, target);
}

/* Reads the names in directory rel (relative to destfd), closing it before returning. */
static char **list_dir(int destfd, const char *rel, size_t *count)
{
	int fd = openat(destfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char **names = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd)))
		fuzz_fail("cannot read extracted directory '%s': %s", rel, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == alloc) {
			alloc = 2 * alloc + 16;
			names = realloc(names, alloc * sizeof(*names));
			if (!names)
				fuzz_fail("out of memory");
		}
		if (!(names[n++] = strdup(e->d_name)))
			fuzz_fail("out of memory");
	}
	closedir(d);
	*count = n;
	return names;
}

/*
 * Checks every entry below rel. Holds no descriptor across the recursion:
 * a hostile archive may nest directories two thousand deep.
 */
static void check_tree(int destfd, char *rel, size_t size, struct tally *t)
{
	size_t n, len = strlen(rel);
	char **names = list_dir(destfd, rel, &n);
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (!path_push(rel, size, names[i], strlen(names[i])))
			fuzz_fail("extracted path too long below '%s'", rel);
		if (fstatat(destfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
			fuzz_fail("cannot stat extracted '%s': %s", rel, strerror(errno));
		if (st.st_mode & (S_ISUID | S_ISGID | S_ISVTX))
			fuzz_fail("'%s' has mode %o", rel, (unsigned)st.st_mode);
		if (S_ISDIR(st.st_mode)) {
			if ((st.st_mode & 07777) != 0755 && !t->partial)
				fuzz_fail("directory '%s' has mode %o", rel, (unsigned)(st.st_mode & 07777));
			check_tree(destfd, rel, size, t);
		} else if (S_ISREG(st.st_mode)) {
			if ((st.st_mode & 07777) != 0644 && (st.st_mode & 07777) != 0755 && !t->partial)
				fuzz_fail("file '%s' has mode %o", rel, (unsigned)(st.st_mode & 07777));
			if ((uint64_t)st.st_size > MAX_ENTRY_SIZE)
				fuzz_fail("file '%s' has %lld bytes, over the entry limit", rel,
					  (long long)st.st_size);
			t->bytes += (uint64_t)st.st_size;
			t->nondirs++;
		} else if (S_ISLNK(st.st_mode)) {
			check_link(destfd, rel);
			t->nondirs++;
		} else {
			fuzz_fail("'%s' has file type %o", rel, (unsigned)(st.st_mode & S_IFMT));
		}
		rel[len] = '\0';
		free(names[i]);
	}
	free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct bundle_limits lim = {
		.max_total = MAX_TOTAL, .max_entries = MAX_ENTRIES, .max_entry_size = MAX_ENTRY_SIZE,
	};
	struct tally t = { 0 };
	char rel[PATH_MAX] = "";
	int r, destfd;

	if (!sandbox)
		sandbox_init();
	if (mkdir(dest, 0700) < 0 && fs_mkdir_p(dest, 0700) < 0)
		fuzz_fail("cannot make '%s': %s", dest, err_msg());
	err_clear();
	r = bundle_extract_mem(data, size, dest, (int)(size % 3), &lim);
	fuzz_report(r);
	if (r > 0 || (r < 0 && r != ERR_INVALID && r != ERR_LIMIT && r != ERR_IO && r != ERR_NOMEM))
		fuzz_fail("unexpected result %d: %s", r, err_msg());
	if (r < 0 && !fuzz_has_message())
		fuzz_fail("error %d without a message", r);

	t.partial = r < 0;
	check_sandbox();
	destfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (destfd < 0)
		fuzz_fail("cannot open '%s': %s", dest, strerror(errno));
	check_tree(destfd, rel, sizeof(rel), &t);
	close(destfd);
	if (t.bytes > MAX_TOTAL)
		fuzz_fail("%llu bytes extracted, over the limit", (unsigned long long)t.bytes);
	if (t.nondirs > MAX_ENTRIES)
		fuzz_fail("%llu files and links extracted, over the limit",
			  (unsigned long long)t.nondirs);

	if (fs_rm_rf(dest) < 0)
		fail_rm_rf();
	if (fs_exists(dest))
		fuzz_fail("'%s' survived fs_rm_rf", dest);
	return 0;
}
