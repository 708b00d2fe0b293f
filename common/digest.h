/* digest.h - SHA-256 digests of bytes, files and streams, as hex strings. */
#ifndef DISPATCH_DIGEST_H
#define DISPATCH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN 32
#define DIGEST_HEX_LEN 64

/* A 64-character lowercase hex digest plus NUL. */
typedef struct {
	char hex[DIGEST_HEX_LEN + 1];
} digest_hex;

typedef struct digest_ctx digest_ctx;

/* Incremental hashing. digest_new() returns NULL on allocation failure. */
digest_ctx *digest_new(void);
void digest_update(digest_ctx *c, const void *data, size_t len);
/* Writes the digest and frees c. */
void digest_final(digest_ctx *c, digest_hex *out);
void digest_free(digest_ctx *c);

/* Adds a length-prefixed string, so that ("ab","c") and ("a","bc") differ. */
void digest_update_str(digest_ctx *c, const char *s);

void digest_bytes(digest_hex *out, const void *data, size_t len);
int digest_file(digest_hex *out, const char *path, uint64_t *size);
/* Hashes what is left to read of fd (not closed); path names it in errors. */
int digest_fd(digest_hex *out, int fd, const char *path, uint64_t *size);

/* Whether s is 64 lowercase hex characters. */
int digest_is_valid(const char *s);

#endif
