/*
 * replay_main.c - runs a libFuzzer harness over files, without libFuzzer.
 *
 *   fuzz_NAME_replay PATH...
 *
 * Every PATH is an input file or a directory whose regular files (not
 * recursively, dot files skipped, in name order) are inputs. Arguments
 * starting with '-' are libFuzzer flags and ignored.
 *
 * The inputs run in a child process, one after the other, each copied to a
 * buffer of exactly its size so that ASan sees any overread. Like libFuzzer,
 * the child counts allocations during an input and, when more were made than
 * freed, asks LeakSanitizer whether any leaked; a leak aborts. When the
 * child dies, the input it was running is marked failed and a new child
 * goes on with the next one, so one failure does not hide the others.
 *
 * Prints "N inputs replayed" and exits 0, or "N inputs replayed, K failed"
 * and exits 1; 1 also when an input cannot be read or there is none.
 * Under gdb: set follow-fork-mode child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

#define INPUT_MAX (1u << 20) /* larger files are refused */

/* libFuzzer makes this optional; so do we. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* The sanitizers' interfaces; absent (NULL) in a build without them. */
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
					      void (*f)(const volatile void *))
	__attribute__((weak));
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

struct inputs {
	char **paths;
	size_t n, alloc;
};

static volatile int counting;
static volatile size_t mallocs, frees;

static void on_malloc(const volatile void *p, size_t size)
{
	if (counting)
		mallocs++;
}

static void on_free(const volatile void *p)
{
	if (counting && p)
		frees++;
}

/* Reads path into a buffer of exactly its size (new; at least 1 byte). */
static uint8_t *read_input(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *data = NULL;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cannot read '%s': %s\n", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > INPUT_MAX) {
		fprintf(stderr, "cannot replay '%s': not a regular file of at most %u bytes\n", path,
			INPUT_MAX);
		goto fail;
	}
	/* libFuzzer passes a valid pointer even for an empty input. */
	if (!(data = malloc(st.st_size ? (size_t)st.st_size : 1))) {
		fprintf(stderr, "out of memory\n");
		goto fail;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "cannot read '%s': %s\n", path, n ? strerror(errno) : "file shrank");
			goto fail;
		}
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return data;
fail:
	free(data);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* In the child: runs inputs from first on, telling the parent each index. */
static _Noreturn void run_inputs(const struct inputs *in, size_t first, int report)
{
	int hooks = __sanitizer_install_malloc_and_free_hooks &&
		    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);

	for (size_t i = first; i < in->n; i++) {
		uint8_t *data;
		size_t len;

		if (write(report, &i, sizeof(i)) != sizeof(i))
			_exit(126);
		fprintf(stderr, "replaying '%s'\n", in->paths[i]);
		if (!(data = read_input(in->paths[i], &len)))
			_exit(125);
		mallocs = frees = 0;
		counting = 1;
		LLVMFuzzerTestOneInput(data, len);
		counting = 0;
		free(data);
		if (hooks && mallocs > frees && __lsan_do_recoverable_leak_check &&
		    __lsan_do_recoverable_leak_check()) {
			fprintf(stderr, "'%s' leaks memory\n", in->paths[i]);
			abort();
		}
	}
	exit(0); /* exit(), not _exit(): the harness cleans up, LSan checks */
}

/*
 * Runs every input in children. Returns the number that failed, or -1 when
 * an input could not be read or a child could not be made.
 */
static int replay(const struct inputs *in)
{
	size_t next = 0, running;
	int failed = 0;

	while (next < in->n) {
		int fds[2], status;
		pid_t pid;
		ssize_t n;

		fflush(NULL);
		if (pipe(fds) < 0 || (pid = fork()) < 0) {
			fprintf(stderr, "cannot start a child: %s\n", strerror(errno));
			return -1;
		}
		if (pid == 0) {
			close(fds[0]);
			run_inputs(in, next, fds[1]);
		}
		close(fds[1]);
		running = SIZE_MAX;
		while ((n = read(fds[0], &running, sizeof(running))) != 0)
			if (n < 0 && errno != EINTR)
				break;
		close(fds[0]);
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				return -1;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return failed;
		if (WIFEXITED(status) && WEXITSTATUS(status) >= 125)
			return -1;
		if (running == SIZE_MAX || running < next) {
			fprintf(stderr, "the replay child died before any input\n");
			return -1;
		}
		if (WIFSIGNALED(status))
			fprintf(stderr, "FAILED '%s': %s\n", in->paths[running], strsignal(WTERMSIG(status)));
		else
			fprintf(stderr, "FAILED '%s': exit status %d\n", in->paths[running],
				WEXITSTATUS(status));
		failed++;
		next = running + 1;
	}
	return failed;
}

static int add_input(struct inputs *in, const char *dir, const char *name)
{
	size_t len = strlen(dir) + (name ? strlen(name) + 1 : 0) + 1;
	char *path;

	if (in->n == in->alloc) {
		char **p = realloc(in->paths, (2 * in->alloc + 64) * sizeof(*p));
		if (!p)
			return -1;
		in->paths = p;
		in->alloc = 2 * in->alloc + 64;
	}
	if (!(path = malloc(len)))
		return -1;
	snprintf(path, len, name ? "%s/%s" : "%s", dir, name ? name : "");
	in->paths[in->n++] = path;
	return 0;
}

static int skip_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Adds the regular files of dir, in name order. */
static int add_dir(struct inputs *in, const char *dir)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, skip_dot, alphasort), r = 0;

	if (n < 0) {
		fprintf(stderr, "cannot read directory '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct stat st;

		if (r == 0 && (r = add_input(in, dir, names[i]->d_name)) == 0 &&
		    (stat(in->paths[in->n - 1], &st) < 0 || !S_ISREG(st.st_mode)))
			free(in->paths[--in->n]);
		free(names[i]);
	}
	free(names);
	if (r < 0)
		fprintf(stderr, "out of memory\n");
	return r;
}

int main(int argc, char **argv)
{
	struct inputs in = { 0 };
	struct stat st;
	int failed = -1;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "cannot read '%s': %s\n", argv[i], strerror(errno));
			goto out;
		}
		if (S_ISDIR(st.st_mode) ? add_dir(&in, argv[i]) < 0 : add_input(&in, argv[i], NULL) < 0)
			goto out;
	}
	if (in.n == 0) {
		fprintf(stderr, "no inputs found\n");
		goto out;
	}
	failed = replay(&in);
	if (failed > 0)
		printf("%zu inputs replayed, %d failed\n", in.n, failed);
	else if (failed == 0)
		printf("%zu inputs replayed\n", in.n);
out:
	for (size_t i = 0; i < in.n; i++)
		free(in.paths[i]);
	free(in.paths);
	return failed == 0 ? 0 : 1;
}
