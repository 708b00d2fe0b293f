/* balance.c - progress-driven migration of running instances. */
#include "balance.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "scheduler.h"

#define MIN_GAIN_S 2.0
#define MIN_GAIN_FRACTION 0.15
#define MIN_RUN_S 2.0         /* observe an instance this long before moving it */
#define DEFAULT_MOVE_COST_S 1.0

/* A node's learned rate (fraction of one instance per second) for a job's object; 0 when unknown. */
static double node_rate(struct core *c, int64_t node, int64_t job, const char *object)
{
	json_t *row = NULL;
	double rate = 0;

	if (store_row(c->db, &row, "SELECT rate, samples FROM speeds WHERE node = ? AND job = ? AND object = ?",
		      "iis", node, job, object) == 0 && json_integer_value(json_object_get(row, "samples")) >= 2)
		rate = json_number_value(json_object_get(row, "rate"));
	json_decref(row);
	return rate;
}

static double move_cost(struct core *c)
{
	json_t *row = NULL;
	double cost = DEFAULT_MOVE_COST_S;

	if (store_row(c->db, &row, "SELECT CAST(value AS REAL) AS v FROM meta WHERE key = 'move_cost'", NULL) == 0)
		cost = json_number_value(json_object_get(row, "v"));
	json_decref(row);
	return cost;
}

/* Sends the checkpoint-and-move of inst to node `to`, recording why. */
static void move(struct core *c, json_t *inst, int64_t to, const char *why)
{
	int64_t id = json_integer_value(json_object_get(inst, "id"));
	int64_t from = json_integer_value(json_object_get(inst, "node"));
	char iid[32];
	json_t *msg;

	snprintf(iid, sizeof(iid), "i-%lld", (long long)id);
	msg = json_pack("{sssssIss}", "type", "stop", "instance", iid, "generation",
			json_integer_value(json_object_get(inst, "generation")), "mode", "checkpoint");
	store_run(c->db, NULL, "UPDATE instances SET want_node = ?, stop_requested = ?, hold = 0 WHERE id = ?", "idi",
		  to, core_now(), id);
	core_history(c, id, "balance", from, json_string_value(json_object_get(inst, "isa")), why);
	sched_send(c, from, msg);
	json_decref(msg);
	log_info("balance: %s from n-%lld to n-%lld: %s", iid, (long long)from, (long long)to, why);
}

/* Idle nodes: up, a free slot even counting moves already headed there, nothing pending for them. */
static json_t *idle_nodes(struct core *c)
{
	json_t *nodes = NULL;

	store_rows(c->db, &nodes,
		   "SELECT n.id, n.isa, n.cores FROM nodes n WHERE n.state = 'up' AND n.cores > "
		   " (SELECT COUNT(*) FROM instances i WHERE (i.node = n.id AND i.state IN ('starting', 'running')) "
		   "  OR (i.want_node = n.id AND i.state IN ('starting', 'running', 'pending')))", NULL);
	return nodes;
}

void balance_pass(struct core *c)
{
	json_t *idle = NULL, *running = NULL, *b, *inst;
	double cost, now = core_now();
	size_t i, j;

	/* Pending work goes to idle nodes through placement, not migration. */
	if (store_int(c->db, 0, "SELECT COUNT(*) FROM instances WHERE state = 'pending' AND hold = 0", NULL) > 0)
		return;
	idle = idle_nodes(c);
	if (json_array_size(idle) == 0)
		goto out;
	if (store_rows(c->db, &running,
		       "SELECT i.*, n.state AS node_state, n.load AS node_load, n.cores AS node_cores, "
		       " (SELECT COUNT(*) FROM instances x WHERE x.node = i.node AND x.state IN ('starting', 'running') "
		       "  AND x.stop_requested IS NULL) AS node_running "
		       "FROM instances i JOIN jobs j ON j.id = i.job JOIN nodes n ON n.id = i.node "
		       "WHERE i.state = 'running' AND i.stop_requested IS NULL AND j.balance = 1", NULL) < 0)
		goto out;
	cost = move_cost(c);
	json_array_foreach(idle, j, b) {
		int64_t to = json_integer_value(json_object_get(b, "id"));
		const char *to_isa = json_string_value(json_object_get(b, "isa"));
		json_t *best = NULL;
		double best_gain = 0;
		char why[256] = "";

		json_array_foreach(running, i, inst) {
			int64_t job = json_integer_value(json_object_get(inst, "job"));
			int64_t from = json_integer_value(json_object_get(inst, "node"));
			const char *object = json_string_value(json_object_get(inst, "object"));
			double p = json_number_value(json_object_get(inst, "progress"));
			double r = json_number_value(json_object_get(inst, "rate"));
			double seen = json_number_value(json_object_get(inst, "last_progress_time"));
			double placed = json_number_value(json_object_get(inst, "placed_at"));
			/*
			 * A drained node's work must go, and so must what an overloaded node
			 * runs beyond its cores (it joined again with fewer CPUs). Load
			 * averages are not used: agents sharing a host all report the host's
			 * load, which says nothing about any one of them.
			 */
			int drained = !strcmp(json_string_value(json_object_get(inst, "node_state")), "drained");
			int overloaded = json_integer_value(json_object_get(inst, "node_running")) >
					 json_integer_value(json_object_get(inst, "node_cores"));
			int forced = drained || overloaded;
			double ra, rb, stay, go, gain;

			if (from == to || json_is_true(json_object_get(inst, "moving")) ||
			    !store_int(c->db, 0, "SELECT COUNT(*) FROM builds WHERE job = ? AND object = ? AND isa = ? "
				       "AND status = 'ok'", "iss", job, object, to_isa))
				continue;
			if (!forced && (r <= 0 || now - seen > 30 || p >= 1 || now - placed < MIN_RUN_S))
				continue; /* no fresh rate yet, or just arrived: observe it first */
			if (r <= 0)
				r = 1e-3;
			ra = node_rate(c, from, job, object);
			rb = node_rate(c, to, job, object);
			if (rb <= 0 || ra <= 0) {
				if (!forced)
					continue;
				rb = ra = 1; /* unknown: assume the same speed; the move is forced anyway */
			}
			stay = (1 - p) / r;
			go = cost + (1 - p) / (r * rb / ra);
			gain = stay - go;
			if (!forced && (gain < MIN_GAIN_S || gain < MIN_GAIN_FRACTION * stay))
				continue;
			if (forced)
				gain += 1e6; /* drained or overloaded nodes are emptied first */
			if (gain > best_gain) {
				best_gain = gain;
				best = inst;
				snprintf(why, sizeof(why), "%spredicted %.1f s more on n-%lld, %.1f s on n-%lld "
					 "(speed x%.2f, move %.2f s)",
					 drained ? "node drained; " : overloaded ? "node runs more than its cores; " : "",
					 stay, (long long)from, go, (long long)to, rb / ra, cost);
			}
		}
		if (best) {
			int64_t from = json_integer_value(json_object_get(best, "node"));
			move(c, best, to, why);
			json_object_set_new(best, "moving", json_true());
			/* One fewer stays on its node: the others see it in node_running. */
			json_array_foreach(running, i, inst)
				if (json_integer_value(json_object_get(inst, "node")) == from)
					json_object_set_new(inst, "node_running",
							    json_integer(json_integer_value(json_object_get(inst, "node_running")) - 1));
		}
	}
out:
	json_decref(idle);
	json_decref(running);
}
