/*
 * fuzz_sdk_state.c - the object SDK's state reader (sdk/dispatch.c), and
 * its writer as the reader's oracle.
 *
 * The input is a state.json, optionally followed by "\n#blob\n" and the
 * bytes of blobs/x.bin beside it. Both are written to a per-process
 * directory named by DISPATCH_STATE (docs/object-abi.md), then:
 *
 *   - dispatch_init() reads them. When it fails, the object may still go
 *     on with a fresh state: dispatch_checkpoint() must write one.
 *   - When it succeeds and jansson reads the state too (without duplicate
 *     keys), the SDK agrees with it on strings, integers and reals, and
 *     reads any other value but a typed object as uninterpreted.
 *   - Then dispatch_checkpoint() writes the state to
 *     DISPATCH_STATE_OUT; the keys it wrote are read through every getter
 *     (and each blob through every element type). When the input is valid
 *     UTF-8, so must every string read be.
 *   - The written state becomes the input of a second dispatch_init(),
 *     which must succeed, read every key the same, bit for bit (doubles
 *     by their bits, NaN payloads too: dispatch.h promises exact bits),
 *     and write state.json and the blobs again byte for byte.
 *
 * dispatch_init() installs handlers for SIGUSR1 and SIGTERM; the
 * harness puts libFuzzer's back after each call.
 */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "dispatch.h"
#include "error.h"
#include "fsutil.h"
#include "fuzz.h"

#define SEPARATOR "\n#blob\n"
#define BLOB_FILE "blobs/x.bin"
#define VIEW_MAX (16u << 20)
#define NTYPES (DISPATCH_F64 + 1)

static const size_t type_size[NTYPES] = { 1, 4, 4, 8, 8, 4, 8 };

static char *sandbox; /* $TMPDIR/fuzz-sdk-XXXXXX, made once per process */
static char *in_dir;  /* sandbox/in: DISPATCH_STATE */
static char *out_dir; /* sandbox/out: DISPATCH_STATE_OUT */

static void sandbox_remove(void)
{
	if (sandbox)
		fs_rm_rf(sandbox);
	free(sandbox);
	free(in_dir);
	free(out_dir);
	sandbox = in_dir = out_dir = NULL;
}

static void sandbox_init(void)
{
	const char *tmp = getenv("TMPDIR");

	if (fs_mkdtemp(&sandbox, tmp && *tmp ? tmp : "/tmp", "fuzz-sdk") < 0)
		fuzz_fail("cannot make the sandbox: %s", err_msg());
	if (!(in_dir = fs_join(sandbox, "in")) || !(out_dir = fs_join(sandbox, "out")))
		fuzz_fail("out of memory");
	atexit(sandbox_remove);
	/* What the agent sets, without a progress channel or a checkpoint interval. */
	setenv("DISPATCH_STATE", in_dir, 1);
	setenv("DISPATCH_STATE_OUT", out_dir, 1);
	setenv("DISPATCH_ISA", "x86_64", 1);
	setenv("DISPATCH_INSTANCE", "i-1", 1);
	setenv("DISPATCH_GENERATION", "1", 1);
	setenv("DISPATCH_FORK_INDEX", "0", 1);
	unsetenv("DISPATCH_PROGRESS_FD");
	unsetenv("DISPATCH_CHECKPOINT_INTERVAL");
}

static void mkdir_or_fail(const char *path)
{
	if (fs_mkdir_p(path, 0755) < 0)
		fuzz_fail("%s", err_msg());
}

/* Empties in/ and out/; in/blobs/ is there for the blob. */
static void sandbox_reset(void)
{
	char *blobs = fs_join(in_dir, "blobs");

	if (!blobs || fs_rm_rf(in_dir) < 0 || fs_rm_rf(out_dir) < 0)
		fuzz_fail("cannot empty the sandbox: %s", err_msg());
	mkdir_or_fail(blobs);
	mkdir_or_fail(out_dir);
	free(blobs);
}

static void write_in(const char *name, const void *data, size_t len)
{
	char *path = fs_join(in_dir, name);

	if (!path || fs_write_file(path, data, len, 0644) < 0)
		fuzz_fail("cannot write '%s': %s", name, err_msg());
	free(path);
}

/* The output becomes the next input: out/ is renamed to in/. */
static void rotate(void)
{
	if (fs_rm_rf(in_dir) < 0 || fs_rename(out_dir, in_dir) < 0)
		fuzz_fail("%s", err_msg());
	mkdir_or_fail(out_dir);
}

static int init(void)
{
	struct sigaction usr1, term;
	int r;

	sigaction(SIGUSR1, NULL, &usr1);
	sigaction(SIGTERM, NULL, &term);
	r = dispatch_init();
	sigaction(SIGUSR1, &usr1, NULL);
	sigaction(SIGTERM, &term, NULL);
	return r;
}

static void append(struct buf *b, const void *data, size_t len)
{
	if (buf_append(b, data, len) < 0)
		fuzz_fail("view: %s", err_msg());
}

/* Everything the getters say about key, appended to view. */
static void view_key(struct buf *view, const char *key, int utf8)
{
	const char *s = dispatch_get_str(key, NULL);
	int64_t i[2] = { dispatch_get_i64(key, 1), dispatch_get_i64(key, 2) };
	uint64_t u[2] = { dispatch_get_u64(key, 1), dispatch_get_u64(key, 2) };
	double f[2] = { dispatch_get_f64(key, 1), dispatch_get_f64(key, 2) };
	char has = (char)dispatch_has(key), none;

	append(view, key, strlen(key) + 1);
	append(view, &has, 1);
	append(view, i, sizeof(i));
	append(view, u, sizeof(u));
	append(view, f, sizeof(f)); /* bits, not values: NaN != NaN */
	append(view, s ? s : "", s ? strlen(s) + 1 : 1);
	if (s && utf8 && !fuzz_utf8_valid(s, strlen(s)))
		fuzz_fail("'%s': string of valid UTF-8 read as invalid UTF-8", key);
	for (int t = 0; t < NTYPES; t++) {
		long n = dispatch_get_blob(key, (enum dispatch_type)t, &none, 0);
		void *data;

		append(view, &n, sizeof(n));
		if (n < 0 || (unsigned long)n > VIEW_MAX / type_size[t])
			continue;
		if (!(data = malloc((size_t)n * type_size[t] + 1)))
			fuzz_fail("out of memory");
		if (dispatch_get_blob(key, (enum dispatch_type)t, data, (size_t)n) != n)
			fuzz_fail("'%s': blob count changed", key);
		append(view, data, (size_t)n * type_size[t]);
		free(data);
	}
}

/*
 * Reads out/state.json into text, and into view what the getters say of
 * every key in it. The writer puts each key at the start of a line, after
 * two spaces; a raw value may hold such a line too, which is then read as
 * a key that may not exist: harmless, as long as both rounds agree.
 */
static void view_state(struct buf *text, struct buf *view, int utf8)
{
	char *path = fs_join(out_dir, "state.json");
	const char *p;

	if (!path || fs_read_file(text, path, VIEW_MAX) < 0)
		fuzz_fail("the written state: %s", err_msg());
	free(path);
	for (p = text->data; (p = strstr(p, "\n  \"")); p++) {
		const char *k = p + 4, *end = strchr(k, '"');
		char key[256];

		if (!end || (size_t)(end - k) >= sizeof(key))
			continue;
		memcpy(key, k, (size_t)(end - k));
		key[end - k] = '\0';
		view_key(view, key, utf8);
	}
}

static int skip_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Appends the names and bytes of the files in out/blobs/, in name order. */
static void blob_bytes(struct buf *out)
{
	char *dir = fs_join(out_dir, "blobs");
	struct dirent **names = NULL;
	int n = dir ? scandir(dir, &names, skip_dot, alphasort) : -1;

	for (int i = 0; i < n; i++) {
		char *path = fs_join(dir, names[i]->d_name);

		append(out, names[i]->d_name, strlen(names[i]->d_name) + 1);
		if (!path || fs_read_file(out, path, VIEW_MAX) < 0)
			fuzz_fail("blob '%s': %s", names[i]->d_name, err_msg());
		free(path);
		free(names[i]);
	}
	free(names);
	free(dir);
}

static int same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static int is_typed(json_t *v)
{
	static const char *const keys[] = { "f64", "u64", "i64", "blob" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		if (json_object_get(v, keys[i]))
			return 1;
	return 0;
}

/*
 * When jansson reads the state too (strictly: no duplicate keys), the SDK
 * must agree on the plain values: strings, integers and reals the same,
 * and anything else but typed objects kept uninterpreted, read as absent.
 */
static void check_plain(const uint8_t *data, size_t len)
{
	json_t *doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL), *v;
	const char *key;

	json_object_foreach(json_object_get(doc, "values"), key, v) {
		const char *s = dispatch_get_str(key, NULL);
		double f = dispatch_get_f64(key, 0), want;

		if (!dispatch_has(key))
			fuzz_fail("'%s' is missing", key);
		if (json_is_string(v) && (!s || strlen(s) != json_string_length(v) ||
					  memcmp(s, json_string_value(v), strlen(s))))
			fuzz_fail("'%s': read as '%s', not '%s'", key, s ? s : "(none)", json_string_value(v));
		if (json_is_integer(v) && dispatch_get_i64(key, 0) != json_integer_value(v))
			fuzz_fail("'%s': read as %" PRId64 ", not %" JSON_INTEGER_FORMAT, key,
				  dispatch_get_i64(key, 0), json_integer_value(v));
		want = json_real_value(v);
		if (json_is_real(v) && memcmp(&f, &want, sizeof(f)))
			fuzz_fail("'%s': read as %a, not %a", key, f, want);
		if ((json_is_array(v) || json_is_null(v) || (json_is_object(v) && !is_typed(v))) &&
		    (s || dispatch_get_i64(key, 1) != 1 || dispatch_get_i64(key, 2) != 2))
			fuzz_fail("'%s': an uninterpreted value read as a string or a number", key);
	}
	json_decref(doc);
}

static void round_trip(int utf8)
{
	struct buf text1 = BUF_INIT(VIEW_MAX), view1 = BUF_INIT(VIEW_MAX), blobs1 = BUF_INIT(VIEW_MAX);
	struct buf text2 = BUF_INIT(VIEW_MAX), view2 = BUF_INIT(VIEW_MAX), blobs2 = BUF_INIT(VIEW_MAX);

	if (dispatch_checkpoint() < 0)
		fuzz_fail("a state read cannot be written");
	view_state(&text1, &view1, utf8);
	blob_bytes(&blobs1);
	rotate();
	if (init() < 0)
		fuzz_fail("the state written cannot be read:\n%s", text1.data);
	if (dispatch_checkpoint() < 0)
		fuzz_fail("a state read back cannot be written");
	view_state(&text2, &view2, utf8);
	blob_bytes(&blobs2);
	if (!same(&text1, &text2))
		fuzz_fail("written again, the state changed:\n%s\n---\n%s", text1.data, text2.data);
	if (!same(&blobs1, &blobs2))
		fuzz_fail("written again, the blobs changed");
	if (!same(&view1, &view2))
		fuzz_fail("read back, the values changed:\n%s", text1.data);
	buf_release(&text1);
	buf_release(&view1);
	buf_release(&blobs1);
	buf_release(&text2);
	buf_release(&view2);
	buf_release(&blobs2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memmem(data, size, SEPARATOR, strlen(SEPARATOR));
	size_t state_len = sep ? (size_t)(sep - data) : size;
	int r;

	if (!sandbox)
		sandbox_init();
	sandbox_reset();
	write_in("state.json", data, state_len);
	if (sep)
		write_in(BLOB_FILE, sep + strlen(SEPARATOR), size - state_len - strlen(SEPARATOR));

	r = init();
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "  -> %s\n", r < 0 ? "unreadable" : "ok");
	if (r < 0) {
		/* An object may start afresh: what it writes must be a state. */
		if (dispatch_checkpoint() < 0)
			fuzz_fail("after a failed dispatch_init(), no state can be written");
		return 0;
	}
	check_plain(data, state_len);
	round_trip(fuzz_utf8_valid(data, state_len));
	return 0;
}
