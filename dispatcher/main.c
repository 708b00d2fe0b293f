/* main.c - dispatchd: the central daemon. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "balance.h"
#include "builder.h"
#include "digest.h"
#include "error.h"
#include "fsutil.h"
#include "http.h"
#include "jobs.h"
#include "log.h"
#include "scheduler.h"
#include "source.h"

static const char usage[] =
	"usage: dispatchd --state-dir DIR [--listen ADDR:PORT] [options]\n"
	"\n"
	"The central daemon: HTTP/JSON API (docs/api.md), job and node store,\n"
	"builder, scheduler, artifact and state server.\n"
	"\n"
	"      --state-dir DIR   where the store, tokens, jobs, logs and cache live (required)\n"
	"      --listen A:P      address to serve on (default 127.0.0.1:7878; port 0 picks one)\n"
	"      --tls-cert FILE   serve HTTPS with this certificate (PEM) ...\n"
	"      --tls-key FILE    ... and this key; required on addresses other than loopback\n"
	"      --insecure-http   serve plain HTTP on such an address all the same (tests only)\n"
	"      --heartbeat S     agent heartbeat interval (default 5)\n"
	"      --ttl S           a node without a heartbeat for S seconds is lost (default 20)\n"
	"      --build-jobs N    compilers run at once (default: CPUs)\n"
	"      --toolchains DIR  target descriptions (default: the installed ones)\n"
	"  -v, --verbose         log more\n"
	"\n"
	"On first start it writes DIR/operator.token (for the dispatch CLI) and\n"
	"DIR/join.token (for agents), mode 0600, and DIR/dispatchd.url. It holds\n"
	"DIR/dispatchd.lock while it runs: one dispatchd per DIR.\n";

static int token_file(struct core *c, const char *name, char hash[65])
{
	char *path = fs_join(c->state_dir, name);
	struct buf b = BUF_INIT(1024);
	char token[65];
	digest_hex d;
	int r;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	r = fs_read_file(&b, path, 1024);
	if (r == ERR_NOTFOUND) {
		if (core_token(token) < 0) {
			r = err_set(ERR_IO, "cannot read randomness");
			goto out;
		}
		if ((r = fs_write_atomic(path, token, strlen(token), 0600)) < 0)
			goto out;
		buf_puts(&b, token);
		log_info("created %s", path);
	} else if (r < 0) {
		goto out;
	}
	b.len = strcspn(buf_str(&b), "\r\n");
	if (b.len < 16) {
		r = err_set(ERR_INVALID, "'%s' holds no token", path);
		goto out;
	}
	digest_bytes(&d, b.data, b.len);
	memcpy(hash, d.hex, 65);
out:
	buf_release(&b);
	free(path);
	return r;
}

static void *timer_thread(void *arg)
{
	struct core *c = arg;
	double last_check = 0;
	struct timespec tick = { 0, 250 * 1000000L };

	for (;;) {
		double now;
		nanosleep(&tick, NULL);
		core_lock(c);
		if (c->stopping) {
			core_unlock(c);
			break;
		}
		now = core_now();
		http_resume_expired(c, now);
		if (now - last_check >= 1.0) {
			/* One transaction for the pass: one fsync at most. */
			int tx = store_begin(c->db) == 0;
			sched_check_nodes(c, now);
			balance_pass(c);
			if (tx && store_commit(c->db) < 0)
				store_rollback(c->db);
			last_check = now;
		}
		core_unlock(c);
	}
	return NULL;
}

static int is_loopback(const char *addr)
{
	return !strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]", 5);
}

/*
 * One dispatchd per state directory: two would each schedule, send and
 * hold long polls over one store. The lock lives as long as the process.
 */
static int lock_state(const char *state_dir)
{
	char *path = fs_join(state_dir, "dispatchd.lock");
	int fd, r = path ? fs_lock_file(&fd, path) : err_set(ERR_NOMEM, "out of memory");

	if (r == ERR_EXISTS)
		err_set(r, "another dispatchd uses '%s' (it holds '%s')", state_dir, path);
	free(path);
	return r; /* the descriptor stays open: the lock with it */
}

static int setup(struct core *c)
{
	struct rlimit rl;
	char *db;
	int r;

	if ((r = fs_mkdir_p(c->state_dir, 0700)) < 0 || (r = lock_state(c->state_dir)) < 0)
		return r;
	c->cache_dir = fs_join(c->state_dir, "cache");
	c->jobs_dir = fs_join(c->state_dir, "jobs");
	c->logs_dir = fs_join(c->state_dir, "logs");
	db = fs_join(c->state_dir, "dispatch.db");
	if (!c->cache_dir || !c->jobs_dir || !c->logs_dir || !db)
		return err_set(ERR_NOMEM, "out of memory");
	if ((r = fs_mkdir_p(c->jobs_dir, 0755)) < 0 || (r = fs_mkdir_p(c->logs_dir, 0700)) < 0 ||
	    (r = fs_mkdir_p(c->cache_dir, 0755)) < 0 || (r = builder_open_store(&c->blobs, c->cache_dir)) < 0 ||
	    (r = token_file(c, "operator.token", c->operator_hash)) < 0 ||
	    (r = token_file(c, "join.token", c->join_hash)) < 0 || (r = store_open(&c->db, db)) < 0) {
		free(db);
		return r;
	}
	free(db);
	/* Without target descriptions nothing can be built; what is stored is still served. */
	if (toolchain_set_load(&c->toolchains, c->toolchains_dir ? c->toolchains_dir : toolchain_default_dir()) < 0)
		log_error("%s: no job can be built", err_msg());
	/* Long polls hold a descriptor each: allow many. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* After a restart every node gets a full TTL to come back before it is lost, and to take up its starts. */
	store_run(c->db, NULL, "UPDATE nodes SET last_seen = ? WHERE state = 'up'", "d", core_now());
	store_run(c->db, NULL, "UPDATE instances SET placed_at = ? WHERE state = 'starting'", "d", core_now());
	/* Placements whose start message was never fetched are still queued; nothing else to redo. */
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "heartbeat", required_argument, NULL, 'H' },
		{ "ttl", required_argument, NULL, 'T' },
		{ "build-jobs", required_argument, NULL, 'j' },
		{ "toolchains", required_argument, NULL, 't' },
		{ "insecure-http", no_argument, NULL, 'I' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct core c = { .heartbeat_s = 5, .ttl_s = 20 };
	const char *listen_addr = "127.0.0.1:7878", *cert = NULL, *key = NULL;
	struct http_server *srv = NULL;
	pthread_t builder, timer;
	sigset_t sigs;
	char url[300], *url_path;
	int opt, sig, rc = 1, insecure = 0;

	log_init("dispatchd", LOG_INFO);
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': c.state_dir = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'H': c.heartbeat_s = strtod(optarg, NULL); break;
		case 'T': c.ttl_s = strtod(optarg, NULL); break;
		case 'j': c.build_jobs = (int)strtol(optarg, NULL, 10); break;
		case 't': c.toolchains_dir = optarg; break;
		case 'I': insecure = 1; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!c.state_dir || optind != argc || c.heartbeat_s <= 0 || c.ttl_s <= c.heartbeat_s) {
		fputs(usage, stderr);
		return 2;
	}
	if (!cert && !is_loopback(listen_addr)) {
		if (!insecure) {
			log_error("refusing to serve plain HTTP on '%s', which is not loopback: tokens and artifacts "
				  "would cross the network in the clear (--tls-cert/--tls-key, or --insecure-http)",
				  listen_addr);
			return 2;
		}
		log_warn("serving plain HTTP on '%s', which is not loopback: use --tls-cert/--tls-key", listen_addr);
	}
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.build_cond, NULL);
	/* Signals are taken synchronously by this thread; the others never see them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (source_global_init() < 0 || setup(&c) < 0) {
		log_error("%s", err_msg());
		goto out;
	}
	if (http_start(&srv, &c, listen_addr, api_routes, cert, key) < 0) {
		log_error("%s", err_msg());
		goto out;
	}
	snprintf(url, sizeof(url), "%s://%.*s:%d", cert ? "https" : "http",
		 (int)(strrchr(listen_addr, ':') - listen_addr), listen_addr, http_port(srv));
	url_path = fs_join(c.state_dir, "dispatchd.url");
	if (url_path)
		fs_write_atomic(url_path, url, strlen(url), 0644);
	free(url_path);
	log_info("listening on %s (state in %s)", url, c.state_dir);
	c.build_wanted = 1;
	pthread_create(&builder, NULL, jobs_build_thread, &c);
	pthread_create(&timer, NULL, timer_thread, &c);
	do {
		sigwait(&sigs, &sig);
	} while (sig == SIGPIPE);
	log_info("stopping (signal %d)", sig);
	core_lock(&c);
	c.stopping = 1;
	pthread_cond_broadcast(&c.build_cond);
	core_unlock(&c);
	http_stop(srv);
	pthread_join(timer, NULL);
	pthread_join(builder, NULL);
	core_seen_flush(&c);
	rc = 0;
out:
	store_free(c.db);
	toolchain_set_free(c.toolchains);
	free(c.seen);
	free(c.acked);
	cas_free(c.blobs);
	free(c.cache_dir);
	free(c.jobs_dir);
	free(c.logs_dir);
	source_global_shutdown();
	return rc;
}
