#!/usr/bin/env bash
# Failures during a run: dispatchd killed with -9 and restarted, dispatchd cut
# off the network for a while, and an agent killed with -9 and restarted. No
# accepted job is lost, running objects keep running, and the run completes.
. "$(dirname "$0")/testlib.sh"

cluster_start x86_64 aarch64

# Two slow walks (one per node), ~15 s each, progress every 1024 steps.
slow_job() {
	python3 - "$top" "$CW/slow.json" <<'PY'
import json, sys
top, out = sys.argv[1], sys.argv[2]
m = json.load(open(top + "/manifests/examples/walk.json"))
w = m["objects"][0]
w["source"]["path"] = top + "/manifests/examples/walk"
w["instances"] = 2
w["state"].update(steps=300000, sleep_us=50000)
json.dump(m, open(out, "w"))
PY
	cluster_cli submit "$CW/slow.json" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"])'
}

wait_running() { # job: until every instance runs with some progress
	local t
	for t in $(seq 240); do
		[ "$(cluster_cli status "$1" --json | jq_ 'all(i["state"] == "running" and i["progress"] > 0 for i in d["instances"])')" = True ] && return 0
		sleep 0.25
	done
	cluster_fail "job $1 never ran"
}

finish() { # job: wait for it, then report generations and 'lost' events
	cluster_cli submit --help >/dev/null
	local t
	for t in $(seq 480); do
		case $(cluster_cli status "$1" --json | jq_ 'd["state"]') in done | failed | cancelled) break ;; esac
		sleep 0.25
	done
	cluster_cli status "$1" --json >"$CW/$1.json"
}

# Supervisors and objects of this cluster only (other runs may be going on on this machine): the
# supervisor's --dir and the object's executable (its run's bin/ or the agent's unpacked tree) are in $CW.
pids_of_objects() { pgrep -f "$CW/.*/walk" | sort | tr '\n' ' '; }
# Two objects and their two supervisors at least, or the comparisons below would prove nothing.
check_found() { check "$1: its objects are found" "$(wc -w <<<"$2" | awk '{ print ($1 >= 4) ? "yes" : "no: " $1 }')" yes; }

# 1. dispatchd killed with -9 in the middle of the run, restarted 3 s later.
job=$(slow_job)
wait_running "$job"
before=$(pids_of_objects)
check_found "kill -9 of dispatchd" "$before"
pid=$(cat "$CW/dispatchd.pid")
kill -9 "$pid"
sleep 3
check "dispatchd is gone" "$(pgrep -f "dispatchd --state-dir $CW/state" || echo gone)" gone
check "objects keep running while dispatchd is dead" "$(pids_of_objects)" "$before"
cluster_start_dispatchd
finish "$job"
check "kill -9 of dispatchd: the accepted job completes" "$(jq_ 'd["state"]' <"$CW/$job.json")" done
check "kill -9 of dispatchd: no instance was started again (generation 1)" \
	"$(jq_ 'max(i["generation"] for i in d["instances"])' <"$CW/$job.json")" 1

# 2. dispatchd cut off the network for 8 s (less than the nodes' TTL), then healed.
job=$(slow_job)
wait_running "$job"
before=$(pids_of_objects)
check_found "outage" "$before"
net_link disp down
sleep 8
check "objects keep running through the outage" "$(pids_of_objects)" "$before"
net_link disp up
finish "$job"
check "outage: the job completes" "$(jq_ 'd["state"]' <"$CW/$job.json")" done
check "outage: no instance was started again" "$(jq_ 'max(i["generation"] for i in d["instances"])' <"$CW/$job.json")" 1

# 3. An agent killed with -9 and restarted: it re-attaches to its object.
job=$(slow_job)
wait_running "$job"
before=$(pids_of_objects)
check_found "agent restart" "$before"
pid=$(cat "$CW/agent-x86_64.pid")
kill -9 "$pid"
sleep 2
check "the agent is gone" "$(pgrep -f "dispatch-agent .*--work-dir $CW/agent-x86_64 " || echo gone)" gone
check "objects keep running while their agent is dead" "$(pids_of_objects)" "$before"
cluster_start_agent x86_64
finish "$job"
check "agent restart: the job completes" "$(jq_ 'd["state"]' <"$CW/$job.json")" done
check "agent restart: no instance was started again" "$(jq_ 'max(i["generation"] for i in d["instances"])' <"$CW/$job.json")" 1
for inst in $(jq_ '" ".join(i["id"] for i in d["instances"])' <"$CW/$job.json"); do
	check "agent restart: $inst state intact" "$(cluster_cli result "$inst" --json | jq_ 'd["state"]["values"]["state_ok"]')" 1
done

checks_done resilience
