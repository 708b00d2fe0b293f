/* core.c - the shared context's small helpers. */
#include "core.h"

#include <sys/random.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void core_lock(struct core *c)
{
	pthread_mutex_lock(&c->lock);
}

void core_unlock(struct core *c)
{
	pthread_mutex_unlock(&c->lock);
}

double core_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void core_history(struct core *c, int64_t instance, const char *event, int64_t node, const char *isa,
		  const char *detail)
{
	store_run(c->db, NULL, "INSERT INTO history(instance, time, event, node, isa, detail) VALUES(?, ?, ?, ?, ?, ?)",
		  "idsiss", instance, core_now(), event, node, isa, detail);
}

int core_token(char out[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char raw[32];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0)
			return -1;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hx[raw[i] >> 4];
		out[2 * i + 1] = hx[raw[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* Room for node ids up to node in seen and acked; -1 when out of memory. */
static int track(struct core *c, int64_t node)
{
	size_t n;
	double *ns;
	int64_t *na;

	if ((size_t)node < c->nseen)
		return 0;
	n = (size_t)node * 2 + 16;
	if (!(ns = realloc(c->seen, n * sizeof(*ns))))
		return -1;
	c->seen = ns;
	if (!(na = realloc(c->acked, n * sizeof(*na))))
		return -1;
	c->acked = na;
	memset(ns + c->nseen, 0, (n - c->nseen) * sizeof(*ns));
	memset(na + c->nseen, 0, (n - c->nseen) * sizeof(*na));
	c->nseen = n;
	return 0;
}

void core_seen(struct core *c, int64_t node, double when)
{
	if (node <= 0 || track(c, node) < 0)
		return; /* the store keeps the older time: at worst a node looks quiet */
	c->seen[node] = when;
}

void core_acked(struct core *c, int64_t node, int64_t seq)
{
	if (node <= 0 || seq <= 0 || track(c, node) < 0)
		return; /* kept until a later acknowledgement: a poll never returns them again */
	if (seq > c->acked[node])
		c->acked[node] = seq;
}

void core_seen_flush(struct core *c)
{
	int any = 0;

	for (size_t i = 1; i < c->nseen; i++)
		any |= c->seen[i] > 0 || c->acked[i] > 0;
	if (!any || store_begin(c->db) < 0)
		return;
	for (size_t i = 1; i < c->nseen; i++) {
		if (c->seen[i] > 0) {
			store_run(c->db, NULL, "UPDATE nodes SET last_seen = MAX(last_seen, ?) WHERE id = ?", "di",
				  c->seen[i], (int64_t)i);
			c->seen[i] = 0;
		}
		if (c->acked[i] > 0) {
			store_run(c->db, NULL, "DELETE FROM messages WHERE node = ? AND seq <= ?", "ii", (int64_t)i,
				  c->acked[i]);
			c->acked[i] = 0;
		}
	}
	if (store_commit(c->db) < 0)
		store_rollback(c->db);
}
