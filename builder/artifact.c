/* artifact.c - packing, verifying and unpacking artifact bundles. */
#include "artifact.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "error.h"
#include "fsutil.h"

int artifact_check_elf(const char *path, int machine, int bits, int big_endian)
{
	unsigned char h[20];
	int fd, m;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(ERR_NOTFOUND, errno, "cannot open '%s'", path);
	n = read(fd, h, sizeof(h));
	close(fd);
	if (n < (ssize_t)sizeof(h) || memcmp(h, ELFMAG, SELFMAG) != 0)
		return err_set(ERR_INVALID, "'%s' is not an ELF executable", path);
	if (h[EI_CLASS] != (bits == 64 ? ELFCLASS64 : ELFCLASS32) ||
	    h[EI_DATA] != (big_endian ? ELFDATA2MSB : ELFDATA2LSB))
		return err_set(ERR_INVALID, "'%s' is a %d-bit %s-endian ELF file, expected %d-bit %s-endian",
			       path, h[EI_CLASS] == ELFCLASS64 ? 64 : 32,
			       h[EI_DATA] == ELFDATA2MSB ? "big" : "little", bits, big_endian ? "big" : "little");
	m = h[EI_DATA] == ELFDATA2MSB ? (h[18] << 8 | h[19]) : (h[19] << 8 | h[18]);
	if (m != machine)
		return err_set(ERR_INVALID, "'%s' is built for ELF machine %d, expected %d (was the "
			       "target's compiler used?)", path, m, machine);
	return 0;
}

int artifact_pack(digest_hex *out, cas *store, const char *exe, const char *entry, json_t *meta)
{
	char *stage = NULL, *bin = NULL, *dst = NULL, *meta_path = NULL, *bundle = NULL;
	char *text = NULL;
	int r;

	if ((r = fs_mkdtemp(&stage, cas_tmpdir(store), "artifact")) < 0)
		return r;
	bin = fs_join(stage, "bin");
	dst = bin ? fs_join(bin, entry) : NULL;
	meta_path = fs_join(stage, "meta.json");
	bundle = fs_join(cas_tmpdir(store), "bundle-XXXXXX");
	text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!dst || !meta_path || !bundle || !text) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	int fd = mkstemp(bundle);
	if (fd < 0) {
		r = err_errno(ERR_IO, errno, "cannot create a file in '%s'", cas_tmpdir(store));
		goto out;
	}
	close(fd);
	if ((r = fs_mkdir_p(bin, 0755)) < 0 || (r = fs_copy_file(exe, dst)) < 0 ||
	    (r = fs_write_atomic(meta_path, text, strlen(text), 0644)) < 0 ||
	    (r = bundle_pack_dir(stage, bundle)) < 0)
		goto out;
	r = cas_adopt(store, out, bundle);
out:
	if (bundle)
		unlink(bundle);
	if (stage)
		fs_rm_rf(stage);
	free(stage);
	free(bin);
	free(dst);
	free(meta_path);
	free(bundle);
	free(text);
	return r;
}

int artifact_extract_exe(cas *store, const char *digest, const char *entry, const char *dest)
{
	char *stage = NULL, *blob = NULL, *exe = NULL, *tmp = NULL;
	size_t n;
	int r;

	if ((r = cas_verify(store, digest, NULL)) < 0)
		return r;
	if ((r = fs_mkdtemp(&stage, cas_tmpdir(store), "extract")) < 0)
		return r;
	blob = cas_path(store, digest);
	n = strlen(dest) + 16;
	tmp = malloc(n);
	if (!blob || !tmp) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(tmp, n, "%s.tmp%d", dest, (int)getpid());
	if ((r = bundle_extract_file(blob, stage, 0, NULL)) < 0)
		goto out;
	n = strlen(stage) + strlen(entry) + 6;
	exe = malloc(n);
	if (!exe) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(exe, n, "%s/bin/%s", stage, entry);
	if ((r = fs_copy_file(exe, tmp)) < 0)
		goto out;
	chmod(tmp, 0755);
	r = fs_commit(tmp, dest);
out:
	if (tmp)
		unlink(tmp);
	if (stage)
		fs_rm_rf(stage);
	free(stage);
	free(blob);
	free(exe);
	free(tmp);
	return r;
}
