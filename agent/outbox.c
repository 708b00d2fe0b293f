/* outbox.c - the event queue and its delivery. */
#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "digest.h"
#include "fsutil.h"
#include "error.h"
#include "log.h"
#include "protocol.h"

#define BATCH_EVENTS 64		   /* of one instance generation in one request */
#define REQUEST_EVENTS 256		   /* in one request */
#define REQUEST_BATCHES 64		   /* instance generations in one request */
#define REQUEST_BYTES (768u << 10) /* dispatchd takes JSON bodies up to 1 MiB */

struct item {
	struct item *next;
	char instance[PROTO_ID_MAX + 1];
	uint64_t generation;
	json_t *event;
	char blob[DIGEST_HEX_LEN + 1]; /* "" when none, or once uploaded */
	size_t bytes;		       /* log text held */
	int droppable;		       /* progress and log */
	int progress;
	int urgent;   /* checkpoint and exit */
	int skip;     /* not worth sending after all */
	int inflight; /* in the request being sent (outbox_take()), the queue's head */
	int gone;     /* forgotten while in flight: leaves the queue when the request is answered */
};

struct outbox {
	store *st;
	size_t inline_max;  /* outbox_set_inline_max() */
	unsigned batch_max; /* outbox_set_batch_max() */
	struct item *head, **tail;
	size_t n, bytes, inflight;
	int changes; /* OUTBOX_SENT, OUTBOX_URGENT */
};

int outbox_new(outbox **out, store *st)
{
	outbox *o = calloc(1, sizeof(*o));

	if (!o)
		return err_set(ERR_NOMEM, "out of memory");
	o->st = st;
	o->tail = &o->head;
	*out = o;
	return 0;
}

static void item_free(outbox *o, struct item *it)
{
	if (it->blob[0])
		store_unpin(o->st, it->blob);
	json_decref(it->event);
	o->n--;
	o->bytes -= it->bytes;
	free(it);
}

/* Unlinks the item that *link points to. */
static void unlink_item(outbox *o, struct item **link)
{
	struct item *it = *link;

	*link = it->next;
	if (o->tail == &it->next)
		o->tail = link;
	item_free(o, it);
}

void outbox_free(outbox *o)
{
	if (!o)
		return;
	while (o->head)
		unlink_item(o, &o->head);
	free(o);
}

size_t outbox_len(const outbox *o)
{
	return o->n;
}

size_t outbox_sendable(const outbox *o)
{
	return o->n - o->inflight;
}

/*
 * What a JSON string takes in a request: control characters are escaped
 * (an ESC of coloured output is 6 bytes), so that a request sized by it
 * stays within what the dispatcher takes.
 */
static size_t json_text_bytes(const json_t *str)
{
	const unsigned char *p = (const unsigned char *)json_string_value(str);
	size_t n = 2, len = json_string_length(str);

	for (size_t i = 0; p && i < len; i++)
		n += p[i] == '"' || p[i] == '\\' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r' || p[i] == '\b' ||
			     p[i] == '\f'
			 ? 2
		     : p[i] < 0x20 || p[i] == 0x7f ? 6
						   : 1;
	return n;
}

static int is_kind(json_t *ev, const char *kind)
{
	const char *k = json_string_value(json_object_get(ev, "kind"));

	return k && !strcmp(k, kind);
}

/* Drops the oldest droppable event; 0 when there was none. */
static int drop_one(outbox *o)
{
	for (struct item **l = &o->head; *l; l = &(*l)->next)
		if ((*l)->droppable && !(*l)->inflight) {
			unlink_item(o, l);
			return 1;
		}
	return 0;
}

int outbox_add(outbox *o, const char *instance, uint64_t generation, json_t *event, const char *blob)
{
	struct item *it;
	int r;

	if (!event)
		return err_set(ERR_NOMEM, "out of memory");
	/* The newest progress replaces a queued one of the same run. */
	if (is_kind(event, "progress"))
		for (it = o->head; it; it = it->next)
			if (it->progress && !it->inflight && it->generation == generation &&
			    !strcmp(it->instance, instance)) {
				json_decref(it->event);
				it->event = event;
				return 0;
			}
	it = calloc(1, sizeof(*it));
	if (!it) {
		json_decref(event);
		return err_set(ERR_NOMEM, "out of memory");
	}
	snprintf(it->instance, sizeof(it->instance), "%s", instance);
	it->generation = generation;
	it->event = event;
	it->progress = is_kind(event, "progress");
	it->droppable = it->progress || is_kind(event, "log");
	it->urgent = is_kind(event, "checkpoint") || is_kind(event, "exit");
	if (is_kind(event, "log"))
		it->bytes = json_text_bytes(json_object_get(event, "text"));
	if (blob) {
		if ((r = store_pin(o->st, blob)) < 0) {
			json_decref(event);
			free(it);
			return r;
		}
		snprintf(it->blob, sizeof(it->blob), "%s", blob);
	}
	*o->tail = it;
	o->tail = &it->next;
	o->n++;
	if (it->urgent)
		o->changes |= OUTBOX_URGENT;
	o->bytes += it->bytes;
	while ((o->n > OUTBOX_MAX_EVENTS || o->bytes > OUTBOX_MAX_BYTES) && drop_one(o))
		;
	return 0;
}

void outbox_forget(outbox *o, const char *instance, uint64_t generation)
{
	struct item **l = &o->head;

	while (*l)
		if ((*l)->generation != generation || strcmp((*l)->instance, instance)) {
			l = &(*l)->next;
		} else if ((*l)->inflight) {
			(*l)->gone = 1; /* the request that carries it still counts its items */
			l = &(*l)->next;
		} else {
			unlink_item(o, l);
		}
}

int outbox_has_exit(const outbox *o, const char *instance, uint64_t generation)
{
	for (const struct item *it = o->head; it; it = it->next)
		if (!it->gone && it->generation == generation && !strcmp(it->instance, instance) &&
		    is_kind(it->event, "exit"))
			return 1;
	return 0;
}

json_t *outbox_exits(const outbox *o)
{
	json_t *a = json_array();

	for (const struct item *it = o->head; a && it; it = it->next)
		if (!it->gone && is_kind(it->event, "exit"))
			json_array_append_new(a, json_pack("{sssI}", "instance", it->instance, "generation",
							   (json_int_t)it->generation));
	return a;
}

int outbox_changes(const outbox *o)
{
	return o->changes;
}

#define SAVED_MAX (OUTBOX_MAX_BYTES * 2 + (4u << 20))

int outbox_save(outbox *o, const char *path, const json_t *runs, int durable)
{
	json_t *all = json_array(), *doc = NULL;
	char *text = NULL;
	int r;

	if (!o->head && json_object_size(runs) == 0) {
		json_decref(all);
		if (unlink(path) < 0 && errno != ENOENT)
			return err_errno(ERR_IO, errno, "cannot remove '%s'", path);
		o->changes = 0;
		return 0;
	}
	for (const struct item *it = o->head; all && it; it = it->next)
		if (!it->gone &&
		    json_array_append_new(all, json_pack("{sssIsOss}", "instance", it->instance, "generation",
							 (json_int_t)it->generation, "event", it->event, "blob",
							 it->blob)) < 0) {
			json_decref(all);
			all = NULL;
		}
	if (all)
		doc = json_pack("{sisosO}", "version", 2, "events", all, "runs",
				runs ? (json_t *)runs : json_null());
	if (!doc || !(text = json_dumps(doc, JSON_COMPACT))) {
		r = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Without durable, it survives a crashed agent, which is the case to cover: saves are frequent. */
	r = durable ? fs_write_atomic(path, text, strlen(text), 0600)
		    : fs_write_renamed(path, text, strlen(text), 0600);
	if (r == 0)
		o->changes = 0;
out:
	free(text);
	json_decref(doc);
	return r;
}

int outbox_load(outbox *o, const char *path, json_t **runs)
{
	struct buf b = BUF_INIT(SAVED_MAX);
	json_t *doc = NULL, *all, *e;
	size_t i, dropped = 0;
	int r;

	if (runs)
		*runs = NULL;
	if ((r = fs_read_file(&b, path, SAVED_MAX)) < 0) {
		buf_release(&b);
		return r == ERR_NOTFOUND ? 0 : r;
	}
	doc = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	/* Version 1 was the array of events alone. */
	all = json_is_array(doc) ? doc : json_object_get(doc, "events");
	if (runs && json_is_object(json_object_get(doc, "runs")))
		*runs = json_incref(json_object_get(doc, "runs"));
	json_array_foreach(all, i, e)
	{
		const char *inst = json_string_value(json_object_get(e, "instance"));
		const char *blob = json_string_value(json_object_get(e, "blob"));
		json_t *gen = json_object_get(e, "generation"), *ev = json_object_get(e, "event");
		int v;

		/*
		 * A bundle is re-hashed: the cache fsyncs nothing, so one a machine crash tore is dropped
		 * with its event. The dispatcher then hears of no exit: the run is not among those this
		 * agent reports, and the instance continues elsewhere from its last stored checkpoint.
		 */
		if (!inst || !proto_id_is_valid(inst) || !json_is_integer(gen) ||
		    json_integer_value(gen) < 0 || !json_is_object(ev) ||
		    !json_is_string(json_object_get(ev, "kind")) || !blob ||
		    (*blob && (!digest_is_valid(blob) ||
			       /* Only a bundle that is torn or gone: a passing I/O error must not lose an exit. */
			       (v = store_verify(o->st, blob)) == ERR_CORRUPT || v == ERR_NOTFOUND))) {
			dropped++;
			continue;
		}
		if (outbox_add(o, inst, (uint64_t)json_integer_value(gen), json_incref(ev),
			       *blob ? blob : NULL) < 0)
			dropped++;
	}
	if (!json_is_array(all) || dropped)
		log_warn("'%s': %zu queued event(s) could not be restored", path,
			 json_is_array(all) ? dropped : 0);
	/* What is on disk is what was just loaded. */
	o->changes = 0;
	json_decref(doc);
	buf_release(&b);
	return 0;
}

/* Uploads the blob an item names. ERR_NET stops the flush; other failures change the event. */
static int upload(outbox *o, conn *c, struct item *it)
{
	char *path = store_path(o->st, it->blob);
	char note[600];
	int r;

	if (!path)
		return err_set(ERR_NOMEM, "out of memory");
	r = conn_upload(c, it->blob, path);
	free(path);
	if (r == ERR_NET || r == ERR_AUTH)
		return r;
	if (r < 0) {
		log_warn("instance '%s': cannot upload state %.12s: %s", it->instance, it->blob, err_msg());
		/* The event must not name a blob the dispatcher lacks. */
		snprintf(note, sizeof(note), "cannot upload the state: %s", err_msg());
		json_object_set_new(it->event, "state", json_null());
		json_object_set_new(it->event, "error", json_string(note));
		if (is_kind(it->event, "checkpoint"))
			it->skip = 1; /* a checkpoint without its state says nothing */
	}
	store_unpin(o->st, it->blob);
	it->blob[0] = '\0';
	return 0;
}

void outbox_set_inline_max(outbox *o, size_t max)
{
	o->inline_max = max < PROTO_INLINE_MAX ? max : PROTO_INLINE_MAX;
}

/*
 * A copy of the item's event that carries its blob (base64) when the blob
 * is small and intact: one request instead of an upload and a request.
 * NULL when it is not: the blob is uploaded. *bytes: the base64's length.
 */
static json_t *with_bundle(outbox *o, const struct item *it, size_t *bytes)
{
	struct buf blob = BUF_INIT(o->inline_max), text = BUF_INIT(PROTO_INLINE_MAX / 3 * 4 + 8);
	char *path = o->inline_max ? store_path(o->st, it->blob) : NULL;
	json_t *ev = NULL;
	digest_hex d;

	if (path && fs_read_file(&blob, path, o->inline_max) == 0) {
		digest_bytes(&d, blob.data ? blob.data : "", blob.len);
		/* One the disk changed goes the upload's way, which reports it without dropping its batch. */
		if (!strcmp(d.hex, it->blob) && buf_append_base64(&text, blob.data, blob.len) == 0 &&
		    (ev = json_copy(it->event)) &&
		    json_object_set_new(ev, "bundle", json_stringn(buf_str(&text), text.len)) < 0) {
			json_decref(ev);
			ev = NULL;
		}
	}
	*bytes = text.len;
	buf_release(&blob);
	buf_release(&text);
	free(path);
	return ev;
}

/* One instance generation's share of a request: its items at the head of the queue, where its answer is. */
struct batch {
	char instance[PROTO_ID_MAX + 1];
	uint64_t generation;
	size_t items; /* sent or skipped */
	int index;    /* in the request's "batches", -1: nothing to send */
};

struct outbox_req {
	struct batch batches[REQUEST_BATCHES];
	size_t nb;
	size_t items; /* in flight, at the queue's head */
	char *body;   /* JSON text, NULL when every item was skipped */
	int batched;  /* the "batches" form */
};

/*
 * Makes a batch ({"instance", "generation", "events"}) of the run of items
 * from first that belong to first's instance generation: at most
 * max_events items and, beyond the first, *room bytes (reduced by what it
 * takes). Blobs too large to ride inside their event are uploaded here.
 * *out is new, NULL when every item was skipped; *items counts them all.
 * An upload's ERR_NET or ERR_AUTH ends the batch early; with no item
 * taken it is returned.
 */
static int take_batch(outbox *o, conn *c, struct item *first, size_t max_events, size_t *room, json_t **out,
		      size_t *items)
{
	json_t *events = json_array();
	size_t n = 0, bytes = 0;
	int r = 0;

	*out = NULL;
	*items = 0;
	if (!events)
		return err_set(ERR_NOMEM, "out of memory");
	for (struct item *it = first; it && n < max_events && it->generation == first->generation &&
				      !strcmp(it->instance, first->instance);
	     it = it->next) {
		json_t *ev = NULL;
		size_t extra = 0;

		if (n > 0 && bytes + it->bytes > *room)
			break;
		if (it->blob[0] && !(ev = with_bundle(o, it, &extra)) && (r = upload(o, c, it)) < 0)
			break;
		if (ev && n > 0 && bytes + extra > *room) {
			json_decref(ev);
			break;
		}
		if (!it->skip)
			json_array_append(events, ev ? ev : it->event);
		json_decref(ev);
		bytes += it->bytes + extra + 64;
		n++;
	}
	if (r < 0 && n == 0) {
		json_decref(events);
		return r;
	}
	*room = bytes < *room ? *room - bytes : 0;
	*items = n;
	if (json_array_size(events) == 0) {
		json_decref(events);
		return 0;
	}
	*out = json_pack("{sssIso}", "instance", first->instance, "generation", (json_int_t)first->generation,
			 "events", events);
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

void outbox_set_batch_max(outbox *o, unsigned max)
{
	o->batch_max = max < REQUEST_BATCHES ? max : REQUEST_BATCHES;
}

/* What became of a batch the dispatcher answered (r: the request's outcome, resp: its answer). */
static void settle_batch(outbox *o, const struct batch *b, int r, json_t *resp,
			 void (*stale)(void *ud, const char *instance, uint64_t generation), void *ud)
{
	json_t *res = json_array_get(json_object_get(resp, "results"), (size_t)b->index);
	json_int_t status = json_integer_value(json_object_get(res, "status"));
	const char *why = json_string_value(json_object_get(res, "error"));

	if (r == 0 && res && status != 200) {
		r = status == 409 ? ERR_CONFLICT : ERR_INVALID;
		err_set(r, "POST /v1/agent/events: %lld %s", (long long)status, why ? why : "(no reason given)");
	}
	if (r == ERR_CONFLICT) {
		log_info("instance '%s' generation %llu is stale: %s", b->instance, (unsigned long long)b->generation,
			 err_msg());
		outbox_forget(o, b->instance, b->generation);
		if (stale)
			stale(ud, b->instance, b->generation);
	} else if (r < 0) {
		log_warn("instance '%s': events dropped: %s", b->instance, err_msg());
	}
}

int outbox_take(outbox *o, conn *c, struct outbox_req **out)
{
	struct outbox_req *q;
	size_t room = REQUEST_BYTES, events = REQUEST_EVENTS, max = o->batch_max ? o->batch_max : 1;
	json_t *sent = NULL, *body = NULL;
	struct item *it;
	int r = 0;

	*out = NULL;
	if (o->inflight)
		return err_set(ERR_EXISTS, "a request is under way already");
	if (!(q = calloc(1, sizeof(*q))) || !(sent = json_array())) {
		free(q);
		return err_set(ERR_NOMEM, "out of memory");
	}
	/* The queue's head, a batch per instance generation, as much as one request carries. */
	for (it = o->head; it && q->nb < max && events > 0 && (q->nb == 0 || room >= REQUEST_BYTES / 8);) {
		struct batch *b = &q->batches[q->nb];
		json_t *one = NULL;
		size_t n = 0;

		if ((r = take_batch(o, c, it, events < BATCH_EVENTS ? events : BATCH_EVENTS, &room, &one, &n)) < 0)
			break;
		snprintf(b->instance, sizeof(b->instance), "%s", it->instance);
		b->generation = it->generation;
		b->items = n;
		b->index = one ? (int)json_array_size(sent) : -1;
		if (one && json_array_append_new(sent, one) < 0) {
			r = err_set(ERR_NOMEM, "out of memory");
			break;
		}
		q->nb++;
		events -= n;
		for (; n > 0; n--, it = it->next) {
			it->inflight = 1;
			o->inflight++;
			q->items++;
		}
	}
	if (q->nb == 0 || r == ERR_NOMEM)
		goto out;
	r = 0;
	if (json_array_size(sent) > 0) {
		q->batched = o->batch_max > 0;
		body = q->batched ? json_pack("{sO}", "batches", sent) : json_incref(json_array_get(sent, 0));
		if (!body || !(q->body = json_dumps(body, JSON_COMPACT)))
			r = err_set(ERR_NOMEM, "out of memory");
	}
out:
	json_decref(body);
	json_decref(sent);
	if (q->nb == 0 || r < 0) {
		outbox_settle(o, q, r < 0 ? r : ERR_NOMEM, NULL, NULL, NULL);
		return r;
	}
	*out = q;
	return 0;
}

const char *outbox_req_body(const struct outbox_req *q)
{
	return q->body;
}

void outbox_settle(outbox *o, struct outbox_req *q, int r, json_t *resp,
		   void (*stale)(void *ud, const char *instance, uint64_t generation), void *ud)
{
	int kept = r == ERR_NET || r == ERR_AUTH || r == ERR_NOMEM;

	if (!q)
		return;
	/*
	 * A request of several runs refused as a whole (an older dispatcher that takes no batches, one
	 * that found it too large) must not lose their exits: they stay queued and go one run per
	 * request from now on, where a refusal is that run's alone.
	 */
	if (q->batched && r < 0 && !kept) {
		log_warn("the dispatcher refused a request of %zu run(s)' events (%s): sending one run per request "
			 "from now on", q->nb, err_msg());
		o->batch_max = 0;
		kept = 1;
	}
	/* Answered: everything sent leaves the queue first, then each batch's answer is acted on. */
	for (struct item **l = &o->head; q->items > 0; q->items--) {
		(*l)->inflight = 0;
		o->inflight--;
		if (kept && !(*l)->gone) {
			l = &(*l)->next;
			continue;
		}
		if (!kept)
			o->changes |= OUTBOX_SENT | ((*l)->urgent ? OUTBOX_URGENT : 0);
		unlink_item(o, l);
	}
	for (size_t i = 0; !kept && i < q->nb; i++)
		if (q->batches[i].index >= 0)
			settle_batch(o, &q->batches[i], r, resp, stale, ud);
	free(q->body);
	free(q);
}

int outbox_flush(outbox *o, conn *c, void (*stale)(void *ud, const char *instance, uint64_t generation),
		 void *ud)
{
	while (o->head) {
		struct outbox_req *q = NULL;
		json_t *resp = NULL;
		int r;

		if ((r = outbox_take(o, c, &q)) < 0)
			return r;
		r = q->body ? conn_request_text(c, q->batched ? &resp : NULL, "POST", "/v1/agent/events", q->body) : 0;
		outbox_settle(o, q, r, resp, stale, ud);
		json_decref(resp);
		if (r == ERR_NET || r == ERR_AUTH || r == ERR_NOMEM)
			return r;
	}
	return 0;
}
