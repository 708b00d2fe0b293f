#!/usr/bin/env bash
# bench/balance.sh - makespan of a job of uneven instances on a heterogeneous
# cluster whose nodes differ several-fold in speed, three ways in one run:
# an equal static split, dispatch's placement with balancing, and the lower
# bound W / sum of the nodes' speeds (speeds measured in the same run).
#
# Run from the repository root, as root, after building the project and the
# foreign agents (scripts/setup does both):
#   bench/balance.sh [--instances N] [--units U] [--slow ISA] [--rounds R]
#                    [--wait-idle S] [--json FILE]
#
# The cluster (tests/cluster/cluster.sh): dispatchd and two agents, each in its
# own network namespace, TLS. The fast node is the native x86_64 agent pinned
# to CPU 0; the slow node is the agent cross-built for --slow ISA (aarch64)
# running under qemu-user, pinned to CPU 1. Each offers one slot (one CPU).
# The object (bench/balance/work.c, SDK) does units * weight(k) steps of
# integer and double arithmetic for instance k, weight 1..5; it checkpoints
# when asked, so it can be moved.
#
# Rows (one job of N instances each, builds cached by a warm-up job first):
#   static       an equal split fixed in advance: instances k = 0, 2, 4 ... on
#                the fast node, 1, 3, 5 ... on the slow one (two objects
#                restricted by "targets"), no balancing
#   placement    one object, both nodes, `submit --no-balance`: instances are
#                placed as slots free up, never moved
#   balanced     the same with balancing (the default): the balancer also
#                moves running instances from the slow node to the idle fast one
#   lower bound  W / (s_fast + s_slow): W the job's steps, s a node's speed
#                (steps per second) measured from its instances in the static
#                row (each node ran its half alone, one instance at a time)
# Makespan: from the job's 'submitted' to its last instance's 'done'
# (dispatchd's clock). With --rounds R the three jobs run R times, interleaved.
# Goals: balanced <= 1.10 x the lower bound; static / balanced >= 3 when one
# node is much slower.
#
# Everything runs in a mktemp -d directory removed on exit; the cluster is
# stopped; every wait is bounded (a job gets at most 20 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh
bench_name=bench/balance.sh

N=16
UNITS=
SLOW=aarch64
ROUNDS=1
WAIT_IDLE=0
JSON_OUT=
while [[ $# -gt 0 ]]; do
	case "$1" in
	--instances) [[ ${2:-} =~ ^[0-9]+$ && $2 -ge 2 && $2 -le 200 && $(($2 % 2)) == 0 ]] ||
		bench_die "--instances needs an even number 2..200"; N=$2; shift 2 ;;
	--units) [[ ${2:-} =~ ^[1-9][0-9]*$ && $2 -le 100000000000 ]] || bench_die "--units needs steps"; UNITS=$2; shift 2 ;;
	--slow) [[ ${2:-} =~ ^(aarch64|armhf|s390x|ppc64le)$ ]] || bench_die "--slow needs aarch64, armhf, s390x or ppc64le"
		SLOW=$2; shift 2 ;;
	--rounds) [[ ${2:-} =~ ^[1-9]$ ]] || bench_die "--rounds needs 1..9"; ROUNDS=$2; shift 2 ;;
	*) bench_common_opt "$@"; shift "$BENCH_SHIFT" ;;
	esac
done
[[ $(id -u) == 0 ]] || bench_die "needs root (network namespaces)"
[[ $(nproc) -ge 2 ]] || bench_die "needs 2 CPUs: one per node"

BW=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-bench.XXXXXX")
chmod 711 "$BW"
export TMPDIR=$BW
. tests/cluster/lib.sh
. tests/cluster/cluster.sh
trap 'cluster_stop; rm -rf "$BW"' EXIT
trap 'exit 130' INT TERM
bench_machine
FAST=$(uname -m)

# Units: 150,000,000 steps per weight unit is about 0.45 s of one core of the
# machine in docs/benchmarks.md, so the lower bound is about 20 s for 16
# instances; --units scales it.
UNITS=${UNITS:-150000000}

cluster_cpus=([$FAST]=0 [$SLOW]=1)
echo "== cluster: dispatchd, $FAST agent on CPU 0, $SLOW agent (qemu-user) on CPU 1"
cluster_start "$FAST" "$SLOW"

# manifest NAME UNITS: NAME.json (one object, both nodes) and NAME-static.json (the fixed split).
manifest() {
	python3 - "$PWD" "$BW" "$1" "$2" "$N" "$FAST" "$SLOW" <<'PY'
import json, sys
top, bw, name, units, n, fast, slow = sys.argv[1:8]
units, n = int(units), int(n)
def obj(oname, targets, count, offset, stride):
    return {"name": oname, "source": {"path": top + "/bench/balance"},
            "build": {"recipe": "c", "sources": ["work.c"], "cflags": ["-ffp-contract=off"]},
            "sdk": True, "targets": targets, "fork": count,
            "state": {"units": units, "offset": offset, "stride": stride}}
json.dump({"manifest": 1, "name": name, "objects": [obj("work", [fast, slow], n, 0, 1)]},
          open("%s/%s.json" % (bw, name), "w"))
json.dump({"manifest": 1, "name": name + "-static",
           "objects": [obj("work-fast", [fast], n // 2, 0, 2), obj("work-slow", [slow], n // 2, 1, 2)]},
          open("%s/%s-static.json" % (bw, name), "w"))
PY
}

# run LABEL MANIFEST [submit options]: submits, waits, saves the job and its instances to $BW/LABEL.json.
run() {
	local label=$1 m=$2 job st t
	shift 2
	job=$(cluster_cli submit "$m" --json "$@" | jq -r .job) || bench_die "submit of $m failed"
	for t in $(seq 2400); do
		st=$(cluster_cli status "$job" --json | jq -r .state)
		[[ $st == done || $st == failed || $st == cancelled ]] && break
		sleep 0.5
	done
	[[ $st == done ]] || bench_die "$label: job $job is $st: $(cluster_cli status "$job" 2>&1 | tail -5)"
	cluster_cli status "$job" --json | jq -c '.instances[].id' | tr -d '"' | while read -r i; do
		python3 tests/cluster/api.py GET "/v1/instances/$i"
		echo
	done | jq -s --argjson job "$(python3 tests/cluster/api.py GET "/v1/jobs/$job")" \
		'{job: $job, instances: .}' >"$BW/$label.json"
}

echo "== warm-up: builds for both nodes, caches on both agents"
manifest warm 1000
run warm "$BW/warm.json"
run warm-static "$BW/warm-static.json" --no-balance
manifest job "$UNITS"
echo "== $N instances, $UNITS steps per weight unit, weights 1..5 (W = $(python3 -c "
print(sum($UNITS * (1 + (k * 7 + 3) % 5) for k in range($N)))") steps)"
bench_wait_idle "$WAIT_IDLE"
bench_busy_begin
for r in $(seq "$ROUNDS"); do
	echo "-- round $r: static";    run "static-$r" "$BW/job-static.json" --no-balance
	echo "-- round $r: placement"; run "placement-$r" "$BW/job.json" --no-balance
	echo "-- round $r: balanced";  run "balanced-$r" "$BW/job.json"
done
busy=$(bench_busy_end)
grep "balance:" "$CW/dispatchd.log" | tail -20 >"$BW/moves.txt" || true

python3 - "$BW" "$ROUNDS" "$UNITS" "$FAST" "$SLOW" "$busy" "${JSON_OUT:-}" <<'PY'
import json, statistics, sys
bw, rounds, units, fast, slow, busy, json_out = sys.argv[1:8]
rounds, units = int(rounds), int(units)
weight = lambda k: 1 + (k * 7 + 3) % 5

def load(label):
    return json.load(open("%s/%s.json" % (bw, label)))

def makespan(d):
    ev = [h for i in d["instances"] for h in i["history"]]
    t0 = min(h["time"] for h in ev if h["event"] == "submitted")
    t1 = max(h["time"] for h in ev if h["event"] == "done")
    return t1 - t0

def steps_of(inst, label):
    # static: the object says which half; k = offset + stride * fork index
    obj, f = inst["object"], inst["fork_index"]
    k = (2 * f + (1 if obj == "work-slow" else 0)) if label.startswith("static") else f
    return units * weight(k)

rows = {"static": [], "placement": [], "balanced": [], "lower bound": []}
speeds = []
moves = []
for r in range(1, rounds + 1):
    st = load("static-%d" % r)
    busy_s, work = {}, {}
    for i in st["instances"]:
        run = [h["time"] for h in i["history"] if h["event"] == "running"][0]
        done = [h["time"] for h in i["history"] if h["event"] == "done"][-1]
        busy_s[i["isa"]] = busy_s.get(i["isa"], 0) + done - run
        work[i["isa"]] = work.get(i["isa"], 0) + steps_of(i, "static")
    s = {isa: work[isa] / busy_s[isa] for isa in work}
    speeds.append(s)
    W = sum(work.values())
    rows["lower bound"].append(W / sum(s.values()))
    for label in ("static", "placement", "balanced"):
        rows[label].append(makespan(load("%s-%d" % (label, r))))
    b = load("balanced-%d" % r)
    moves.append(sum(h["event"] == "balance" for i in b["instances"] for h in i["history"]))

med = {k: statistics.median(v) for k, v in rows.items()}
sf = statistics.median(s[fast] for s in speeds)
ss = statistics.median(s[slow] for s in speeds)
print()
print("node speeds (steps/s, from the static row): %s %.3g, %s %.3g: the fast node is %.1fx the slow one"
      % (fast, sf, slow, ss, sf / ss))
print("machine busy during the runs: %s%% of both CPUs (the benchmark's own nodes use up to 100%%)" % busy)
print()
print("| | makespan s (median of %d) | x lower bound |" % rounds)
print("| --- | ---: | ---: |")
for k in ("lower bound", "balanced", "placement", "static"):
    print("| %s | %.1f | %.2f |" % (k, med[k], med[k] / med["lower bound"]))
print()
print("balanced / lower bound: %.2fx (goal <= 1.10: %s)" % (med["balanced"] / med["lower bound"],
      "met" if med["balanced"] <= 1.10 * med["lower bound"] else "NOT met"))
print("static / balanced: %.2fx (goal >= 3: %s)" % (med["static"] / med["balanced"],
      "met" if med["static"] >= 3 * med["balanced"] else "NOT met"))
print("moves by the balancer per balanced run: %s" % moves)
if json_out:
    json.dump({"rows": rows, "speeds": speeds, "moves": moves, "busy_pct": int(busy), "units": units,
               "fast": fast, "slow": slow}, open(json_out, "w"), indent=1)
PY
echo
echo "the balancer's last decisions:"
sed 's/^/  /' "$BW/moves.txt"
