/*
 * replay_main.c - runs a libFuzzer harness over files, without libFuzzer.
 *
 *   fuzz_NAME_replay PATH...
 *
 * Every PATH is an input file or a directory whose regular files (not
 * recursively, dot files skipped, in name order) are inputs. Each input is
 * copied to a buffer of exactly its size, so that ASan sees any overread,
 * and passed to LLVMFuzzerTestOneInput(). Arguments starting with '-' are
 * libFuzzer flags and ignored. Exits 0 after "N inputs replayed", 1 when an
 * input cannot be read or none was found; a harness that finds a bug aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define INPUT_MAX (1u << 20) /* larger files are reported, not replayed */

/* libFuzzer makes this optional; so do we. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t done = 0;
	int fd, r = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cannot read '%s': %s\n", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > INPUT_MAX) {
		fprintf(stderr, "cannot replay '%s': not a regular file of at most %u bytes\n", path,
			INPUT_MAX);
		goto out;
	}
	/* malloc(0) may return NULL; libFuzzer passes a valid pointer even then. */
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		fprintf(stderr, "out of memory\n");
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "cannot read '%s': %s\n", path, n ? strerror(errno) : "file shrank");
			goto out;
		}
		done += (size_t)n;
	}
	fprintf(stderr, "replaying '%s'\n", path);
	LLVMFuzzerTestOneInput(data, done);
	r = 0;
out:
	free(data);
	if (fd >= 0)
		close(fd);
	return r;
}

static int skip_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Replays the files of dir; adds how many to *count. */
static int replay_dir(const char *dir, unsigned *count)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, skip_dot, alphasort), r = 0;

	if (n < 0) {
		fprintf(stderr, "cannot read directory '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
		char *path = malloc(len);
		struct stat st;

		if (!path) {
			fprintf(stderr, "out of memory\n");
			r = -1;
		} else {
			snprintf(path, len, "%s/%s", dir, names[i]->d_name);
			if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				r = replay_file(path);
				*count += r == 0;
			}
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	struct stat st;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		int r;

		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "cannot read '%s': %s\n", argv[i], strerror(errno));
			return 1;
		}
		r = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i]);
		if (r < 0)
			return 1;
		count += !S_ISDIR(st.st_mode);
	}
	printf("%u inputs replayed\n", count);
	if (count == 0) {
		fprintf(stderr, "no inputs found\n");
		return 1;
	}
	return 0;
}
