/* digest.c - SHA-256 through OpenSSL's EVP interface. */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "error.h"

struct digest_ctx {
	EVP_MD_CTX *md;
};

digest_ctx *digest_new(void)
{
	digest_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		digest_free(c);
		return NULL;
	}
	return c;
}

void digest_update(digest_ctx *c, const void *data, size_t len)
{
	EVP_DigestUpdate(c->md, data, len);
}

void digest_update_str(digest_ctx *c, const char *s)
{
	uint64_t n = s ? strlen(s) : UINT64_MAX;
	unsigned char le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(n >> (8 * i));
	digest_update(c, le, sizeof(le));
	if (s)
		digest_update(c, s, strlen(s));
}

static void to_hex(digest_hex *out, const unsigned char *md)
{
	static const char hx[] = "0123456789abcdef";

	for (int i = 0; i < DIGEST_LEN; i++) {
		out->hex[2 * i] = hx[md[i] >> 4];
		out->hex[2 * i + 1] = hx[md[i] & 15];
	}
	out->hex[DIGEST_HEX_LEN] = '\0';
}

void digest_final(digest_ctx *c, digest_hex *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(c->md, md, &n);
	to_hex(out, md);
	digest_free(c);
}

void digest_free(digest_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md);
	free(c);
}

void digest_bytes(digest_hex *out, const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	to_hex(out, md);
}

int digest_file(digest_hex *out, const char *path, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return err_errno(errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "cannot open '%s'", path);
	r = digest_fd(out, fd, path, size);
	close(fd);
	return r;
}

int digest_fd(digest_hex *out, int fd, const char *path, uint64_t *size)
{
	unsigned char chunk[1 << 16];
	digest_ctx *c = digest_new();
	uint64_t total = 0;
	ssize_t n;

	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			digest_free(c);
			return err_errno(ERR_IO, errno, "cannot read '%s'", path);
		}
		digest_update(c, chunk, (size_t)n);
		total += (uint64_t)n;
	}
	digest_final(c, out);
	if (size)
		*size = total;
	return 0;
}

int digest_is_valid(const char *s)
{
	size_t i;

	if (!s)
		return 0;
	for (i = 0; i < DIGEST_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}
