/* sender.c - one request at a time, posted by the event loop, answered through a pipe. */
#include "sender.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

enum { IDLE, POSTED, ANSWERED };

struct sender {
	conn *c;
	pthread_t thread;
	int started;
	int wake[2];		/* the loop's: readable once answered */
	pthread_mutex_t lock;	/* guards what follows */
	pthread_cond_t posted;
	int stop;
	int phase;		/* IDLE, POSTED, ANSWERED */
	char *path, *body;
	int r;
	json_t *resp;
	char err[1024];
};

static void *run(void *arg)
{
	sender *s = arg;
	char b = 1;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		json_t *resp = NULL;
		int r;

		while (!s->stop && s->phase != POSTED)
			pthread_cond_wait(&s->posted, &s->lock);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->lock);
		r = conn_request_text(s->c, &resp, "POST", s->path, s->body);
		pthread_mutex_lock(&s->lock);
		s->r = r;
		s->resp = resp;
		snprintf(s->err, sizeof(s->err), "%s", r < 0 ? err_msg() : "");
		s->phase = ANSWERED;
		/* A full pipe already says "look". */
		if (write(s->wake[1], &b, 1) < 0 && errno != EAGAIN)
			log_debug("cannot wake the event loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int sender_start(sender **out, conn *c)
{
	sender *s = calloc(1, sizeof(*s));
	int r = 0;

	if (!s) {
		conn_free(c);
		return err_set(ERR_NOMEM, "out of memory");
	}
	s->c = c;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->posted, NULL);
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = err_errno(ERR_IO, errno, "cannot create a pipe");
		goto out;
	}
	if ((r = conn_thread_start(c, &s->thread, run, s, "sender")) < 0)
		goto out;
	s->started = 1;
	*out = s;
	s = NULL;
out:
	sender_stop(s);
	return r;
}

void sender_stop(sender *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		pthread_cond_signal(&s->posted);
		pthread_mutex_unlock(&s->lock);
		conn_interrupt(s->c);
		pthread_join(s->thread, NULL);
	}
	conn_free(s->c);
	for (int i = 0; i < 2; i++)
		if (s->wake[i] >= 0)
			close(s->wake[i]);
	json_decref(s->resp);
	free(s->path);
	free(s->body);
	pthread_cond_destroy(&s->posted);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int sender_fd(const sender *s)
{
	return s->wake[0];
}

int sender_post(sender *s, const char *path, const char *body)
{
	char *p = strdup(path), *b = body ? strdup(body) : NULL;
	int r = 0;

	if (!p || (body && !b)) {
		free(p);
		free(b);
		return err_set(ERR_NOMEM, "out of memory");
	}
	pthread_mutex_lock(&s->lock);
	if (s->phase != IDLE) {
		r = err_set(ERR_EXISTS, "a request is under way already");
	} else {
		free(s->path);
		free(s->body);
		s->path = p;
		s->body = b;
		p = b = NULL;
		s->phase = POSTED;
		pthread_cond_signal(&s->posted);
	}
	pthread_mutex_unlock(&s->lock);
	free(p);
	free(b);
	return r;
}

int sender_take(sender *s, json_t **resp)
{
	char drain[16];
	int r = 1;

	*resp = NULL;
	while (read(s->wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&s->lock);
	if (s->phase == ANSWERED) {
		r = s->r < 0 ? err_set(s->r, "%s", s->err) : 0;
		*resp = s->resp;
		s->resp = NULL;
		s->phase = IDLE;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sender_set_token(sender *s, const char *token)
{
	return conn_set_token(s->c, token);
}
