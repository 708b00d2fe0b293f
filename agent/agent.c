/* agent.c - startup, joining, the event loop and shutdown. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cgroup.h"
#include "conn.h"
#include "cpu.h"
#include "error.h"
#include "fsutil.h"
#include "instances.h"
#include "listen.h"
#include "log.h"
#include "node.h"
#include "outbox.h"
#include "protocol.h"
#include "run.h"
#include "sandbox.h"
#include "sender.h"
#include "store.h"

#define POLL_MAX 2051	 /* signalfd, listener, sender, inotify, a pidfd per run */
#define FLUSH_GRACE_S 10 /* after the last object stopped, for the last events */
#define SAVE_DELAY_S 1.0 /* from a delivery to the save that keeps it from being sent again */
#define LEAVE_WAIT_MS 2000 /* for the answer to a request under way when the agent stops */

struct agent {
	const struct agent_config *cfg;
	struct cpu_info cpu;
	struct node node;
	struct run_config rc;
	conn *c;
	listener *l;
	sender *snd;		 /* posts events and heartbeats, one request at a time */
	struct outbox_req *req; /* the events request under way */
	int heartbeat_out;	 /* a heartbeat is under way */
	store *st;
	outbox *ob;
	instances *inst;
	int sigfd;
	int lockfd; /* flock()ed WORK/agent.lock */
	int json;
	double next_heartbeat, next_flush, next_rejoin;
	struct conn_backoff flush_backoff, rejoin_backoff;
	int need_rejoin;
	int stopping; /* draining: 1 checkpointing, 2 killing */
	int leaving;  /* SIGTERM: stop now, the objects keep running */
	double flush_deadline;
	double save_at;	   /* when the outbox is to be saved, 0: no need */
	char *outbox_path; /* WORK/outbox.json */
	char cgroup_base[CGROUP_PATH_MAX]; /* the runs' control groups (cgroup.h), "": none */
	struct pollfd fds[POLL_MAX];
};

/* Prints j (stolen) as a JSON line on stdout, with --json. */
static void emit(struct agent *a, json_t *j)
{
	if (a->json && j && json_dumpf(j, stdout, JSON_COMPACT) == 0) {
		fputc('\n', stdout);
		fflush(stdout);
	}
	json_decref(j);
}

static void report(void *ud, const char *event, const char *instance, uint64_t generation, const char *detail)
{
	struct agent *a = ud;

	if (a->json)
		emit(a, json_pack("{sssssIss}", "event", event, "instance", instance, "generation",
				  (json_int_t)generation, "detail", detail ? detail : ""));
}

static unsigned heartbeat_s(const struct agent *a)
{
	return a->cfg->heartbeat_s ? a->cfg->heartbeat_s : a->node.heartbeat_s ? a->node.heartbeat_s : 5;
}

/*
 * What runs here, for a join or a heartbeat: the dispatcher continues
 * elsewhere what is not listed. Runs whose exit event waits in the outbox
 * are listed too: their result is on its way.
 */
static json_t *join_running(struct agent *a)
{
	json_t *running = instances_running(a->inst), *exits = outbox_exits(a->ob), *e, *r;
	size_t i, j;

	json_array_foreach(exits, i, e)
	{
		int dup = 0;
		json_array_foreach(running, j, r)
		{
			dup |= json_equal(e, r);
		}
		if (!dup)
			json_array_append(running, e);
	}
	json_decref(exits);
	return running;
}

static json_t *join_body(struct agent *a)
{
	json_t *levels = json_array(), *body;

	for (size_t i = 0; levels && i < a->cpu.nlevels; i++)
		json_array_append_new(levels, json_string(a->cpu.levels[i]));
	if (cpu_load(&a->cpu.load) < 0)
		a->cpu.load = 0;
	body = json_pack("{sssssosIsIsfso}", "name", a->cfg->name, "isa", a->cpu.isa, "levels", levels,
			 "cores", (json_int_t)a->cpu.cores, "memory", (json_int_t)a->cpu.memory, "load",
			 a->cpu.load, "running", join_running(a));
	return body;
}

/* Saves the outbox with the runs' cursors (see instances_env.persist). */
static int save(struct agent *a, int durable)
{
	json_t *cursors = instances_cursors(a->inst);
	int r = outbox_save(a->ob, a->outbox_path, cursors, durable);

	json_decref(cursors);
	if (r < 0)
		log_warn("%s", err_msg());
	else
		a->save_at = 0;
	return r;
}

static int persist(void *ud)
{
	return save(ud, 0);
}

/* Checkpoints and exits are saved at once, deliveries soon after (a crash sends again what was not saved). */
static void save_if_needed(struct agent *a, double now)
{
	int ch = outbox_changes(a->ob);

	if (ch & OUTBOX_URGENT)
		save(a, 0);
	else if ((ch & OUTBOX_SENT) && !a->save_at)
		a->save_at = now + SAVE_DELAY_S;
	else if (a->save_at && now >= a->save_at)
		save(a, 0);
}

/* Joins (or joins again) and remembers the identity. */
static int join(struct agent *a)
{
	json_t *body = join_body(a);
	char prev[sizeof(a->node.id)];
	int r;

	if (!body)
		return err_set(ERR_NOMEM, "out of memory");
	memcpy(prev, a->node.id, sizeof(prev));
	r = node_join(&a->node, a->c, a->cfg->join_token, body);
	json_decref(body);
	if (r < 0)
		return r;
	if ((r = node_save(&a->node, a->cfg->work_dir, a->cfg->url)) < 0)
		log_warn("%s", err_msg());
	outbox_set_inline_max(a->ob, a->node.inline_max);
	outbox_set_batch_max(a->ob, a->node.batch_max);
	if (a->l && (r = listen_set_identity(a->l, a->node.token, a->node.seq)) < 0)
		return r;
	if (a->snd && (r = sender_set_token(a->snd, a->node.token)) < 0)
		return r;
	log_info("joined %s as node %s%s (%s; levels %s..%s)", a->cfg->url, a->node.id,
		 prev[0] && strcmp(prev, a->node.id) ? " (a new identity)" : "", a->cpu.isa, a->cpu.levels[0],
		 a->cpu.levels[a->cpu.nlevels - 1]);
	if (a->json)
		emit(a, json_pack("{ssssssss}", "event", "joined", "node", a->node.id, "isa", a->cpu.isa,
				  "dispatcher", a->cfg->url));
	a->next_heartbeat = run_now() + heartbeat_s(a);
	return 0;
}

/* The first join: the dispatcher may not be up yet, so keep trying. 1 when a signal said stop. */
static int join_first(struct agent *a)
{
	struct conn_backoff b = {0};
	struct pollfd p = {.fd = a->sigfd, .events = POLLIN};
	int r;

	while ((r = join(a)) == ERR_NET) {
		unsigned ms = conn_backoff_next(&b);
		log_warn("%s; next try in %.1f s", err_msg(), ms / 1000.0);
		if (poll(&p, 1, (int)ms) > 0)
			return 1;
	}
	return r;
}

static void on_stale(void *ud, const char *instance, uint64_t generation)
{
	instances_drop(((struct agent *)ud)->inst, instance, generation);
}

/*
 * Through the sender too: its connection is then the one that stays open
 * besides the long poll's (the loop's own serves the rare blob transfers).
 */
static void heartbeat(struct agent *a, double now)
{
	json_t *body;
	char *text = NULL;

	a->next_heartbeat = now + heartbeat_s(a);
	if (cpu_load(&a->cpu.load) < 0)
		a->cpu.load = 0;
	/* Its runs and the exits on their way: what the dispatcher placed here and does not find is lost. */
	body = json_pack("{sfso}", "load", a->cpu.load, "running", join_running(a));
	if (!body || !(text = json_dumps(body, JSON_COMPACT)))
		log_warn("heartbeat: out of memory");
	else if (sender_post(a->snd, "/v1/agent/heartbeat", text) < 0)
		log_warn("heartbeat: %s", err_msg());
	else
		a->heartbeat_out = 1;
	free(text);
	json_decref(body);
}

static void heartbeat_done(struct agent *a, int r)
{
	if (r == 0)
		listen_nudge(a->l);
	else if (r == ERR_AUTH)
		a->need_rejoin = 1;
	else if (r != ERR_NET)
		log_warn("heartbeat: %s", err_msg());
}

/* What an events request's outcome means for the next one. */
static void events_done(struct agent *a, double now, int r)
{
	if (r != ERR_NET && r != ERR_AUTH && r != ERR_NOMEM) {
		conn_backoff_reset(&a->flush_backoff);
		listen_nudge(a->l);
		a->next_flush = now; /* what was queued meanwhile goes next */
		return;
	}
	if (r == ERR_AUTH)
		a->need_rejoin = 1;
	else if (r != ERR_NET)
		log_warn("%s", err_msg());
	a->next_flush = now + conn_backoff_next(&a->flush_backoff) / 1000.0;
}

/* Hands the head of the outbox to the sender: the loop goes on while the dispatcher commits it. */
static void send_events(struct agent *a, double now)
{
	struct outbox_req *q = NULL;
	int r = outbox_take(a->ob, a->c, &q);

	if (r < 0 || !q) {
		if (r < 0)
			events_done(a, now, r);
		return;
	}
	if (!outbox_req_body(q)) {
		outbox_settle(a->ob, q, 0, NULL, on_stale, a); /* nothing worth sending after all */
		return;
	}
	if ((r = sender_post(a->snd, "/v1/agent/events", outbox_req_body(q))) < 0) {
		log_warn("%s", err_msg());
		outbox_settle(a->ob, q, ERR_NOMEM, NULL, NULL, NULL); /* kept for the next attempt */
		events_done(a, now, ERR_NOMEM);
		return;
	}
	a->req = q;
}

/* Whether the sender carries a request: then nothing else is posted, and the loop waits for its pipe. */
static int sending(const struct agent *a)
{
	return a->req || a->heartbeat_out;
}

static void sender_answered(struct agent *a, double now)
{
	json_t *resp = NULL;
	int r = sender_take(a->snd, &resp);

	if (r == 1) {
		json_decref(resp);
		return;
	}
	if (a->heartbeat_out) {
		a->heartbeat_out = 0;
		heartbeat_done(a, r);
	} else if (a->req) {
		outbox_settle(a->ob, a->req, r, resp, on_stale, a);
		a->req = NULL;
		events_done(a, now, r);
	}
	json_decref(resp);
}

static void rejoin(struct agent *a, double now)
{
	int r;

	if (now < a->next_rejoin)
		return;
	log_info("the dispatcher refused the node token: joining again");
	if ((r = join(a)) == 0) {
		a->need_rejoin = 0;
		conn_backoff_reset(&a->rejoin_backoff);
		a->next_flush = now;
		return;
	}
	log_error("cannot join again: %s", err_msg());
	a->next_rejoin = now + conn_backoff_next(&a->rejoin_backoff) / 1000.0;
}

static void handle_messages(struct agent *a, double now)
{
	json_t *msgs = NULL, *m;
	struct proto_msg pm;
	uint64_t seq = a->node.seq;
	int flags = 0, r;
	size_t i;

	if (listen_take(a->l, &msgs, &seq, &flags) < 0) {
		log_warn("%s", err_msg());
		return;
	}
	if ((flags & LISTEN_CHANGED) && (flags & LISTEN_ONLINE)) {
		log_info("the dispatcher is reachable again");
		conn_backoff_reset(&a->flush_backoff);
		a->next_flush = now;
	}
	if (flags & LISTEN_AUTH)
		a->need_rejoin = 1;
	json_array_foreach(msgs, i, m)
	{
		r = proto_parse(&pm, m);
		if (r == ERR_UNSUPPORTED) {
			log_info("ignored: %s", err_msg());
			continue;
		}
		if (r < 0) {
			log_warn("bad message from the dispatcher: %s", err_msg());
			continue;
		}
		if (a->stopping && pm.type == PROTO_START)
			outbox_add(a->ob, pm.instance, pm.generation,
				   proto_event_exit(-1, 0, NULL, "the agent is shutting down"), NULL);
		else
			instances_handle(a->inst, &pm);
		proto_msg_release(&pm);
	}
	json_decref(msgs);
	/*
	 * Handled: remembered, then acknowledged, so that a restarted agent misses no message (it may
	 * see the last batch again; a start it already handled is then found running, or started afresh).
	 * The exits of starts that failed are saved first.
	 */
	if (outbox_changes(a->ob) & OUTBOX_URGENT)
		save(a, 0);
	if (seq > a->node.seq) {
		a->node.seq = seq;
		if (node_save_seq(&a->node, a->cfg->work_dir) < 0)
			log_warn("%s", err_msg());
	}
	listen_ack(a->l, seq);
	if (outbox_len(a->ob))
		a->next_flush = a->next_flush > now ? a->next_flush : now;
}

static void handle_signals(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			instances_reap(a->inst);
			break;
		case SIGHUP:
			break;
		case SIGTERM:
		case SIGINT:
			log_info("stopping: %zu object(s) keep running for the next start",
				 instances_count(a->inst));
			a->leaving = 1;
			break;
		default: /* SIGUSR2: drain */
			if (!a->stopping) {
				log_info("stopping: asking %zu object(s) to checkpoint",
					 instances_count(a->inst));
				instances_stop_all(a->inst, PROTO_STOP_CHECKPOINT);
				a->stopping = 1;
			} else if (a->stopping == 1) {
				log_info("stopping now: killing %zu object(s)", instances_count(a->inst));
				instances_stop_all(a->inst, PROTO_STOP_KILL);
				a->stopping = 2;
			}
		}
	}
}

static int loop(struct agent *a)
{
	for (;;) {
		double now = run_now(), next;
		size_t n = 3;
		int timeout, busy = sending(a);

		/* Only what can happen now counts: a wait on anything else would be a timeout of 0, a spin. */
		next = instances_tick(a->inst, now);
		if (!busy && !a->stopping)
			next = run_earliest(next, a->next_heartbeat);
		next = run_earliest(next, a->save_at);
		if (outbox_sendable(a->ob) && !busy && !a->need_rejoin)
			next = run_earliest(next, a->next_flush);
		if (a->need_rejoin)
			next = run_earliest(next, a->next_rejoin);
		if (a->stopping && instances_count(a->inst) == 0) {
			if (!a->flush_deadline)
				a->flush_deadline = now + FLUSH_GRACE_S;
			if (outbox_len(a->ob) == 0 || now >= a->flush_deadline)
				return 0;
			next = run_earliest(next, a->flush_deadline);
		}
		a->fds[0] = (struct pollfd){.fd = a->sigfd, .events = POLLIN};
		a->fds[1] = (struct pollfd){.fd = listen_fd(a->l), .events = POLLIN};
		a->fds[2] = (struct pollfd){.fd = sender_fd(a->snd), .events = POLLIN};
		n += instances_pollfds(a->inst, a->fds + 3, POLL_MAX - 3);
		timeout = run_poll_timeout(next, now);
		if (poll(a->fds, n, timeout) < 0 && errno != EINTR)
			return err_errno(ERR_IO, errno, "poll");
		now = run_now();
		if (a->fds[0].revents)
			handle_signals(a);
		if (a->leaving)
			return 0;
		if (a->fds[1].revents)
			handle_messages(a, now);
		if (a->fds[2].revents)
			sender_answered(a, now);
		instances_ready(a->inst, a->fds + 3, n - 3);
		/* While the listener cannot reach the dispatcher a heartbeat would only time out. */
		if (now >= a->next_heartbeat && !a->stopping && !sending(a)) {
			if (listen_online(a->l))
				heartbeat(a, now);
			else
				a->next_heartbeat = now + heartbeat_s(a);
		}
		if (a->need_rejoin)
			rejoin(a, now);
		if (outbox_sendable(a->ob) && !sending(a) && now >= a->next_flush && !a->need_rejoin)
			send_events(a, now);
		save_if_needed(a, run_now());
	}
}

/* One agent per WORK: two would share a node identity and trample each other's instances. */
static int lock_work(struct agent *a, const char *path)
{
	int r = fs_lock_file(&a->lockfd, path);

	return r == ERR_EXISTS ? err_set(r, "another dispatch-agent uses '%s'", a->cfg->work_dir) : r;
}

/* WORK/, WORK/inst (runs of an earlier agent are taken over later) and the cache. */
static int prepare_work(struct agent *a)
{
	char *inst = fs_join(a->cfg->work_dir, "inst"), *cache = fs_join(a->cfg->work_dir, "cache");
	char *lock = fs_join(a->cfg->work_dir, "agent.lock"), *trees = NULL;
	int r;

	if (!inst || !cache || !lock) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = fs_mkdir_p(a->cfg->work_dir, 0711)) < 0 || (r = lock_work(a, lock)) < 0)
		goto out;
	/* Objects of another user must be able to pass through WORK to their directories. */
	if (a->cfg->drop && chmod(a->cfg->work_dir, 0711) < 0) {
		r = err_errno(ERR_IO, errno, "cannot chmod '%s'", a->cfg->work_dir);
		goto out;
	}
	if ((r = fs_mkdir_p(inst, 0711)) < 0 || (r = store_open(&a->st, cache, a->cfg->cache_max)) < 0)
		goto out;
	/*
	 * Objects that run as another user cannot change what the agent's user owns: they can share one
	 * read-only tree per artifact, unpacked once (store.h). Objects that run as the agent's own user
	 * could, so each of their runs gets its own copy, from a blob verified before each use.
	 */
	if (a->cfg->drop) {
		if (!(trees = fs_join(a->cfg->work_dir, "unpacked")))
			r = err_set(ERR_NOMEM, "out of memory");
		else
			r = store_set_trees(a->st, trees, store_boot_id());
	}
out:
	free(inst);
	free(cache);
	free(lock);
	free(trees);
	return r;
}

/* Each run holds three descriptors: allow what the hard limit allows (objects get their own limit). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int setup_signals(struct agent *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGCHLD);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return err_errno(ERR_IO, errno, "cannot block signals");
	a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->sigfd < 0)
		return err_errno(ERR_IO, errno, "cannot create a signalfd");
	return 0;
}

/* WORK/cgroup: where the runs' control groups are (NULL: nowhere), for `dispatch down`. */
static void note_cgroup(const char *work_dir, const char *base)
{
	char *path = fs_join(work_dir, "cgroup"), text[CGROUP_PATH_MAX + 2];

	if (path && base) {
		snprintf(text, sizeof(text), "%s\n", base);
		if (fs_write_atomic(path, text, strlen(text), 0644) < 0)
			log_warn("%s", err_msg());
	} else if (path) {
		unlink(path);
	}
	free(path);
}

int agent_main(const struct agent_config *cfg)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct instances_env env;
	json_t *cursors = NULL;
	conn *lc = NULL;
	size_t adopted;
	int r;

	if (!a)
		return err_set(ERR_NOMEM, "out of memory");
	a->cfg = cfg;
	a->sigfd = a->lockfd = -1;
	a->json = cfg->json;
	a->rc = (struct run_config){.work_dir = cfg->work_dir,
				    .launcher = cfg->launcher,
				    .drop = cfg->drop,
				    .uid = cfg->uid,
				    .gid = cfg->gid,
				    .no_net = 1,
				    .fsize = UINT64_C(1) << 30,
				    .nofile = 1024,
				    .stop_grace_s = cfg->stop_grace_s};
	if ((r = cpu_detect(&a->cpu, cfg->isa)) < 0 || (r = setup_signals(a)) < 0 ||
	    (r = prepare_work(a)) < 0 || (r = outbox_new(&a->ob, a->st)) < 0)
		goto out;
	a->rc.isa = a->cpu.isa;
	raise_nofile();
	/*
	 * One empty network namespace (and a mount namespace with its /sys) for all objects, made once:
	 * entering it is a setns() per start, where a namespace of their own costs each object
	 * milliseconds to create and more to tear down. Without it, each object makes its own.
	 */
	if (cfg->drop && a->rc.no_net && !a->rc.no_sandbox) {
		char why[256];
		if (sandbox_make_ns(&a->rc.netns_fd, &a->rc.mntns_fd, why, sizeof(why)) < 0)
			log_info("each object gets a network namespace of its own: %s", why);
	}
	/* A control group per run: what an object starts cannot outlive it, even out of its session. */
	{
		char why[256];
		int fast = 0;
		if (cgroup_agent_base(cfg->work_dir, a->cgroup_base, sizeof(a->cgroup_base), &fast, why, sizeof(why)) ==
		    0) {
			a->rc.cgroup_base = a->cgroup_base;
			note_cgroup(cfg->work_dir, a->cgroup_base);
			log_info("runs' control groups in '%s'%s", a->cgroup_base,
				 fast ? "" : " (clone3() is refused here: each start moves its object in, which waits "
					     "for an RCU grace period, milliseconds)");
			if (!cfg->drop)
				log_info("objects run as the agent's own user: they could move themselves out of "
					 "their control groups (--run-as prevents it)");
		} else {
			note_cgroup(cfg->work_dir, NULL);
			log_info("runs get no control group of their own (%s): a process an object detaches from "
				 "its session outlives the run",
				 why);
		}
	}
	if (!(a->outbox_path = fs_join(cfg->work_dir, "outbox.json"))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (outbox_load(a->ob, a->outbox_path, &cursors) < 0)
		log_warn("%s", err_msg());
	else if (outbox_len(a->ob))
		log_info("%zu event(s) of an earlier run are waiting for the dispatcher", outbox_len(a->ob));
	env = (struct instances_env){
	    .st = a->st, .ob = a->ob, .rc = &a->rc, .report = report, .persist = persist, .ud = a};
	if ((r = conn_new(&a->c, cfg->url, cfg->ca_file)) < 0)
		goto out;
	/* The event loop waits for these requests: keep them short. */
	conn_set_limits(a->c, 30, 1u << 20);
	env.c = a->c;
	if ((r = instances_new(&a->inst, &env)) < 0)
		goto out;
	/* Before the join, whose list of what runs here they belong in. */
	if ((adopted = instances_adopt(a->inst, cursors)) > 0)
		log_info("took over %zu object(s) of an earlier run", adopted);
	save_if_needed(a, run_now());
	r = node_load(&a->node, cfg->work_dir, cfg->url);
	if (r == ERR_INVALID)
		log_warn("%s: joining as a new node", err_msg());
	else if (r < 0)
		log_debug("no stored identity: %s", err_msg());
	/*
	 * Events kept by the last run, and the exits of objects that ended while no agent ran, go first,
	 * with the stored node token; the join then lists what still runs here. A run the dispatcher
	 * calls stale is killed.
	 */
	if (outbox_len(a->ob) && a->node.token[0] && conn_set_token(a->c, a->node.token) == 0 &&
	    outbox_flush(a->ob, a->c, on_stale, a) < 0)
		log_info("kept events not sent yet: %s", err_msg());
	save_if_needed(a, run_now());
	if ((r = join_first(a)) != 0) {
		if (r == 1)
			r = 0; /* stopped before the first join */
		goto out;
	}
	if ((r = conn_new(&lc, cfg->url, cfg->ca_file)) < 0 || (r = conn_set_token(lc, a->node.token)) < 0)
		goto out;
	r = listen_start(&a->l, lc, a->node.seq, cfg->wait_s);
	lc = NULL; /* stolen */
	if (r < 0 || (r = conn_new(&lc, cfg->url, cfg->ca_file)) < 0 || (r = conn_set_token(lc, a->node.token)) < 0)
		goto out;
	conn_set_limits(lc, 30, 1u << 20);
	r = sender_start(&a->snd, lc);
	lc = NULL; /* stolen */
	if (r < 0)
		goto out;
	r = loop(a);
	if (r == 0)
		log_info("stopped");
out:
	/*
	 * A request still under way gets a moment to be answered, so that a clean stop sends nothing
	 * twice; one that is not answered by then may or may not have been committed: its events are
	 * kept and sent again.
	 */
	if (a->snd && sending(a)) {
		struct pollfd p = {.fd = sender_fd(a->snd), .events = POLLIN};
		if (poll(&p, 1, LEAVE_WAIT_MS) > 0)
			sender_answered(a, run_now());
	}
	sender_stop(a->snd);
	if (a->req)
		outbox_settle(a->ob, a->req, ERR_NET, NULL, NULL, NULL);
	/* Events not delivered, and where the runs that go on are, for the next start. */
	if (a->inst && save(a, 1) == 0 && outbox_len(a->ob))
		log_info("%zu event(s) kept for the next start in '%s'", outbox_len(a->ob), a->outbox_path);
	json_decref(cursors);
	listen_stop(a->l);
	conn_free(lc);
	/* No run left: nothing for a later agent to find in the base group (it makes it again). */
	if (a->rc.cgroup_base && (!a->inst || instances_count(a->inst) == 0))
		rmdir(a->rc.cgroup_base);
	instances_free(a->inst);
	outbox_free(a->ob);
	store_free(a->st);
	conn_free(a->c);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->rc.netns_fd > 0)
		close(a->rc.netns_fd);
	if (a->rc.mntns_fd > 0)
		close(a->rc.mntns_fd);
	if (a->lockfd >= 0)
		close(a->lockfd);
	free(a->outbox_path);
	free(a);
	return r;
}
