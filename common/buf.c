/* buf.c - growable byte buffer with a hard cap. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"

void buf_init(struct buf *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

void buf_release(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

int buf_grow(struct buf *b, size_t extra)
{
	size_t need, n;
	char *p;

	if (extra > b->cap || b->len > b->cap - extra)
		return err_set(ERR_LIMIT, "buffer limit of %zu bytes reached", b->cap);
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 64;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : n * 2;
	if (n > b->cap + 1)
		n = b->cap + 1;
	p = realloc(b->data, n);
	if (!p)
		return err_set(ERR_NOMEM, "out of memory");
	b->data = p;
	b->alloc = n;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int r = buf_grow(b, len);

	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, r;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return err_set(ERR_INVALID, "bad format string");
	r = buf_grow(b, (size_t)n);
	if (r < 0)
		return r;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

/* OpenSSL's block coder: 3 bytes to 4 characters, whole blocks at a time. */
#define B64_CHUNK 3072 /* bytes per call: a multiple of 3 */

int buf_append_base64(struct buf *b, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t out = (len + 2) / 3 * 4;
	int r;

	if (len > SIZE_MAX / 2)
		return err_set(ERR_LIMIT, "buffer limit of %zu bytes reached", b->cap);
	if ((r = buf_grow(b, out)) < 0)
		return r;
	for (size_t i = 0; i < len; i += B64_CHUNK) {
		size_t n = len - i < B64_CHUNK ? len - i : B64_CHUNK;
		b->len += (size_t)EVP_EncodeBlock((unsigned char *)b->data + b->len, p + i, (int)n);
	}
	b->data[b->len] = '\0';
	return 0;
}

/* Decodes whole groups of 4 (no padding among them) to the end of b, which has the room. */
static int unbase64_groups(struct buf *b, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i += B64_CHUNK / 3 * 4) {
		size_t n = len - i < B64_CHUNK / 3 * 4 ? len - i : B64_CHUNK / 3 * 4;
		int got = EVP_DecodeBlock((unsigned char *)b->data + b->len, (const unsigned char *)text + i, (int)n);
		if (got < 0)
			return err_set(ERR_INVALID, "base64: not decodable");
		b->len += (size_t)got;
	}
	return 0;
}

int buf_append_unbase64(struct buf *b, const char *text, size_t len)
{
	size_t pad = 0, before = b->len;
	unsigned char last[4];
	int r;

	if (len % 4)
		return err_set(ERR_INVALID, "base64: %zu characters are not whole groups of 4", len);
	if (len && text[len - 1] == '=')
		pad = len >= 2 && text[len - 2] == '=' ? 2 : 1;
	/* EVP_DecodeBlock() skips white space and takes '=' anywhere: only the alphabet and final padding. */
	for (size_t i = 0; i < len - pad; i++) {
		char c = text[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		      c == '/'))
			return err_set(ERR_INVALID, "base64: character %zu is not base64", i + 1);
	}
	if ((r = buf_grow(b, len / 4 * 3 - pad)) < 0)
		return r;
	/* The padded last group is decoded aside: EVP_DecodeBlock() writes its padding as zero bytes. */
	if ((r = unbase64_groups(b, text, pad ? len - 4 : len)) == 0 && pad) {
		if (EVP_DecodeBlock(last, (const unsigned char *)text + len - 4, 4) != 3) {
			r = err_set(ERR_INVALID, "base64: not decodable");
		} else {
			memcpy(b->data + b->len, last, 3 - pad);
			b->len += 3 - pad;
		}
	}
	if (r < 0)
		b->len = before;
	b->data[b->len] = '\0';
	return r;
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	return p;
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}
