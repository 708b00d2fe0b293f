/* node.c - node.json and the join request. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "fsutil.h"

#define NODE_FILE_MAX (16u << 10)

int node_token_is_valid(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > NODE_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (t[i] <= ' ' || t[i] > '~')
			return 0; /* it goes into an HTTP header: no CR, LF or spaces */
	return 1;
}

int node_read_token(char **out, const char *path)
{
	struct buf b = BUF_INIT(NODE_TOKEN_MAX + 64);
	char *s, *end;
	int r;

	if ((r = fs_read_file(&b, path, NODE_TOKEN_MAX + 64)) < 0)
		goto out;
	s = b.data ? b.data : (char *)"";
	s += strspn(s, " \t\r\n");
	end = s + strcspn(s, "\r\n");
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	if (!node_token_is_valid(s)) {
		r = err_set(ERR_INVALID, "'%s' does not hold a token", path);
		goto out;
	}
	if (!(*out = strdup(s)))
		r = err_set(ERR_NOMEM, "out of memory");
out:
	buf_release(&b);
	return r;
}

#define SEQ_FILE_MAX 256

static char *node_path(const char *work_dir)
{
	return fs_join(work_dir, "node.json");
}

/* A newer sequence number from WORK/seq, when it belongs to node id and both copies agree. */
static void load_seq(struct node *n, const char *work_dir)
{
	struct buf b = BUF_INIT(SEQ_FILE_MAX);
	char *path = fs_join(work_dir, "seq"), id[PROTO_ID_MAX + 1];
	unsigned long long seq, again;

	if (path && fs_read_file(&b, path, SEQ_FILE_MAX) == 0 && b.len &&
	    sscanf(buf_str(&b), "%64s %llu %llu", id, &seq, &again) == 3 && seq == again && !strcmp(id, n->id) &&
	    seq > n->seq)
		n->seq = seq;
	buf_release(&b);
	free(path);
}

/*
 * Overwritten in place, one record of a fixed length: no new file (and no
 * freed one) per batch of messages. A write() is whole or absent after a
 * crash of the agent; after a power loss the record may be torn, so the
 * number is written twice and a record whose copies differ is not used.
 */
int node_save_seq(const struct node *n, const char *work_dir)
{
	char *path = fs_join(work_dir, "seq"), text[PROTO_ID_MAX + 64];
	int fd, r = 0, len;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	len = snprintf(text, sizeof(text), "%-*s %20llu %20llu\n", PROTO_ID_MAX, n->id, (unsigned long long)n->seq,
		       (unsigned long long)n->seq);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || pwrite(fd, text, (size_t)len, 0) != len)
		r = err_errno(ERR_IO, errno, "cannot write '%s'", path);
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

int node_load(struct node *out, const char *work_dir, const char *url)
{
	struct buf b = BUF_INIT(NODE_FILE_MAX);
	struct node n = {0};
	char *path = node_path(work_dir);
	const char *id, *token, *disp;
	json_t *doc = NULL, *seq;
	int r;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = fs_read_file(&b, path, NODE_FILE_MAX)) < 0)
		goto out;
	doc = json_loadb(b.data, b.len, 0, NULL);
	id = json_string_value(json_object_get(doc, "node"));
	token = json_string_value(json_object_get(doc, "token"));
	disp = json_string_value(json_object_get(doc, "dispatcher"));
	seq = json_object_get(doc, "seq");
	if (!id || !token || !disp || !proto_id_is_valid(id) || !node_token_is_valid(token) ||
	    !json_is_integer(seq) || json_integer_value(seq) < 0) {
		r = err_set(ERR_INVALID, "'%s' is damaged", path);
		goto out;
	}
	if (strcmp(disp, url) != 0) {
		r = err_set(ERR_NOTFOUND, "'%s' belongs to the dispatcher at '%s'", path, disp);
		goto out;
	}
	snprintf(n.id, sizeof(n.id), "%s", id);
	snprintf(n.token, sizeof(n.token), "%s", token);
	n.seq = (uint64_t)json_integer_value(seq);
	load_seq(&n, work_dir);
	*out = n;
out:
	json_decref(doc);
	buf_release(&b);
	free(path);
	return r;
}

int node_save(const struct node *n, const char *work_dir, const char *url)
{
	char *path = node_path(work_dir), *text = NULL;
	json_t *doc;
	int r;

	doc = json_pack("{sssssssI}", "dispatcher", url, "node", n->id, "token", n->token, "seq",
			(json_int_t)n->seq);
	if (!path || !doc || !(text = json_dumps(doc, JSON_INDENT(2)))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	r = fs_write_atomic(path, text, strlen(text), 0600);
out:
	free(text);
	json_decref(doc);
	free(path);
	return r;
}

/* One join attempt with token; fills n from the answer. */
static int join_with(struct node *n, conn *c, const char *token, json_t *body)
{
	json_t *resp = NULL;
	char copy[NODE_TOKEN_MAX + 1];
	const char *id, *tok;
	double hb, ttl;
	json_int_t inl, batches;
	int r;

	if ((r = conn_set_token(c, token)) < 0 ||
	    (r = conn_request(c, &resp, "POST", "/v1/agent/join", body)) < 0)
		goto out;
	id = json_string_value(json_object_get(resp, "node"));
	tok = json_string_value(json_object_get(resp, "token"));
	/* Numbers, integer or not. */
	hb = json_number_value(json_object_get(resp, "heartbeat_s"));
	inl = json_integer_value(json_object_get(resp, "inline_max"));
	batches = json_integer_value(json_object_get(resp, "batch_max"));
	ttl = json_number_value(json_object_get(resp, "ttl_s"));
	if (!id || !proto_id_is_valid(id)) {
		r = err_set(ERR_INVALID, "POST /v1/agent/join: the answer has no valid 'node'");
		goto out;
	}
	if (!tok)
		tok = token; /* a rejoin may keep the token */
	if (!node_token_is_valid(tok)) {
		r = err_set(ERR_INVALID, "POST /v1/agent/join: the answer has no valid 'token'");
		goto out;
	}
	/* tok may be n->token itself: copy through a buffer. */
	snprintf(copy, sizeof(copy), "%s", tok);
	if (strcmp(n->id, id) != 0)
		n->seq = 0; /* a new identity: its messages are numbered afresh */
	snprintf(n->id, sizeof(n->id), "%s", id);
	memcpy(n->token, copy, sizeof(copy));
	n->heartbeat_s = hb >= 1 && hb <= 3600 ? (unsigned)hb : 5;
	n->ttl_s = ttl >= 1 && ttl <= 86400 ? (unsigned)ttl : 4 * n->heartbeat_s;
	/* A dispatcher that does not say takes no bundle inside an event (it predates them). */
	n->inline_max = inl > 0 ? (size_t)(inl < PROTO_INLINE_MAX ? inl : PROTO_INLINE_MAX) : 0;
	/* Nor does it take the events of several instances in one request. */
	n->batch_max = batches > 1 ? (unsigned)(batches < 65536 ? batches : 65536) : 0;
	r = conn_set_token(c, n->token);
out:
	json_decref(resp);
	return r;
}

int node_join(struct node *n, conn *c, const char *join_token, json_t *body)
{
	int r;

	if (n->token[0]) {
		r = join_with(n, c, n->token, body);
		if (r != ERR_AUTH)
			return r;
		if (!join_token)
			return err_prefix(r,
					  "the dispatcher refused the node token and there is no join token");
	}
	if (!join_token)
		return err_set(ERR_AUTH, "no join token (--join-token or --join-token-file)");
	r = join_with(n, c, join_token, body);
	if (r == ERR_AUTH)
		err_prefix(r, "the dispatcher refused the join token");
	return r;
}
