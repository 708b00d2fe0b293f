/* test_cli_config.c - where the CLI finds the dispatcher's URL and token, and in which order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "fsutil.h"

/* A scratch HOME with an XDG_CONFIG_HOME below it and no DISPATCH_* variables. */
struct env {
	char *home;
	char *xdg;
	char *file; /* $XDG_CONFIG_HOME/dispatch/config */
};

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");
	struct env *e = calloc(1, sizeof(*e));
	char *dir;

	assert_non_null(e);
	assert_int_equal(fs_mkdtemp(&e->home, base ? base : "/tmp", "test-cli-config"), 0);
	e->xdg = fs_join(e->home, "xdg");
	dir = fs_join(e->xdg, "dispatch");
	e->file = fs_join(dir, "config");
	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	free(dir);
	setenv("HOME", e->home, 1);
	setenv("XDG_CONFIG_HOME", e->xdg, 1);
	unsetenv("DISPATCH_URL");
	unsetenv("DISPATCH_TOKEN");
	unsetenv("DISPATCH_TOKEN_FILE");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	fs_rm_rf(e->home);
	free(e->home);
	free(e->xdg);
	free(e->file);
	free(e);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
}

static char *in_home(const struct env *e, const char *name)
{
	return fs_join(e->home, name);
}

static void test_cli_config__flags_beat_environment_beat_file(void **state)
{
	struct env *e = *state;
	struct config c;

	write_text(e->file, "# the cluster\nurl = http://file:1\n\ntoken = from-file\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.url, "http://file:1");
	assert_string_equal(c.token, "from-file");
	assert_non_null(strstr(c.token_from, "line 4"));
	config_release(&c);

	setenv("DISPATCH_URL", "http://env:2", 1);
	setenv("DISPATCH_TOKEN", "from-env", 1);
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.url, "http://env:2");
	assert_string_equal(c.token, "from-env");
	assert_string_equal(c.url_from, "DISPATCH_URL");
	config_release(&c);

	assert_int_equal(config_load(&c, "http://flag:3", "from-flag", NULL), 0);
	assert_string_equal(c.url, "http://flag:3");
	assert_string_equal(c.token, "from-flag");
	assert_string_equal(c.token_from, "--token");
	config_release(&c);
}

static void test_cli_config__each_value_found_on_its_own(void **state)
{
	struct env *e = *state;
	struct config c;

	/* The URL from a flag, the token from the file. */
	write_text(e->file, "url = http://file:1\ntoken = from-file\n");
	assert_int_equal(config_load(&c, "http://flag:3", NULL, NULL), 0);
	assert_string_equal(c.url, "http://flag:3");
	assert_string_equal(c.token, "from-file");
	config_release(&c);
}

static void test_cli_config__token_before_token_file(void **state)
{
	struct env *e = *state;
	char *tf = in_home(e, "op.token");
	struct config c;

	write_text(tf, "  from-token-file \n");
	setenv("DISPATCH_URL", "http://env:2", 1);
	setenv("DISPATCH_TOKEN_FILE", tf, 1);
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.token, "from-token-file"); /* white space trimmed */
	config_release(&c);

	setenv("DISPATCH_TOKEN", "from-env", 1);
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.token, "from-env");
	config_release(&c);

	/* The environment's token file beats the config file's token. */
	unsetenv("DISPATCH_TOKEN");
	write_text(e->file, "token = from-file\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.token, "from-token-file");
	config_release(&c);

	/* In the file, token beats token_file. */
	unsetenv("DISPATCH_TOKEN_FILE");
	write_text(e->file, "token_file = /nonexistent\ntoken = from-file\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.token, "from-file");
	config_release(&c);
	free(tf);
}

static void test_cli_config__token_file_relative_to_config_dir(void **state)
{
	struct env *e = *state;
	char *dir = fs_join(e->xdg, "dispatch"), *tf = fs_join(dir, "op.token"), *home_tf = in_home(e, "t2");
	struct config c;

	write_text(tf, "relative\n");
	write_text(home_tf, "tilde\n");
	write_text(e->file, "url = http://file:1/\ntoken_file = op.token\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.token, "relative");
	assert_string_equal(c.url, "http://file:1"); /* trailing slash dropped */
	config_release(&c);

	write_text(e->file, "url = http://file:1\ntoken_file = ~/t2\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.token, "tilde");
	config_release(&c);
	free(dir);
	free(tf);
	free(home_tf);
}

static void test_cli_config__home_config_without_xdg(void **state)
{
	struct env *e = *state;
	char *dir = in_home(e, ".config/dispatch"), *file = fs_join(dir, "config"), *path;
	struct config c;

	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	write_text(file, "url = https://home\ntoken = t\n");
	unsetenv("XDG_CONFIG_HOME");
	path = config_file_path();
	assert_string_equal(path, file);
	assert_int_equal(config_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.url, "https://home");
	config_release(&c);

	setenv("XDG_CONFIG_HOME", "relative/is/ignored", 1);
	free(path);
	path = config_file_path();
	assert_string_equal(path, file);
	free(path);
	free(file);
	free(dir);
}

static void test_cli_config__missing_values_say_how_to_set_them(void **state)
{
	struct config c = { 0 };

	(void)state;
	assert_int_equal(config_load(&c, NULL, "t", NULL), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "DISPATCH_URL"));
	assert_null(c.url); /* untouched on failure */
	assert_int_equal(config_load(&c, "http://h:1", NULL, NULL), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "operator.token"));
}

static void test_cli_config__malformed_file_names_the_line(void **state)
{
	struct env *e = *state;
	struct config c;

	write_text(e->file, "url = http://h:1\ntokn = x\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "line 2: unknown key 'tokn'"));

	write_text(e->file, "url http://h:1\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "line 1: expected 'key = value'"));

	write_text(e->file, "url = http://a\nurl = http://b\n");
	assert_int_equal(config_load(&c, NULL, NULL, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "already set on line 1"));

	/* Not read at all when the flags give everything. */
	assert_int_equal(config_load(&c, "http://flag", "t", NULL), 0);
	config_release(&c);
}

static void test_cli_config__bad_values_are_refused(void **state)
{
	struct env *e = *state;
	char *tf = in_home(e, "empty.token");
	struct config c;

	assert_int_equal(config_load(&c, "ftp://h", "t", NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "--url"));
	assert_int_equal(config_load(&c, "http://", "t", NULL), ERR_INVALID);
	assert_int_equal(config_load(&c, "http://h:1/x?y", "t", NULL), ERR_INVALID);
	assert_int_equal(config_load(&c, "http://h", "two words", NULL), ERR_INVALID);
	assert_int_equal(config_load(&c, "http://h", "line\nbreak", NULL), ERR_INVALID);
	write_text(tf, "\n\n");
	setenv("DISPATCH_TOKEN_FILE", tf, 1);
	assert_int_equal(config_load(&c, "http://h", NULL, NULL), ERR_INVALID);
	assert_non_null(strstr(err_msg(), "empty"));
	setenv("DISPATCH_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(config_load(&c, "http://h", NULL, NULL), ERR_NOTFOUND);
	assert_non_null(strstr(err_msg(), "/nonexistent/token"));
	/* An empty variable counts as unset. */
	setenv("DISPATCH_TOKEN_FILE", "", 1);
	setenv("DISPATCH_TOKEN", "", 1);
	assert_int_equal(config_load(&c, "http://h", NULL, NULL), ERR_NOTFOUND);
	free(tf);
}

static void test_cli_config__fallback_file_only_without_a_url(void **state)
{
	struct env *e = *state;
	char *fb = in_home(e, "cluster.config"), *tf = in_home(e, "cluster.token");
	struct config c;

	write_text(tf, "cluster-token\n");
	write_text(fb, "# written by dispatch up\nurl = http://127.0.0.1:7000\ntoken_file = cluster.token\n");
	assert_int_equal(config_load(&c, NULL, NULL, fb), 0);
	assert_string_equal(c.url, "http://127.0.0.1:7000");
	assert_string_equal(c.token, "cluster-token");
	config_release(&c);

	/* A URL from anywhere else: the local cluster's token is not sent to it. */
	setenv("DISPATCH_URL", "http://remote:1", 1);
	assert_int_equal(config_load(&c, NULL, NULL, fb), ERR_NOTFOUND);
	unsetenv("DISPATCH_URL");
	write_text(e->file, "url = http://remote:1\n");
	assert_int_equal(config_load(&c, NULL, NULL, fb), ERR_NOTFOUND);

	/* The user's own file wins over the fallback. */
	write_text(e->file, "url = http://mine:1\ntoken = mine\n");
	assert_int_equal(config_load(&c, NULL, NULL, fb), 0);
	assert_string_equal(c.token, "mine");
	config_release(&c);
	free(fb);
	free(tf);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cli_config__flags_beat_environment_beat_file),
		T(test_cli_config__each_value_found_on_its_own),
		T(test_cli_config__token_before_token_file),
		T(test_cli_config__token_file_relative_to_config_dir),
		T(test_cli_config__home_config_without_xdg),
		T(test_cli_config__missing_values_say_how_to_set_them),
		T(test_cli_config__malformed_file_names_the_line),
		T(test_cli_config__bad_values_are_refused),
		T(test_cli_config__fallback_file_only_without_a_url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
