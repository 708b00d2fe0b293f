#!/usr/bin/env bash
# Lost nodes. A walk (64-bit integer and double state, a checkpoint every
# second) runs on the x86_64 node when
#   1. its agent is killed with SIGKILL and never restarted, and
#   2. (another walk) the node's link is cut with `ip link set down` and healed
#      after the walk has been finished elsewhere.
# Each time the node is declared lost after its TTL, the walk continues on the
# aarch64 node (emulated) from its last checkpoint, ends with the result of an
# uninterrupted run, and completes exactly once; the healed node's own result
# of the old generation is refused.
. "$(dirname "$0")/testlib.sh"

export CLUSTER_HEARTBEAT=1 CLUSTER_TTL=4
cluster_start x86_64 aarch64
X86=$(node_of x86_64) A64=$(node_of aarch64)

job_file() { # name sleep_us
	python3 - "$top" "$CW/$1.json" "$2" <<'PY'
import json, sys
top, out, sleep_us = sys.argv[1:4]
m = json.load(open(top + "/manifests/examples/walk.json"))
m["name"] = out.rsplit("/", 1)[1][:-5]
w = m["objects"][0]
w["source"]["path"] = top + "/manifests/examples/walk"
w["instances"] = 1
w["checkpoint"] = {"interval_s": 1}
w["state"].update(steps=400000, sleep_us=int(sleep_us))
json.dump(m, open(out, "w"))
PY
}
events() { api GET "/v1/instances/$1" | jq_ '" ".join("%s@%s" % (h["event"], h["isa"]) for h in d["history"] if h["event"] in ("running", "lost", "done"))'; }

# The uninterrupted reference, on x86_64 alone.
api POST "/v1/nodes/$A64/drain" >/dev/null
job_file reference 0
cluster_cli submit "$CW/reference.json" --wait --json >"$CW/reference.out"
ref=$(walk_result "$(jq_ 'd["instances"][0]["id"]' <"$CW/reference.out")")

# start_on_x86 NAME: a slow walk (30 ms pause every 1024 steps, ~12 s on x86_64)
# running on x86_64 with at least one checkpoint stored; the balancer is off so
# that only the loss moves it.
start_on_x86() {
	api POST "/v1/nodes/$A64/drain" >/dev/null
	job_file "$1" 30000
	inst=$(cluster_cli submit "$CW/$1.json" --no-balance --json | jq_ 'd["instances"][0]')
	wait_for "$inst" 'd["state"] == "running" and d["node"] == "'"$X86"'" and d["progress"] > 0.15 and d["state_digest"] is not None'
	api POST "/v1/nodes/$A64/undrain" >/dev/null
}

# 1. kill -9 of the agent, never restarted.
start_on_x86 killed
kill -9 "$(cat "$CW/agent-x86_64.pid")"
wait_for "$inst" 'd["state"] == "running" and d["node"] == "'"$A64"'"' 60
wait_for "$inst" 'd["state"] == "done"' 300
check "killed agent: the node is lost" \
	"$(node_state "$X86")" lost
check "killed agent: lost on x86_64, continued and done on aarch64" "$(events "$inst")" \
	"running@x86_64 lost@x86_64 running@aarch64 done@aarch64"
check "killed agent: generation 2 started from the last checkpoint generation 1 stored" \
	"$(api GET "/v1/instances/$inst" | jq_ '[h["detail"][:12] for h in d["history"] if h["event"] == "checkpoint" and h["isa"] == "x86_64"][-1] == [h["detail"] for h in d["history"] if h["event"] == "placed"][-1].rsplit(" ", 1)[1]')" True
check "killed agent: the result is the uninterrupted run's" "$(walk_result "$inst")" "$ref"
check "killed agent: one instance, done once" \
	"$(api GET "/v1/instances/$inst" | jq_ 'sum(h["event"] == "done" for h in d["history"])')" 1

# The killed node comes back: a new agent on its work dir (same node identity)
# re-adopts what the old one left; the walk's copy it finds there belongs to
# generation 1 and is refused.
cluster_start_agent x86_64
for t in $(seq 240); do
	grep -q "instance '$inst' generation 1 is stale" "$CW/agent-x86_64.log" && break
	sleep 0.25
done
check "killed agent: back up, its copy's report of generation 1 was refused as stale" \
	"$(grep -c "instance '$inst' generation 1 is stale" "$CW/agent-x86_64.log")" 1
check "killed agent: still done once, by generation 2" \
	"$(api GET "/v1/instances/$inst" | jq_ '"%d %d %s" % (sum(h["event"] == "done" for h in d["history"]), d["generation"], d["isa"])')" "1 2 aarch64"

# 2. The link cut and healed.
start_on_x86 cut
net_link x86_64 down
wait_for "$inst" 'd["state"] == "running" and d["node"] == "'"$A64"'"' 60
# The x86_64 copy runs on without its dispatcher; let it finish there: its exit
# waits in the agent's outbox (saved as soon as it is queued), its run
# directory is already gone.
exit_queued() {
	python3 - "$CW/agent-x86_64/outbox.json" "$inst" <<'EOF_PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(1)
sys.exit(0 if any(e["instance"] == sys.argv[2] and e["event"]["kind"] == "exit" for e in d["events"]) else 1)
EOF_PY
}
for t in $(seq 240); do
	exit_queued && break
	sleep 0.25
done
exit_queued || cluster_fail "the cut-off copy did not finish"
wait_for "$inst" 'd["state"] == "done"' 300
net_link x86_64 up
for t in $(seq 240); do
	grep -q "instance '$inst' generation 1 is stale" "$CW/agent-x86_64.log" &&
		[ "$(node_state "$X86")" = up ] && break
	sleep 0.25
done
check "cut link: the healed node is up again" \
	"$(node_state "$X86")" up
check "cut link: the healed node's result of generation 1 was refused as stale" \
	"$(grep -c "instance '$inst' generation 1 is stale" "$CW/agent-x86_64.log")" 1
check "cut link: lost on x86_64, continued and done on aarch64" "$(events "$inst")" \
	"running@x86_64 lost@x86_64 running@aarch64 done@aarch64"
check "cut link: the result is the uninterrupted run's" "$(walk_result "$inst")" "$ref"
check "cut link: done once, by generation 2" \
	"$(api GET "/v1/instances/$inst" | jq_ '"%d %d" % (sum(h["event"] == "done" for h in d["history"]), d["generation"])')" "1 2"

checks_done lost
