/* config.h - where the dispatcher is and which token to show it: flags, environment, config file. */
#ifndef DISPATCH_CLI_CONFIG_H
#define DISPATCH_CLI_CONFIG_H

#define CONFIG_FILE_MAX (64u << 10) /* the config file */
#define CONFIG_TOKEN_MAX 4096u      /* a token or a token file */

struct config {
	char *url;          /* "http(s)://host[:port][/prefix]", no trailing '/' */
	char *token;
	char *url_from;     /* where each came from, for messages: "--url", "DISPATCH_URL", */
	char *token_from;   /* "DISPATCH_TOKEN_FILE '/x'", "'/home/u/.config/dispatch/config' line 2" */
};

/*
 * Finds the dispatcher's URL and the operator token. Each is looked up on
 * its own, first found wins:
 *
 *   1. the flags: url_flag, token_flag (NULL when not given);
 *   2. the environment: DISPATCH_URL; DISPATCH_TOKEN, then DISPATCH_TOKEN_FILE;
 *   3. the config file (config_file_path()), lines "url = ...",
 *      "token = ..." or "token_file = ...", blank lines and "#" comments;
 *      token takes precedence over token_file. A relative token_file is
 *      relative to the config file's directory; "~/" is the home directory;
 *   4. fallback_file (NULL: none), a file of the same format, e.g. the one
 *      `dispatch up` leaves for its local cluster. It is only read when
 *      nothing above named a URL, so a token meant for one dispatcher is
 *      never sent to another.
 *
 * Empty environment variables count as unset; a missing config file is
 * fine, a malformed one is not (ERR_INVALID, naming the file and line).
 * Fails with ERR_NOTFOUND when the URL or the token is nowhere, saying how
 * to set it. Tokens are read with whitespace trimmed and must be printable
 * ASCII without spaces. On success *out owns its strings: config_release().
 */
int config_load(struct config *out, const char *url_flag, const char *token_flag, const char *fallback_file);

void config_release(struct config *c);

/*
 * The config file's path: $XDG_CONFIG_HOME/dispatch/config, else
 * $HOME/.config/dispatch/config (new string), or NULL when neither
 * variable is set.
 */
char *config_file_path(void);

#endif
