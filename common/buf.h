/* buf.h - a growable byte buffer with a hard size cap. */
#ifndef DISPATCH_BUF_H
#define DISPATCH_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * The contents are always NUL-terminated (the NUL is not counted in len),
 * so a buf of text can be used as a C string. Appending past cap fails
 * with ERR_LIMIT and leaves the buffer unchanged.
 */
struct buf {
	char *data;
	size_t len;
	size_t alloc;
	size_t cap;
};

#define BUF_INIT(c) { NULL, 0, 0, (c) }

void buf_init(struct buf *b, size_t cap);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);

int buf_grow(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Appends data as base64 (RFC 4648, padded, no line breaks). */
int buf_append_base64(struct buf *b, const void *data, size_t len);

/*
 * Appends the bytes that the base64 text (padded, no line breaks or other
 * characters) stands for: ERR_INVALID for anything else.
 */
int buf_append_unbase64(struct buf *b, const char *text, size_t len);

/* Returns the contents (new; caller frees) and leaves b empty. */
char *buf_detach(struct buf *b, size_t *len);

/* The contents as a string: never NULL, "" when empty (borrowed). */
const char *buf_str(const struct buf *b);

#endif
