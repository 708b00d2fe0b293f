/* benchtool.c - small measuring helpers for the bench/ scripts (compiled by them into a temp dir).
 *
 *   benchtool lat N MAXSEC -- CMD [ARG...]
 *       runs CMD N times, one after the other (posix_spawnp + waitpid, stdin
 *       /dev/null, stdout/stderr to /dev/null unless BENCH_KEEP_OUTPUT=1),
 *       prints each run's wall time in microseconds, one per line. Stops after
 *       MAXSEC seconds in total; a run still going after BENCH_RUN_TIMEOUT
 *       seconds (default 60) is killed and counts as failed; exits 1 when a run
 *       failed.
 *   benchtool rate N SLOTS MAXSEC -- CMD [ARG...]
 *       runs CMD N times with at most SLOTS running at once; prints
 *       "runs=N slots=S seconds=T rate=R" (R runs per second).
 *   benchtool stamp
 *       copies stdin to stdout line by line, each line prefixed with the
 *       CLOCK_REALTIME time it was read ("%.6f "), flushing every line.
 *   benchtool stats [SCALE]
 *       reads numbers (one per line) from stdin, prints
 *       "n=N min=.. p50=.. p90=.. p99=.. max=.. mean=.." after dividing by SCALE.
 *   benchtool waitfor MAXSEC FILE TEXT
 *       waits until FILE (which may not exist yet) contains TEXT, reading what
 *       was appended every millisecond (no process per look); exits 0 when it
 *       does, 1 after MAXSEC seconds.
 *   benchtool treecpu PID
 *       prints the CPU time, in clock ticks, of PID and every live descendant
 *       (utime + stime + cutime + cstime of each: children already reaped are
 *       in their parent's cutime/cstime, live ones are counted themselves).
 *
 * Everything is bounded: N <= 1000000, MAXSEC <= 3600.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long num(const char *s, long min, long max, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end || v < min || v > max) {
		fprintf(stderr, "benchtool: bad %s '%s' (%ld..%ld)\n", what, s, min, max);
		exit(2);
	}
	return v;
}

struct spawner {
	posix_spawn_file_actions_t fa;
	char **argv;
};

static void spawner_init(struct spawner *s, char **argv)
{
	int keep = getenv("BENCH_KEEP_OUTPUT") && !strcmp(getenv("BENCH_KEEP_OUTPUT"), "1");

	s->argv = argv;
	posix_spawn_file_actions_init(&s->fa);
	posix_spawn_file_actions_addopen(&s->fa, 0, "/dev/null", O_RDONLY, 0);
	if (!keep) {
		posix_spawn_file_actions_addopen(&s->fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_adddup2(&s->fa, 1, 2);
	}
}

static pid_t spawner_go(struct spawner *s)
{
	pid_t pid;
	int e = posix_spawnp(&pid, s->argv[0], &s->fa, NULL, s->argv, environ);

	if (e) {
		fprintf(stderr, "benchtool: cannot run '%s': %s\n", s->argv[0], strerror(e));
		exit(1);
	}
	return pid;
}

static volatile sig_atomic_t alarmed;

static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

/* Waits for pid, killing it after BENCH_RUN_TIMEOUT seconds; 0 when it exited 0. */
static int reap(pid_t pid)
{
	static unsigned limit;
	struct sigaction sa = { .sa_handler = on_alarm };
	int st;

	if (!limit) {
		const char *e = getenv("BENCH_RUN_TIMEOUT");
		long v = e ? strtol(e, NULL, 10) : 0;
		limit = v > 0 && v <= 3600 ? (unsigned)v : 60;
		sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: waitpid returns EINTR */
	}
	alarmed = 0;
	alarm(limit);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			alarm(0);
			return -1;
		}
		if (alarmed) {
			fprintf(stderr, "benchtool: run still going after %u s: killed\n", limit);
			kill(pid, SIGKILL);
			alarmed = 0;
		}
	}
	alarm(0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int cmd_lat(int argc, char **argv)
{
	struct spawner s;
	long n, i, failed = 0;
	double maxsec, t0;

	if (argc < 5 || strcmp(argv[3], "--"))
		return fprintf(stderr, "usage: benchtool lat N MAXSEC -- CMD...\n"), 2;
	n = num(argv[1], 1, 1000000, "N");
	maxsec = (double)num(argv[2], 1, 3600, "MAXSEC");
	spawner_init(&s, argv + 4);
	t0 = mono();
	for (i = 0; i < n && mono() - t0 < maxsec; i++) {
		double a = mono();
		if (reap(spawner_go(&s)) < 0)
			failed++;
		printf("%.1f\n", (mono() - a) * 1e6);
	}
	fflush(stdout);
	if (i < n)
		fprintf(stderr, "benchtool: time limit: %ld of %ld runs\n", i, n);
	if (failed)
		fprintf(stderr, "benchtool: %ld run(s) failed\n", failed);
	return failed ? 1 : 0;
}

static int cmd_rate(int argc, char **argv)
{
	struct spawner s;
	long n, slots, started = 0, done = 0, failed = 0;
	double maxsec, t0;

	if (argc < 6 || strcmp(argv[4], "--"))
		return fprintf(stderr, "usage: benchtool rate N SLOTS MAXSEC -- CMD...\n"), 2;
	n = num(argv[1], 1, 1000000, "N");
	slots = num(argv[2], 1, 4096, "SLOTS");
	maxsec = (double)num(argv[3], 1, 3600, "MAXSEC");
	spawner_init(&s, argv + 5);
	alarm((unsigned)maxsec + 60); /* the default action ends a run that hangs */
	t0 = mono();
	while (done < n) {
		int st;
		pid_t pid;
		while (started < n && started - done < slots && mono() - t0 < maxsec) {
			spawner_go(&s);
			started++;
		}
		if (started == done)
			break;
		pid = wait(&st);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
		done++;
	}
	printf("runs=%ld slots=%ld seconds=%.6f rate=%.1f\n", done, slots, mono() - t0, done / (mono() - t0));
	if (failed)
		fprintf(stderr, "benchtool: %ld run(s) failed\n", failed);
	return failed || done < n ? 1 : 0;
}

static int cmd_stamp(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, stdin)) >= 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		printf("%lld.%06ld %s", (long long)ts.tv_sec, ts.tv_nsec / 1000, line);
		if (len == 0 || line[len - 1] != '\n')
			putchar('\n');
		fflush(stdout);
	}
	free(line);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile. */
static double pct(const double *v, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static int cmd_stats(int argc, char **argv)
{
	double scale = argc > 1 ? strtod(argv[1], NULL) : 1, *v = NULL, x, sum = 0;
	size_t n = 0, cap = 0;

	if (!(scale > 0))
		scale = 1;
	while (scanf("%lf", &x) == 1 && n < 10000000) {
		if (n == cap) {
			double *nv = realloc(v, (cap = cap ? cap * 2 : 1024) * sizeof(*v));
			if (!nv)
				return 1;
			v = nv;
		}
		v[n++] = x / scale;
		sum += x / scale;
	}
	if (n == 0) {
		puts("n=0");
		return 1;
	}
	qsort(v, n, sizeof(*v), cmp);
	printf("n=%zu min=%.3f p50=%.3f p90=%.3f p99=%.3f max=%.3f mean=%.3f\n", n, v[0], pct(v, n, 50),
	       pct(v, n, 90), pct(v, n, 99), v[n - 1], sum / (double)n);
	free(v);
	return 0;
}

static int cmd_waitfor(int argc, char **argv)
{
	static char buf[1 << 16];
	const char *text;
	size_t tlen, keep = 0;
	double maxsec, t0;
	int fd = -1;

	if (argc != 4 || !*argv[3] || strlen(argv[3]) >= sizeof(buf) / 2)
		return fprintf(stderr, "usage: benchtool waitfor MAXSEC FILE TEXT\n"), 2;
	maxsec = (double)num(argv[1], 1, 3600, "MAXSEC");
	text = argv[3];
	tlen = strlen(text);
	t0 = mono();
	for (;;) {
		ssize_t n;
		if (fd < 0)
			fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		/* buf holds the last tlen - 1 bytes already seen, then what was appended since. */
		while (fd >= 0 && (n = read(fd, buf + keep, sizeof(buf) - keep)) > 0) {
			size_t len = keep + (size_t)n;
			if (memmem(buf, len, text, tlen))
				return close(fd), 0;
			keep = len < tlen - 1 ? len : tlen - 1;
			memmove(buf, buf + len - keep, keep);
		}
		if (mono() - t0 > maxsec)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "benchtool: '%s' not in %s after %.0f s\n", text, argv[2], maxsec);
	return 1;
}

/* utime + stime + cutime + cstime of pid, plus those of its live descendants (depth <= 64). */
static long long tree_ticks(long pid, int depth)
{
	char path[64], line[1024], *p;
	long long t = 0, v;
	FILE *f;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) != NULL) {
			/* After "pid (comm)": field 3 is state; utime..cstime are fields 14..17. */
			for (int field = 3; field <= 17; field++) {
				while (*++p == ' ')
					;
				if (!*p)
					break;
				if (field >= 14 && sscanf(p, "%lld", &v) == 1)
					t += v;
				p = strchr(p, ' ');
				if (!p)
					break;
			}
		}
		fclose(f);
	}
	if (depth >= 64)
		return t;
	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	if ((d = opendir(path)) == NULL)
		return t;
	while ((e = readdir(d)) != NULL) {
		char cpath[320];
		long child;
		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%ld/task/%s/children", pid, e->d_name);
		if ((f = fopen(cpath, "r")) == NULL)
			continue;
		while (fscanf(f, "%ld", &child) == 1)
			t += tree_ticks(child, depth + 1);
		fclose(f);
	}
	closedir(d);
	return t;
}

static int cmd_treecpu(int argc, char **argv)
{
	if (argc != 2)
		return fprintf(stderr, "usage: benchtool treecpu PID\n"), 2;
	printf("%lld\n", tree_ticks(num(argv[1], 1, 1L << 30, "PID"), 0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "lat"))
		return cmd_lat(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "rate"))
		return cmd_rate(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "stamp"))
		return cmd_stamp();
	if (argc >= 2 && !strcmp(argv[1], "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "waitfor"))
		return cmd_waitfor(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "treecpu"))
		return cmd_treecpu(argc - 1, argv + 1);
	fprintf(stderr, "usage: benchtool lat|rate|stamp|stats|waitfor|treecpu ... (see the comment at the top of benchtool.c)\n");
	return 2;
}
