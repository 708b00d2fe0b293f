/* config.c - finding the dispatcher's URL and token. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "fsutil.h"

/* What the config file said; every string owned. */
struct file_values {
	char *url, *token, *token_file;
	int url_line, token_line, token_file_line;
};

static void file_values_release(struct file_values *v)
{
	free(v->url);
	free(v->token);
	free(v->token_file);
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
	struct buf b = BUF_INIT(8192);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (r < 0) {
		buf_release(&b);
		return NULL;
	}
	if (!b.data) /* an empty result: buf allocates lazily */
		return strdup("");
	return buf_detach(&b, NULL);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

char *config_file_path(void)
{
	const char *xdg = env("XDG_CONFIG_HOME"), *home = env("HOME");

	/* The XDG spec says a relative XDG_CONFIG_HOME is invalid and ignored. */
	if (xdg && xdg[0] == '/')
		return dup_printf("%s/dispatch/config", xdg);
	if (home)
		return dup_printf("%s/.config/dispatch/config", home);
	return NULL;
}

/* Checks a URL and returns it without trailing slashes (new). */
static int normalize_url(char **out, const char *url, const char *from)
{
	const char *host;
	size_t n = strlen(url);

	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return err_set(ERR_INVALID,
			       "dispatcher URL '%s' (from %s): expected http://HOST:PORT or https://...", url,
			       from);
	host = url + (url[4] == 's' ? 8 : 7);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
			return err_set(ERR_INVALID,
				       "dispatcher URL '%s' (from %s): spaces, control characters, "
				       "'?' and '#' are not allowed",
				       url, from);
	if (!*host || *host == '/')
		return err_set(ERR_INVALID, "dispatcher URL '%s' (from %s): no host", url, from);
	while (n > (size_t)(host - url) && url[n - 1] == '/')
		n--;
	*out = strndup(url, n);
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

static int check_token(const char *token, const char *from)
{
	if (!*token)
		return err_set(ERR_INVALID, "the token from %s is empty", from);
	if (strlen(token) > CONFIG_TOKEN_MAX)
		return err_set(ERR_INVALID, "the token from %s is longer than %u characters", from,
			       CONFIG_TOKEN_MAX);
	for (const char *p = token; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return err_set(ERR_INVALID,
				       "the token from %s holds spaces or characters that are not "
				       "printable ASCII",
				       from);
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Reads a token file: its contents without surrounding whitespace (new). */
static int read_token_file(char **out, const char *path, const char *from)
{
	struct buf b = BUF_INIT(CONFIG_TOKEN_MAX + 64);
	char *s;
	int r;

	if ((r = fs_read_file(&b, path, CONFIG_TOKEN_MAX + 64)) < 0) {
		r = err_prefix(r, "cannot read the token file (from %s)", from);
		goto out;
	}
	if (b.data && memchr(b.data, '\0', b.len)) {
		r = err_set(ERR_INVALID, "the token file '%s' (from %s) holds a NUL byte", path, from);
		goto out;
	}
	s = trim(b.data ? b.data : "");
	if ((r = check_token(s, from)) < 0)
		goto out;
	*out = strdup(s);
	if (!*out)
		r = err_set(ERR_NOMEM, "out of memory");
out:
	buf_release(&b);
	return r;
}

/* "~/x" -> "$HOME/x"; a relative path is taken relative to dir (new). */
static char *expand_path(const char *path, const char *dir)
{
	const char *home = env("HOME");

	if (!strncmp(path, "~/", 2) && home)
		return dup_printf("%s/%s", home, path + 2);
	if (path[0] == '/' || !dir)
		return strdup(path);
	return dup_printf("%s/%s", dir, path);
}

/* Parses the config file; a missing file leaves v empty. */
static int parse_file(struct file_values *v, const char *path)
{
	struct buf b = BUF_INIT(CONFIG_FILE_MAX);
	char *line, *next;
	int r, lineno = 0;

	r = fs_read_file(&b, path, CONFIG_FILE_MAX);
	if (r == ERR_NOTFOUND) {
		err_clear();
		r = 0;
	}
	if (r < 0 || !b.data)
		goto out;
	if (b.data && memchr(b.data, '\0', b.len)) {
		r = err_set(ERR_INVALID, "config file '%s': holds a NUL byte", path);
		goto out;
	}
	for (line = b.data; line && *line; line = next) {
		char *eq, *key, *value, **slot;
		int *slot_line;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line = trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			r = err_set(ERR_INVALID, "config file '%s' line %d: expected 'key = value'", path,
				    lineno);
			goto out;
		}
		*eq = '\0';
		key = trim(line);
		value = trim(eq + 1);
		if (!strcmp(key, "url")) {
			slot = &v->url;
			slot_line = &v->url_line;
		} else if (!strcmp(key, "token")) {
			slot = &v->token;
			slot_line = &v->token_line;
		} else if (!strcmp(key, "token_file")) {
			slot = &v->token_file;
			slot_line = &v->token_file_line;
		} else {
			r = err_set(ERR_INVALID,
				    "config file '%s' line %d: unknown key '%s' (expected url, token "
				    "or token_file)",
				    path, lineno, key);
			goto out;
		}
		if (*slot) {
			r = err_set(ERR_INVALID, "config file '%s' line %d: '%s' is already set on line %d",
				    path, lineno, key, *slot_line);
			goto out;
		}
		if (!*value) {
			r = err_set(ERR_INVALID, "config file '%s' line %d: '%s' has no value", path, lineno,
				    key);
			goto out;
		}
		if (!(*slot = strdup(value))) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		*slot_line = lineno;
	}
out:
	buf_release(&b);
	return r;
}

/* The directory part of path (new), "." when it has none. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Fills what the flags and the environment do not give from the config file. */
static int from_file(struct config *c, const char *path)
{
	struct file_values v = { 0 };
	char *dir = NULL, *tf = NULL;
	int r;

	if ((r = parse_file(&v, path)) < 0)
		goto out;
	if (!c->url && v.url) {
		c->url_from = dup_printf("config file '%s' line %d", path, v.url_line);
		if (!c->url_from) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		if ((r = normalize_url(&c->url, v.url, c->url_from)) < 0)
			goto out;
	}
	if (!c->token && v.token) {
		c->token_from = dup_printf("config file '%s' line %d", path, v.token_line);
		if (!c->token_from) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		if ((r = check_token(v.token, c->token_from)) < 0)
			goto out;
		c->token = v.token;
		v.token = NULL;
	} else if (!c->token && v.token_file) {
		dir = dir_of(path);
		tf = dir ? expand_path(v.token_file, dir) : NULL;
		c->token_from = tf ? dup_printf("token_file '%s' (config file '%s' line %d)", tf, path,
						v.token_file_line) : NULL;
		if (!c->token_from) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		r = read_token_file(&c->token, tf, c->token_from);
	}
out:
	free(dir);
	free(tf);
	file_values_release(&v);
	return r;
}

void config_release(struct config *c)
{
	if (!c)
		return;
	free(c->url);
	free(c->token);
	free(c->url_from);
	free(c->token_from);
	memset(c, 0, sizeof(*c));
}

int config_load(struct config *out, const char *url_flag, const char *token_flag, const char *fallback_file)
{
	struct config c = { 0 };
	const char *url_env = env("DISPATCH_URL"), *token_env = env("DISPATCH_TOKEN");
	const char *token_file_env = env("DISPATCH_TOKEN_FILE");
	char *path = NULL;
	int r = 0;

	if (url_flag || url_env) {
		c.url_from = strdup(url_flag ? "--url" : "DISPATCH_URL");
		if (!c.url_from) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		if ((r = normalize_url(&c.url, url_flag ? url_flag : url_env, c.url_from)) < 0)
			goto out;
	}
	if (token_flag || token_env) {
		c.token_from = strdup(token_flag ? "--token" : "DISPATCH_TOKEN");
		if (!c.token_from) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		if ((r = check_token(token_flag ? token_flag : token_env, c.token_from)) < 0)
			goto out;
		if (!(c.token = strdup(token_flag ? token_flag : token_env))) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
	} else if (token_file_env) {
		c.token_from = dup_printf("DISPATCH_TOKEN_FILE '%s'", token_file_env);
		if (!c.token_from) {
			r = err_set(ERR_NOMEM, "out of memory");
			goto out;
		}
		if ((r = read_token_file(&c.token, token_file_env, c.token_from)) < 0)
			goto out;
	}
	/* The file is only read when needed: a broken one does not stand in the way of flags. */
	path = (!c.url || !c.token) ? config_file_path() : NULL;
	if (path && (r = from_file(&c, path)) < 0)
		goto out;
	if (!c.url && fallback_file && (r = from_file(&c, fallback_file)) < 0)
		goto out;
	if (!c.url) {
		r = err_set(ERR_NOTFOUND,
			    "no dispatcher URL: pass --url URL, set DISPATCH_URL or put 'url = URL' in %s",
			    path ? path : "~/.config/dispatch/config");
		goto out;
	}
	if (!c.token) {
		r = err_set(ERR_NOTFOUND,
			    "no token for %s: pass --token, set DISPATCH_TOKEN or DISPATCH_TOKEN_FILE, "
			    "or put 'token_file = PATH' in %s (dispatchd writes STATE_DIR/operator.token)",
			    c.url, path ? path : "~/.config/dispatch/config");
		goto out;
	}
	*out = c;
	memset(&c, 0, sizeof(c));
out:
	free(path);
	config_release(&c);
	return r;
}
