/* listen.c - the long-poll thread and its hand-over queue. */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define MESSAGES_MAX_BYTES (8u << 20)
#define QUEUE_MAX 4096 /* messages waiting for the main thread */

struct listener {
	conn *c;
	pthread_t thread;
	int started;
	atomic_int stop;
	int wake[2];
	unsigned wait_s;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t acked_cond;
	json_t *queue;
	uint64_t received; /* the last sequence number queued */
	uint64_t acked;	   /* the last one handled: "after" */
	int flags;
};

static void wake(listener *l)
{
	char b = 1;

	/* A full pipe already says "look": EAGAIN is fine. */
	if (write(l->wake[1], &b, 1) < 0 && errno != EAGAIN)
		log_debug("cannot wake the event loop: %s", err_msg());
}

/* Records reachability; returns what it was. */
static int set_online(listener *l, int online)
{
	int was;

	pthread_mutex_lock(&l->lock);
	was = (l->flags & LISTEN_ONLINE) != 0;
	if (was != online)
		l->flags = (l->flags & ~LISTEN_ONLINE) | (online ? LISTEN_ONLINE : 0) | LISTEN_CHANGED;
	pthread_mutex_unlock(&l->lock);
	if (was != online)
		wake(l);
	return was;
}

/* Queues the messages of one answer; 1 when there were some, 0 when none, ERR_INVALID. */
static int accept_answer(listener *l, json_t *resp)
{
	json_t *msgs = json_object_get(resp, "messages"), *seq = json_object_get(resp, "seq"), *m;
	json_int_t last = -1;
	size_t i;

	if (!json_is_array(msgs) || !json_is_integer(seq) || json_integer_value(seq) < 0)
		return err_set(ERR_INVALID, "GET /v1/agent/messages: expected {\"seq\", \"messages\"}");
	if (json_array_size(msgs) == 0)
		return 0;
	pthread_mutex_lock(&l->lock);
	json_array_foreach(msgs, i, m)
	{
		if (json_array_size(l->queue) >= QUEUE_MAX)
			break;
		json_array_append(l->queue, m);
		if (json_integer_value(json_object_get(m, "seq")) > last)
			last = json_integer_value(json_object_get(m, "seq"));
	}
	/* Only what was queued will be acknowledged; the rest comes again. */
	if (i == json_array_size(msgs))
		l->received = (uint64_t)json_integer_value(seq);
	else if (last >= 0 && (uint64_t)last > l->received)
		l->received = (uint64_t)last;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return 1;
}

/* Waits until the main thread has handled what was queued (or the listener stops). */
static void wait_for_ack(listener *l)
{
	pthread_mutex_lock(&l->lock);
	while (!atomic_load(&l->stop) && l->acked < l->received)
		pthread_cond_wait(&l->acked_cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

static void *run(void *arg)
{
	listener *l = arg;
	struct conn_backoff b = {0};
	char path[96];

	while (!atomic_load(&l->stop)) {
		json_t *resp = NULL;
		uint64_t after;
		int r;

		pthread_mutex_lock(&l->lock);
		after = l->acked;
		pthread_mutex_unlock(&l->lock);
		snprintf(path, sizeof(path), "/v1/agent/messages?after=%" PRIu64 "&wait=%u", after,
			 l->wait_s);
		r = conn_request(l->c, &resp, "GET", path, NULL);
		if (atomic_load(&l->stop)) {
			json_decref(resp);
			break;
		}
		if (r == 0)
			r = accept_answer(l, resp);
		json_decref(resp);
		if (r >= 0) {
			set_online(l, 1);
			conn_backoff_reset(&b);
			if (r == 1)
				wait_for_ack(l);
			continue;
		}
		if (r == ERR_AUTH) {
			pthread_mutex_lock(&l->lock);
			l->flags |= LISTEN_AUTH;
			pthread_mutex_unlock(&l->lock);
			wake(l);
		} else if (r == ERR_NET) {
			if (set_online(l, 0))
				log_warn("the dispatcher is unreachable: %s", err_msg());
		} else {
			log_warn("%s", err_msg());
		}
		conn_sleep(l->c, conn_backoff_next(&b));
	}
	return NULL;
}

int listen_start(listener **out, conn *c, uint64_t after, unsigned wait_s)
{
	listener *l = calloc(1, sizeof(*l));
	int r = 0;

	if (!l) {
		conn_free(c);
		return err_set(ERR_NOMEM, "out of memory");
	}
	l->c = c;
	l->wake[0] = l->wake[1] = -1;
	l->received = l->acked = after;
	l->wait_s = wait_s;
	l->flags = LISTEN_ONLINE; /* the agent has just joined */
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->acked_cond, NULL);
	if (!(l->queue = json_array())) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = err_errno(ERR_IO, errno, "cannot create a pipe");
		goto out;
	}
	/* The poll may be held for wait_s: allow for it, and for a slow network on top. */
	conn_set_limits(c, wait_s + 30, MESSAGES_MAX_BYTES);
	if ((r = conn_thread_start(c, &l->thread, run, l, "listener")) < 0)
		goto out;
	l->started = 1;
	*out = l;
	l = NULL;
out:
	listen_stop(l);
	return r;
}

void listen_stop(listener *l)
{
	if (!l)
		return;
	if (l->started) {
		atomic_store(&l->stop, 1);
		pthread_mutex_lock(&l->lock);
		pthread_cond_broadcast(&l->acked_cond);
		pthread_mutex_unlock(&l->lock);
		conn_interrupt(l->c);
		pthread_join(l->thread, NULL);
	}
	conn_free(l->c);
	for (int i = 0; i < 2; i++)
		if (l->wake[i] >= 0)
			close(l->wake[i]);
	json_decref(l->queue);
	pthread_cond_destroy(&l->acked_cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

int listen_fd(const listener *l)
{
	return l->wake[0];
}

int listen_take(listener *l, json_t **messages, uint64_t *seq, int *flags)
{
	json_t *fresh = json_array();
	char drain[64];

	if (!fresh)
		return err_set(ERR_NOMEM, "out of memory");
	while (read(l->wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&l->lock);
	*messages = l->queue;
	l->queue = fresh;
	*seq = l->received;
	*flags = l->flags;
	l->flags &= ~(LISTEN_CHANGED | LISTEN_AUTH);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

void listen_ack(listener *l, uint64_t seq)
{
	pthread_mutex_lock(&l->lock);
	if (seq > l->acked)
		l->acked = seq;
	pthread_cond_signal(&l->acked_cond);
	pthread_mutex_unlock(&l->lock);
}

int listen_set_identity(listener *l, const char *token, uint64_t after)
{
	pthread_mutex_lock(&l->lock);
	l->received = l->acked = after;
	pthread_cond_signal(&l->acked_cond);
	pthread_mutex_unlock(&l->lock);
	return conn_set_token(l->c, token);
}

int listen_online(listener *l)
{
	int online;

	pthread_mutex_lock(&l->lock);
	online = (l->flags & LISTEN_ONLINE) != 0;
	pthread_mutex_unlock(&l->lock);
	return online;
}

void listen_nudge(listener *l)
{
	if (!listen_online(l))
		conn_wakeup(l->c);
}
