/* test_bundle.c - packing is deterministic; extraction refuses hostile archives. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "bundle.h"
#include "error.h"
#include "fsutil.h"

#define ARCHIVE_CAP (16u << 20)

/* Each test gets parent/dest; refusals must leave parent holding only dest. */
struct fixture {
	char *parent;
	char *dest;
};

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fs_mkdtemp(&f->parent, tmp && *tmp ? tmp : "/tmp", "bundle"), 0);
	f->dest = fs_join(f->parent, "dest");
	assert_non_null(f->dest);
	assert_int_equal(mkdir(f->dest, 0755), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	chmod(f->parent, 0755);
	fs_rm_rf(f->parent);
	free(f->parent);
	free(f->dest);
	free(f);
	return 0;
}

static char *path_in(const char *dir, const char *rel)
{
	char *p = fs_join(dir, rel);

	assert_non_null(p);
	return p;
}

static void write_file(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char *p = path_in(dir, rel);

	assert_int_equal(fs_write_atomic(p, text, strlen(text), mode), 0);
	free(p);
}

static void make_dir(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);

	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	free(p);
}

static void make_link(const char *dir, const char *rel, const char *target)
{
	char *p = path_in(dir, rel);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static void assert_file(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char *p = path_in(dir, rel);
	struct buf b = BUF_INIT(1 << 20);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
	assert_int_equal(fs_read_file(&b, p, 1 << 20), 0);
	assert_string_equal(buf_str(&b), text);
	buf_release(&b);
	free(p);
}

static void assert_link(const char *dir, const char *rel, const char *target)
{
	char *p = path_in(dir, rel);
	char got[256];
	ssize_t n = readlink(p, got, sizeof(got) - 1);

	assert_true(n >= 0);
	got[n] = '\0';
	assert_string_equal(got, target);
	free(p);
}

static void assert_missing(const char *dir, const char *rel)
{
	char *p = path_in(dir, rel);

	assert_false(fs_exists(p));
	free(p);
}

/* Nothing may appear next to dest: a refused archive wrote only inside it. */
static void assert_outside_clean(const struct fixture *f)
{
	DIR *d = opendir(f->parent);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		assert_string_equal(e->d_name, "dest");
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
	assert_false(fs_exists("/tmp/evil"));
}

static void assert_msg_has(const char *needle)
{
	if (!strstr(err_msg(), needle))
		fail_msg("message '%s' lacks '%s'", err_msg(), needle);
}

/* ---- archives built in memory, with whatever names and types a test wants ---- */

struct maker {
	struct archive *a;
	char *data;
	size_t len;
};

enum { MAKE_PAX, MAKE_PAX_GZIP, MAKE_ZIP, MAKE_CPIO };

static void maker_open(struct maker *m, int kind)
{
	m->a = archive_write_new();
	m->data = malloc(ARCHIVE_CAP);
	m->len = 0;
	assert_non_null(m->a);
	assert_non_null(m->data);
	if (kind == MAKE_ZIP) {
		assert_int_equal(archive_write_set_format_zip(m->a), ARCHIVE_OK);
	} else if (kind == MAKE_CPIO) {
		assert_int_equal(archive_write_set_format_cpio_newc(m->a), ARCHIVE_OK);
	} else {
		assert_int_equal(archive_write_set_format_pax(m->a), ARCHIVE_OK);
		if (kind == MAKE_PAX_GZIP)
			assert_int_equal(archive_write_add_filter_gzip(m->a), ARCHIVE_OK);
	}
	assert_int_equal(archive_write_open_memory(m->a, m->data, ARCHIVE_CAP, &m->len),
			 ARCHIVE_OK);
}

/* Adds an entry; link is the symlink or hard link target, size zero bytes follow data. */
static void maker_add(struct maker *m, const char *path, mode_t mode, const char *link,
		      const char *data, size_t zeros)
{
	struct archive_entry *e = archive_entry_new();
	size_t len = data ? strlen(data) : 0;
	static const char zero[65536];

	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, mode);
	if (S_ISLNK(mode))
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	if (S_ISREG(mode) && !link)
		archive_entry_set_size(e, (la_int64_t)(len + zeros));
	if (S_ISCHR(mode) || S_ISBLK(mode))
		archive_entry_set_rdev(e, makedev(1, 3));
	if (S_ISCHR(mode) || S_ISBLK(mode) || S_ISFIFO(mode) || S_ISSOCK(mode))
		archive_entry_set_size(e, 0); /* cpio insists */
	assert_int_equal(archive_write_header(m->a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(m->a, data, len), (la_ssize_t)len);
	for (size_t done = 0; done < zeros;) {
		size_t n = zeros - done < sizeof(zero) ? zeros - done : sizeof(zero);
		assert_int_equal(archive_write_data(m->a, zero, n), (la_ssize_t)n);
		done += n;
	}
	archive_entry_free(e);
}

static void maker_file(struct maker *m, const char *path, const char *data)
{
	maker_add(m, path, AE_IFREG | 0644, NULL, data, 0);
}

static void maker_close(struct maker *m)
{
	assert_int_equal(archive_write_close(m->a), ARCHIVE_OK);
	archive_write_free(m->a);
	m->a = NULL;
}

static int maker_extract(struct maker *m, const char *dest, int strip,
			 const struct bundle_limits *lim)
{
	int r;

	maker_close(m);
	r = bundle_extract_mem(m->data, m->len, dest, strip, lim);
	free(m->data);
	return r;
}

/* A single-entry archive must be refused as invalid, touching nothing outside dest. */
static void assert_refused(const struct fixture *f, struct maker *m, const char *why)
{
	assert_int_equal(maker_extract(m, f->dest, 0, NULL), ERR_INVALID);
	assert_msg_has(why);
	assert_outside_clean(f);
}

static void make_source_tree(const char *src)
{
	make_dir(src, "sub/deep");
	make_dir(src, "empty");
	make_dir(src, "bin");
	write_file(src, "a.txt", "hello\n", 0644);
	write_file(src, "bin/run.sh", "#!/bin/sh\necho hi\n", 0755);
	write_file(src, "sub/deep/data", "deep\n", 0600);
	make_link(src, "link", "a.txt");
	make_link(src, "sub/deep/up", "../../a.txt");
	make_link(src, "sub/dirlink", "deep");
}

static void read_whole(const char *path, struct buf *b)
{
	buf_init(b, 64u << 20);
	assert_int_equal(fs_read_file(b, path, 64u << 20), 0);
}

/* ---- packing ---- */

static void test_bundle__round_trip(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f->parent, "src"), *out = path_in(f->parent, "b.tar.zst");

	make_source_tree(src);
	assert_int_equal(bundle_pack_dir(src, out), 0);
	assert_int_equal(bundle_extract_file(out, f->dest, 0, NULL), 0);
	assert_file(f->dest, "a.txt", "hello\n", 0644);
	assert_file(f->dest, "bin/run.sh", "#!/bin/sh\necho hi\n", 0755);
	assert_file(f->dest, "sub/deep/data", "deep\n", 0644);
	assert_link(f->dest, "link", "a.txt");
	assert_link(f->dest, "sub/deep/up", "../../a.txt");
	assert_link(f->dest, "sub/dirlink", "deep");
	{
		char *empty = path_in(f->dest, "empty");
		struct stat st;
		assert_int_equal(lstat(empty, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		free(empty);
	}
	free(src);
	free(out);
}

static void touch_all(const char *dir, const char *const *rels, time_t when)
{
	struct timespec ts[2] = { { when, 0 }, { when, 0 } };

	for (size_t i = 0; rels[i]; i++) {
		char *p = path_in(dir, rels[i]);
		assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
		free(p);
	}
}

static void test_bundle__pack_is_deterministic(void **state)
{
	static const char *const all[] = { "a.txt", "bin/run.sh", "sub/deep/data", "link",
					   "sub", "sub/deep", "empty", "bin", ".", NULL };
	struct fixture *f = *state;
	char *src = path_in(f->parent, "src"), *src2 = path_in(f->parent, "src2");
	char *out1 = path_in(f->parent, "1.tar.zst"), *out2 = path_in(f->parent, "2.tar.zst");
	char *out3 = path_in(f->parent, "3.tar.zst");
	struct buf b1, b2, b3;

	make_source_tree(src);
	assert_int_equal(bundle_pack_dir(src, out1), 0);
	touch_all(src, all, 1234567890);
	assert_int_equal(chmod(src, 0700), 0);
	assert_int_equal(bundle_pack_dir(src, out2), 0);

	/* The same tree built in another order, with other modes and times. */
	make_dir(src2, "bin");
	make_link(src2, "link", "a.txt");
	write_file(src2, "bin/run.sh", "#!/bin/sh\necho hi\n", 0700);
	make_dir(src2, "sub/deep");
	make_link(src2, "sub/dirlink", "deep");
	make_link(src2, "sub/deep/up", "../../a.txt");
	write_file(src2, "sub/deep/data", "deep\n", 0640);
	write_file(src2, "a.txt", "hello\n", 0664);
	make_dir(src2, "empty");
	touch_all(src2, all, 42);
	assert_int_equal(bundle_pack_dir(src2, out3), 0);

	read_whole(out1, &b1);
	read_whole(out2, &b2);
	read_whole(out3, &b3);
	assert_true(b1.len > 0);
	assert_int_equal(b1.len, b2.len);
	assert_memory_equal(b1.data, b2.data, b1.len);
	assert_int_equal(b1.len, b3.len);
	assert_memory_equal(b1.data, b3.data, b1.len);
	buf_release(&b1);
	buf_release(&b2);
	buf_release(&b3);
	free(src);
	free(src2);
	free(out1);
	free(out2);
	free(out3);
}

/* Packed into a pipe (the agent's packer), a bundle is byte for byte the one packed into a file. */
static void test_bundle__pack_into_a_pipe_is_the_same(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f->parent, "src"), *file = path_in(f->parent, "f.tar.zst");
	struct buf want, got = BUF_INIT(4096);
	char chunk[4096];
	int p[2];
	ssize_t n;
	pid_t pid;

	make_source_tree(src);
	assert_int_equal(bundle_pack_dir(src, file), 0);
	read_whole(file, &want);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(bundle_pack_fd(src, p[1]) == 0 ? 0 : 1);
	}
	close(p[1]);
	while ((n = read(p[0], chunk, sizeof(chunk))) > 0)
		assert_int_equal(buf_append(&got, chunk, (size_t)n), 0);
	close(p[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	buf_release(&want);
	buf_release(&got);
	free(src);
	free(file);
}

static void test_bundle__pack_entries_are_normalized(void **state)
{
	static const char *const order[] = { "a.txt", "bin", "bin/run.sh", "empty", "link", "sub",
					     "sub/deep", "sub/deep/data", "sub/deep/up",
					     "sub/dirlink", NULL };
	struct fixture *f = *state;
	char *src = path_in(f->parent, "src"), *out = path_in(f->parent, "b.tar.zst");
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t i = 0;

	make_source_tree(src);
	assert_int_equal(bundle_pack_dir(src, out), 0);
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	assert_int_equal(archive_read_open_filename(a, out, 65536), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		char name[256];
		snprintf(name, sizeof(name), "%s", archive_entry_pathname(e));
		if (name[0] && name[strlen(name) - 1] == '/')
			name[strlen(name) - 1] = '\0';
		assert_non_null(order[i]);
		assert_string_equal(name, order[i]);
		assert_int_equal(archive_entry_mtime(e), 0);
		assert_int_equal(archive_entry_uid(e), 0);
		assert_int_equal(archive_entry_gid(e), 0);
		assert_true(!archive_entry_uname(e) || !*archive_entry_uname(e));
		assert_true(!archive_entry_gname(e) || !*archive_entry_gname(e));
		if (archive_entry_filetype(e) != AE_IFLNK)
			assert_true(archive_entry_perm(e) == 0644 || archive_entry_perm(e) == 0755);
		i++;
	}
	assert_null(order[i]);
	assert_int_equal(archive_filter_code(a, 0), ARCHIVE_FILTER_ZSTD);
	archive_read_free(a);
	free(src);
	free(out);
}

static void test_bundle__pack_refuses_escaping_symlink(void **state)
{
	static const char *const targets[] = { "/etc", "../../outside", "../d/../../x", NULL };
	struct fixture *f = *state;
	char *out = path_in(f->parent, "b.tar.zst");

	for (size_t i = 0; targets[i]; i++) {
		char *src = path_in(f->dest, "src");
		make_dir(src, "d");
		make_link(src, "d/l", targets[i]);
		assert_int_equal(bundle_pack_dir(src, out), ERR_INVALID);
		assert_msg_has("target");
		assert_false(fs_exists(out));
		assert_int_equal(fs_rm_rf(src), 0);
		assert_outside_clean(f);
		free(src);
	}
	free(out);
}

static void test_bundle__pack_refuses_fifo(void **state)
{
	struct fixture *f = *state;
	char *out = path_in(f->parent, "b.tar.zst"), *fifo = path_in(f->dest, "fifo");

	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(bundle_pack_dir(f->dest, out), ERR_INVALID);
	assert_msg_has("not a regular file, directory or symlink");
	assert_false(fs_exists(out));
	assert_int_equal(unlink(fifo), 0);
	assert_outside_clean(f);
	free(out);
	free(fifo);
}

/* ---- extraction ---- */

static void test_bundle__strip_one(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_file(&m, "top", "skipped");
	maker_add(&m, "pkg-1.0/", AE_IFDIR | 0755, NULL, NULL, 0);
	maker_file(&m, "pkg-1.0/src/a.c", "int a;\n");
	maker_file(&m, "./pkg-1.0/README", "read me\n");
	maker_add(&m, "pkg-1.0/run", AE_IFREG | 0775, NULL, "x", 0);
	assert_int_equal(maker_extract(&m, f->dest, 1, NULL), 0);
	assert_file(f->dest, "src/a.c", "int a;\n", 0644);
	assert_file(f->dest, "README", "read me\n", 0644);
	assert_file(f->dest, "run", "x", 0755);
	assert_missing(f->dest, "top");
	assert_missing(f->dest, "pkg-1.0");
	assert_outside_clean(f);
}

static void test_bundle__refuses_absolute_path(void **state)
{
	struct fixture *f = *state;
	char *evil = path_in(f->parent, "evil");
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_file(&m, evil, "owned");
	assert_refused(f, &m, "absolute path");
	free(evil);
}

static void test_bundle__refuses_dotdot(void **state)
{
	static const char *const names[] = { "../evil", "a/../../evil", "a/b/../../../evil",
					     "./../evil", NULL };
	struct fixture *f = *state;
	struct maker m;

	for (size_t i = 0; names[i]; i++) {
		maker_open(&m, MAKE_PAX);
		maker_file(&m, names[i], "owned");
		assert_refused(f, &m, "path leaves the destination");
		assert_msg_has(names[i]);
	}
}

static void test_bundle__refuses_absolute_symlink(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "etc", AE_IFLNK | 0777, "/etc", NULL, 0);
	maker_file(&m, "etc/evil", "owned");
	assert_refused(f, &m, "symlink target '/etc' is absolute");
	assert_missing(f->dest, "etc");
}

static void test_bundle__refuses_symlink_to_parent(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "a", AE_IFLNK | 0777, "..", NULL, 0);
	maker_file(&m, "a/evil", "owned");
	assert_refused(f, &m, "symlink target '..' leaves the tree");
	assert_missing(f->dest, "a");
}

static void test_bundle__refuses_write_through_symlink(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	/* The link itself stays inside; writing through it is still refused. */
	maker_open(&m, MAKE_PAX);
	maker_add(&m, "sub/", AE_IFDIR | 0755, NULL, NULL, 0);
	maker_add(&m, "l", AE_IFLNK | 0777, "sub", NULL, 0);
	maker_file(&m, "l/x", "through");
	assert_refused(f, &m, "'l' is a symlink");
	assert_msg_has("l/x");
	assert_missing(f->dest, "sub/x");
}

static void test_bundle__refuses_nested_symlink_escape(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "d/ok", AE_IFLNK | 0777, "../x", NULL, 0);
	maker_add(&m, "d/l", AE_IFLNK | 0777, "../../x", NULL, 0);
	assert_refused(f, &m, "archive entry 'd/l': symlink target '../../x' leaves");
	assert_link(f->dest, "d/ok", "../x");
	assert_missing(f->dest, "d/l");
}

static void test_bundle__refuses_dotdot_after_link(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	/* Lexically inside, but b/b is dest itself, so the kernel would climb out. */
	maker_open(&m, MAKE_PAX);
	maker_add(&m, "b", AE_IFLNK | 0777, ".", NULL, 0);
	maker_add(&m, "c", AE_IFLNK | 0777, "b/b/../..", NULL, 0);
	assert_refused(f, &m, "has '..' after a name");
}

static void test_bundle__refuses_hardlink(void **state)
{
	static const char *const targets[] = { "f", "/etc/passwd", "../evil", NULL };
	struct fixture *f = *state;
	struct maker m;

	for (size_t i = 0; targets[i]; i++) {
		maker_open(&m, MAKE_PAX);
		maker_file(&m, "f", "data");
		maker_add(&m, "h", AE_IFREG | 0644, targets[i], NULL, 0);
		assert_refused(f, &m, "archive entry 'h': hard links are not allowed");
		assert_missing(f->dest, "h");
	}
}

static void test_bundle__refuses_special_files(void **state)
{
	/* tar cannot hold sockets; cpio can. */
	static const struct {
		mode_t type;
		int format;
		const char *name;
	} kinds[] = { { AE_IFCHR, MAKE_PAX, "character devices are not allowed" },
		      { AE_IFBLK, MAKE_PAX, "block devices are not allowed" },
		      { AE_IFIFO, MAKE_PAX, "fifos are not allowed" },
		      { AE_IFSOCK, MAKE_CPIO, "sockets are not allowed" } };
	struct fixture *f = *state;
	struct maker m;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		maker_open(&m, kinds[i].format);
		maker_add(&m, "node", kinds[i].type | 0666, NULL, NULL, 0);
		assert_refused(f, &m, kinds[i].name);
		assert_missing(f->dest, "node");
	}
}

static void add_numbered_files(struct maker *m, int n)
{
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%02d", i);
		maker_file(m, name, "x");
	}
}

static void test_bundle__entry_count_limit(void **state)
{
	struct fixture *f = *state;
	struct bundle_limits lim = { .max_entries = 10 };
	struct maker m;

	maker_open(&m, MAKE_PAX);
	add_numbered_files(&m, 10);
	assert_int_equal(maker_extract(&m, f->dest, 0, &lim), 0);

	maker_open(&m, MAKE_PAX);
	add_numbered_files(&m, 11);
	assert_int_equal(maker_extract(&m, f->dest, 0, &lim), ERR_LIMIT);
	assert_msg_has("more than 10 entries");
	assert_missing(f->dest, "f10");
	assert_outside_clean(f);
}

/* Found by tests/fuzz: one deep entry made thousands of directories and an unremovable tree. */
static void test_bundle__directories_made_on_the_way_count(void **state)
{
	struct fixture *f = *state;
	struct bundle_limits lim = { .max_entries = 50 };
	char path[1024];
	struct maker m;

	/* 10 entries, each 20 directories deep: 210 things created, not 10. */
	maker_open(&m, MAKE_PAX);
	for (int i = 0; i < 10; i++) {
		size_t n = (size_t)snprintf(path, sizeof(path), "d%d", i);
		for (int k = 0; k < 19; k++)
			n += (size_t)snprintf(path + n, sizeof(path) - n, "/a");
		snprintf(path + n, sizeof(path) - n, "/f");
		maker_file(&m, path, "x");
	}
	assert_int_equal(maker_extract(&m, f->dest, 0, &lim), ERR_LIMIT);
	assert_msg_has("more than 50 entries");
	assert_outside_clean(f);
}

static void test_bundle__depth_limit(void **state)
{
	struct fixture *f = *state;
	char path[2048];
	size_t n = 0;
	struct maker m;

	for (int k = 0; k < BUNDLE_MAX_DEPTH + 1; k++)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "%sa", k ? "/" : "");
	maker_open(&m, MAKE_PAX);
	maker_file(&m, path, "x");
	assert_int_equal(maker_extract(&m, f->dest, 0, NULL), ERR_LIMIT);
	assert_msg_has("deeper than");
	assert_missing(f->dest, "a");
	assert_outside_clean(f);
}

static void test_bundle__entry_size_limit(void **state)
{
	struct fixture *f = *state;
	struct bundle_limits lim = { .max_entry_size = 1000 };
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "ok", AE_IFREG | 0644, NULL, NULL, 1000);
	assert_int_equal(maker_extract(&m, f->dest, 0, &lim), 0);

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "big", AE_IFREG | 0644, NULL, NULL, 1001);
	assert_int_equal(maker_extract(&m, f->dest, 0, &lim), ERR_LIMIT);
	assert_msg_has("archive entry 'big': larger than 1000 bytes");
	assert_missing(f->dest, "big");
	assert_outside_clean(f);
}

static void test_bundle__total_size_bomb(void **state)
{
	struct fixture *f = *state;
	struct bundle_limits lim = { .max_total = 1u << 20 };
	struct timespec t0, t1;
	struct maker m;

	maker_open(&m, MAKE_PAX_GZIP);
	maker_add(&m, "zeros", AE_IFREG | 0644, NULL, NULL, 64u << 20);
	maker_close(&m);
	assert_true(m.len < (1u << 20));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(bundle_extract_mem(m.data, m.len, f->dest, 0, &lim), ERR_LIMIT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(m.data);
	assert_msg_has("bytes in total");
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	assert_missing(f->dest, "zeros");
	assert_outside_clean(f);
}

static void test_bundle__total_size_sums_entries(void **state)
{
	struct fixture *f = *state;
	struct bundle_limits lim = { .max_total = 1u << 20 };
	struct maker m;

	maker_open(&m, MAKE_PAX_GZIP);
	maker_add(&m, "a", AE_IFREG | 0644, NULL, NULL, 400u << 10);
	maker_add(&m, "b", AE_IFREG | 0644, NULL, NULL, 400u << 10);
	maker_add(&m, "c", AE_IFREG | 0644, NULL, NULL, 400u << 10);
	assert_int_equal(maker_extract(&m, f->dest, 0, &lim), ERR_LIMIT);
	assert_msg_has("more than 1048576 bytes in total");
	assert_missing(f->dest, "c");
	assert_outside_clean(f);
}

static void test_bundle__garbage_is_invalid(void **state)
{
	struct fixture *f = *state;
	char junk[4096];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7919 % 251 + 1);
	assert_int_equal(bundle_extract_mem(junk, sizeof(junk), f->dest, 0, NULL), ERR_INVALID);
	assert_msg_has("cannot read archive");
	assert_outside_clean(f);
}

/*
 * Zero bytes are not an archive (a truncated download must not pass as an
 * empty tree) and are refused; a real archive with no entries is fine.
 */
static void test_bundle__empty_input_is_invalid(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	assert_int_equal(bundle_extract_mem("", 0, f->dest, 0, NULL), ERR_INVALID);
	assert_msg_has("cannot read archive");
	assert_int_equal(bundle_extract_mem(NULL, 0, f->dest, 0, NULL), ERR_INVALID);

	maker_open(&m, MAKE_PAX);
	assert_int_equal(maker_extract(&m, f->dest, 0, NULL), 0);
	assert_outside_clean(f);
}

static void test_bundle__tar_gz_and_zip(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	maker_open(&m, MAKE_PAX_GZIP);
	maker_file(&m, "gz/a", "from tar.gz");
	maker_add(&m, "gz/x", AE_IFREG | 0755, NULL, "exec", 0);
	assert_int_equal(maker_extract(&m, f->dest, 0, NULL), 0);
	assert_file(f->dest, "gz/a", "from tar.gz", 0644);
	assert_file(f->dest, "gz/x", "exec", 0755);

	maker_open(&m, MAKE_ZIP);
	maker_add(&m, "zip/", AE_IFDIR | 0755, NULL, NULL, 0);
	maker_file(&m, "zip/a", "from zip");
	maker_add(&m, "zip/l", AE_IFLNK | 0777, "a", NULL, 0);
	assert_int_equal(maker_extract(&m, f->dest, 0, NULL), 0);
	assert_file(f->dest, "zip/a", "from zip", 0644);
	assert_link(f->dest, "zip/l", "a");
	assert_outside_clean(f);
}

static void test_bundle__modes_are_sanitized(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char *d;
	struct maker m;
	mode_t old = umask(077); /* modes must not depend on the caller's umask */

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "dir/", AE_IFDIR | 0700, NULL, NULL, 0);
	maker_add(&m, "suid", AE_IFREG | 04755, NULL, "s", 0);
	maker_add(&m, "sgid", AE_IFREG | 02711, NULL, "g", 0);
	maker_add(&m, "private", AE_IFREG | 0600, NULL, "p", 0);
	maker_add(&m, "world", AE_IFREG | 0666, NULL, "w", 0);
	assert_int_equal(maker_extract(&m, f->dest, 0, NULL), 0);
	umask(old);
	assert_file(f->dest, "suid", "s", 0755);
	assert_file(f->dest, "sgid", "g", 0755);
	assert_file(f->dest, "private", "p", 0644);
	assert_file(f->dest, "world", "w", 0644);
	d = path_in(f->dest, "dir");
	assert_int_equal(lstat(d, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	free(d);
}

static void test_bundle__duplicates(void **state)
{
	struct fixture *f = *state;
	struct maker m;

	maker_open(&m, MAKE_PAX);
	maker_file(&m, "f", "one");
	maker_file(&m, "f", "two");
	assert_int_equal(maker_extract(&m, f->dest, 0, NULL), 0);
	assert_file(f->dest, "f", "two", 0644);

	/* A later file never writes through an earlier symlink. */
	maker_open(&m, MAKE_PAX);
	maker_add(&m, "l", AE_IFLNK | 0777, "f", NULL, 0);
	maker_file(&m, "l", "three");
	assert_refused(f, &m, "archive entry 'l': exists and is not a regular file");
	assert_file(f->dest, "f", "two", 0644);
	assert_link(f->dest, "l", "f");

	maker_open(&m, MAKE_PAX);
	maker_add(&m, "f", AE_IFLNK | 0777, "l", NULL, 0);
	assert_refused(f, &m, "archive entry 'f': already exists");
	assert_file(f->dest, "f", "two", 0644);
}

static void test_bundle__missing_inputs(void **state)
{
	struct fixture *f = *state;
	char *nowhere = path_in(f->parent, "nowhere");
	struct maker m;

	assert_int_equal(bundle_extract_file(nowhere, f->dest, 0, NULL), ERR_NOTFOUND);
	maker_open(&m, MAKE_PAX);
	maker_file(&m, "a", "a");
	assert_int_equal(maker_extract(&m, nowhere, 0, NULL), ERR_NOTFOUND);
	assert_outside_clean(f);
	free(nowhere);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bundle__round_trip),
		T(test_bundle__pack_is_deterministic),
		T(test_bundle__pack_into_a_pipe_is_the_same),
		T(test_bundle__pack_entries_are_normalized),
		T(test_bundle__pack_refuses_escaping_symlink),
		T(test_bundle__pack_refuses_fifo),
		T(test_bundle__strip_one),
		T(test_bundle__refuses_absolute_path),
		T(test_bundle__refuses_dotdot),
		T(test_bundle__refuses_absolute_symlink),
		T(test_bundle__refuses_symlink_to_parent),
		T(test_bundle__refuses_write_through_symlink),
		T(test_bundle__refuses_nested_symlink_escape),
		T(test_bundle__refuses_dotdot_after_link),
		T(test_bundle__refuses_hardlink),
		T(test_bundle__refuses_special_files),
		T(test_bundle__entry_count_limit),
		T(test_bundle__entry_size_limit),
		T(test_bundle__directories_made_on_the_way_count),
		T(test_bundle__depth_limit),
		T(test_bundle__total_size_bomb),
		T(test_bundle__total_size_sums_entries),
		T(test_bundle__garbage_is_invalid),
		T(test_bundle__empty_input_is_invalid),
		T(test_bundle__tar_gz_and_zip),
		T(test_bundle__modes_are_sanitized),
		T(test_bundle__duplicates),
		T(test_bundle__missing_inputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
