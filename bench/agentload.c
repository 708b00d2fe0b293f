/* agentload.c - simulated dispatch agents for bench/agents.sh: joins N agents to a dispatchd and keeps
 * each in a long poll, for a bounded time. Raw non-blocking sockets and one epoll loop; plain HTTP/1.1
 * with keep-alive, one connection per agent (loopback only).
 *
 *   agentload --port P --join-token-file F --agents N --hold S
 *             [--host 127.0.0.1] [--src K] [--wait 55] [--joins-at-once C] [--max-s T]
 *
 * Each agent: connect (from 127.0.0.(2 + i % K), so that N connections do not run out of ephemeral
 * ports), POST /v1/agent/join with the join token and a distinct name, then
 * GET /v1/agent/messages?after=SEQ&wait=W with its node token, issued again whenever answered.
 * At most C joins are in flight. Once every agent has joined and sent its first poll, a line
 * "held N T" (T: CLOCK_REALTIME) goes to stdout; after S more seconds (or --max-s T in total) every
 * connection is closed and a summary line "summary ..." is printed. Progress goes to stderr once a
 * second. A connection that fails is opened again (at most 3 times per agent).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX 8192
#define RETRIES 3

enum state { S_IDLE, S_CONNECTING, S_SEND, S_RECV, S_DEAD };

struct agent {
	int fd;
	enum state st;
	int joined;	 /* has a node token */
	int polling;	 /* the current request is a poll */
	int retries;
	long long seq;
	char token[80];
	char out[1024];
	size_t out_len, out_off;
	char in[BUF_MAX];
	size_t in_len;
};

static struct {
	const char *host;
	int port, src, wait_s, joins_at_once;
	long agents;
	double hold_s, max_s;
	char join_token[128];
} opt = { "127.0.0.1", 0, 4, 55, 100, 0, 0, 0, "" };

static struct agent *ag;
static int ep;
static long n_joined, n_polling, n_answered, n_errors, n_reconnects, joins_in_flight;

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
	fprintf(stderr, "agentload: %s\n", msg);
	exit(1);
}

static void prepare_join(long i)
{
	struct agent *a = &ag[i];
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"name\":\"sim-%ld\",\"isa\":\"sim\",\"levels\":[\"baseline\"],\"cores\":1,"
			 "\"memory\":1073741824,\"load\":0,\"running\":[]}",
			 i);

	a->out_len = (size_t)snprintf(a->out, sizeof(a->out),
				      "POST /v1/agent/join HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
				      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				      opt.host, opt.port, a->joined ? a->token : opt.join_token, n, body);
	a->out_off = 0;
	a->polling = 0;
}

static void prepare_poll(long i)
{
	struct agent *a = &ag[i];

	a->out_len = (size_t)snprintf(a->out, sizeof(a->out),
				      "GET /v1/agent/messages?after=%lld&wait=%d HTTP/1.1\r\nHost: %s:%d\r\n"
				      "Authorization: Bearer %s\r\n\r\n",
				      a->seq, opt.wait_s, opt.host, opt.port, a->token);
	a->out_off = 0;
	a->polling = 1;
}

static void set_events(long i, unsigned ev, int add)
{
	struct epoll_event e = { .events = ev, .data.u64 = (uint64_t)i };

	if (epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, ag[i].fd, &e) < 0)
		die("epoll_ctl failed");
}

static void start_connect(long i)
{
	struct agent *a = &ag[i];
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	int one = 1;

	a->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0)
		die("socket failed (raise ulimit -n)");
	setsockopt(a->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % opt.src));
	if (bind(a->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		die("bind to a 127.0.0.x source address failed");
	dst.sin_port = htons((uint16_t)opt.port);
	inet_pton(AF_INET, opt.host, &dst.sin_addr);
	if (connect(a->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)
		die("connect failed");
	a->st = S_CONNECTING;
	a->in_len = 0;
	if (a->joined) {
		prepare_poll(i);
		n_polling++;
	} else {
		prepare_join(i);
		joins_in_flight++;
	}
	set_events(i, EPOLLOUT, 1);
}

static void fail(long i)
{
	struct agent *a = &ag[i];

	n_errors++;
	if (!a->joined)
		joins_in_flight--;
	if (a->polling)
		n_polling--;
	epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
	close(a->fd);
	a->fd = -1;
	if (a->retries++ < RETRIES) {
		n_reconnects++;
		start_connect(i);
	} else {
		a->st = S_DEAD;
	}
}

/* A complete response in a->in: its status and body, or 0 when more is needed. */
static int response(struct agent *a, int *status, const char **body, size_t *body_len, size_t *total)
{
	char *end, *cl;
	size_t hlen, blen;

	a->in[a->in_len] = '\0';
	end = strstr(a->in, "\r\n\r\n");
	if (!end)
		return 0;
	hlen = (size_t)(end - a->in) + 4;
	cl = strcasestr(a->in, "\r\nContent-Length:");
	blen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
	if (a->in_len < hlen + blen)
		return 0;
	*status = (int)strtol(a->in + 9, NULL, 10);
	*body = a->in + hlen;
	*body_len = blen;
	*total = hlen + blen;
	return 1;
}

static void on_response(long i, int status, const char *body)
{
	struct agent *a = &ag[i];
	const char *p;

	if (!a->polling) {
		const char *q;
		size_t len;

		p = strstr(body, "\"token\"");
		q = p ? strchr(p + 7, '"') : NULL;
		len = q ? strspn(q + 1, "0123456789abcdef") : 0;
		if (status != 200 || len < 16 || len >= sizeof(a->token)) {
			fprintf(stderr, "agentload: join %ld: HTTP %d: %.200s\n", i, status, body);
			a->retries = RETRIES; /* no point in trying again */
			fail(i);
			return;
		}
		memcpy(a->token, q + 1, len);
		a->token[len] = '\0';
		a->joined = 1;
		joins_in_flight--;
		n_joined++;
		n_polling++;
		prepare_poll(i);
		return;
	}
	if (status != 200) {
		fprintf(stderr, "agentload: poll %ld: HTTP %d: %.200s\n", i, status, body);
		fail(i);
		return;
	}
	n_answered++;
	p = strstr(body, "\"seq\"");
	if (p) {
		long long s = strtoll(p + 6, NULL, 10);
		if (s > a->seq)
			a->seq = s;
	}
	prepare_poll(i);
}

static void on_event(long i, unsigned ev)
{
	struct agent *a = &ag[i];

	if (ev & (EPOLLERR | EPOLLHUP) && a->st != S_RECV) {
		fail(i);
		return;
	}
	if (a->st == S_CONNECTING)
		a->st = S_SEND;
	if (a->st == S_SEND) {
		while (a->out_off < a->out_len) {
			ssize_t n = send(a->fd, a->out + a->out_off, a->out_len - a->out_off, MSG_NOSIGNAL);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0) {
				fail(i);
				return;
			}
			a->out_off += (size_t)n;
		}
		a->st = S_RECV;
		set_events(i, EPOLLIN, 0);
		return;
	}
	if (a->st == S_RECV) {
		for (;;) {
			int status;
			const char *body;
			size_t blen, total;
			ssize_t n = recv(a->fd, a->in + a->in_len, BUF_MAX - 1 - a->in_len, 0);
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0 || (a->in_len += (size_t)n) >= BUF_MAX - 1) {
				fail(i);
				return;
			}
			if (!response(a, &status, &body, &blen, &total))
				continue;
			on_response(i, status, body);
			if (a->st == S_DEAD || a->fd < 0)
				return;
			a->in_len = 0; /* one request at a time: nothing follows the response */
			a->st = S_SEND;
			set_events(i, EPOLLOUT, 0);
			return;
		}
	}
}

static int read_token(const char *path)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(opt.join_token, 1, sizeof(opt.join_token) - 1, f);
	fclose(f);
	opt.join_token[n] = '\0';
	opt.join_token[strcspn(opt.join_token, "\r\n")] = '\0';
	return opt.join_token[0] ? 0 : -1;
}

static double num(const char *s, double min, double max, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "agentload: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[512];
	struct rlimit rl;
	double t0, held_at = 0, last_report = 0;
	long next = 0;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(o, "--help")) {
			puts("usage: agentload --port P --join-token-file F --agents N --hold S [--host 127.0.0.1] [--src K]\n"
			     "                 [--wait 55] [--joins-at-once C] [--max-s T]  (see agentload.c)");
			return 0;
		}
		if (!v)
			die("an option is missing its value (see --help)");
		if (!strcmp(o, "--port"))
			opt.port = (int)num(v, 1, 65535, "port");
		else if (!strcmp(o, "--host"))
			opt.host = v;
		else if (!strcmp(o, "--join-token-file")) {
			if (read_token(v) < 0)
				die("cannot read the join token file");
		} else if (!strcmp(o, "--agents"))
			opt.agents = (long)num(v, 1, 100000, "agents");
		else if (!strcmp(o, "--hold"))
			opt.hold_s = num(v, 0, 3600, "hold");
		else if (!strcmp(o, "--src"))
			opt.src = (int)num(v, 1, 250, "src");
		else if (!strcmp(o, "--wait"))
			opt.wait_s = (int)num(v, 0, 60, "wait");
		else if (!strcmp(o, "--joins-at-once"))
			opt.joins_at_once = (int)num(v, 1, 10000, "joins-at-once");
		else if (!strcmp(o, "--max-s"))
			opt.max_s = num(v, 1, 7200, "max-s");
		else
			die("unknown option (see --help)");
		i++;
	}
	if (!opt.port || !opt.agents || !opt.join_token[0])
		die("--port, --join-token-file and --agents are required");
	if (!opt.max_s)
		opt.max_s = opt.hold_s + 600;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((rlim_t)opt.agents + 16 > rl.rlim_cur)
		die("RLIMIT_NOFILE is lower than --agents: raise ulimit -Hn");
	ag = calloc((size_t)opt.agents, sizeof(*ag));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!ag || ep < 0)
		die("out of memory");
	for (long i = 0; i < opt.agents; i++)
		ag[i].fd = -1;
	t0 = now_mono();
	for (;;) {
		double t = now_mono();
		int n;

		while (next < opt.agents && joins_in_flight < opt.joins_at_once)
			start_connect(next++);
		if (!held_at && next == opt.agents && joins_in_flight == 0) {
			long alive = 0;
			for (long i = 0; i < opt.agents; i++)
				alive += ag[i].joined && ag[i].st != S_DEAD;
			held_at = t;
			printf("held %ld %.6f joined_in_s=%.3f\n", alive, now_real(), t - t0);
			fflush(stdout);
		}
		if (t - last_report >= 1) {
			fprintf(stderr, "agentload: %.0f s: joined %ld, polling %ld, answered %ld, errors %ld\n", t - t0,
				n_joined, n_polling, n_answered, n_errors);
			last_report = t;
		}
		if ((held_at && t - held_at >= opt.hold_s) || t - t0 >= opt.max_s)
			break;
		n = epoll_wait(ep, evs, 512, 200);
		for (int k = 0; k < n; k++)
			on_event((long)evs[k].data.u64, evs[k].events);
	}
	for (long i = 0; i < opt.agents; i++)
		if (ag[i].fd >= 0)
			close(ag[i].fd);
	printf("summary agents=%ld joined=%ld answered=%ld errors=%ld reconnects=%ld held=%s seconds=%.1f\n", opt.agents,
	       n_joined, n_answered, n_errors, n_reconnects, held_at ? "yes" : "no", now_mono() - t0);
	free(ag);
	return held_at ? 0 : 1;
}
