#!/usr/bin/env bash
# One manifest on a heterogeneous cluster: dispatchd and four agents — x86_64
# native, aarch64, s390x and armhf, each the agent binary of its own ISA under
# qemu-user — every process in its own network namespace, TLS between them.
# Each instance runs on its node's own ISA, every agent executes only
# binaries of its ISA, results agree across ISAs, and the manifest's state
# arrives intact everywhere.
. "$(dirname "$0")/testlib.sh"

cluster_start x86_64 aarch64 s390x armhf

# walk: an SDK object whose state carries a u64 above INT64_MAX, a double and a
# UTF-8 string; primes: a plain program. Eight walks spread two per node.
python3 - "$top" "$CW/job.json" <<'PY'
import json, sys
top, out = sys.argv[1], sys.argv[2]
m = json.load(open(top + "/manifests/examples/walk.json"))
w = m["objects"][0]
w["source"]["path"] = top + "/manifests/examples/walk"
w["instances"] = 8
w["state"]["steps"] = 300000
p = {"name": "primes", "source": {"path": top + "/manifests/examples/primes"},
     "build": {"recipe": "c", "sources": ["primes.c"], "cflags": ["-ffp-contract=off"]},
     "args": ["0", "2000000"], "instances": 4}
m["objects"].insert(0, p)  # first: four primes spread over the four idle nodes
m["name"] = "hetero"
json.dump(m, open(out, "w"))
PY
cluster_cli submit "$CW/job.json" --wait --json >"$CW/result.json" || { cat "$CW/result.json"; cluster_fail "the job did not succeed"; }
job=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$CW/result.json")
cluster_cli status "$job" --json >"$CW/job-status.json"
cluster_cli nodes --json >"$CW/nodes.json"

# Per instance: its node's ISA, the target it ran, and (walk) its result.
for inst in $(python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(open(sys.argv[1]))["instances"]))' "$CW/job-status.json"); do
	cluster_cli result "$inst" --json >"$CW/$inst.result.json"
	cluster_cli logs "$inst" >"$CW/$inst.log"
done
python3 - "$CW" <<'PY' >"$CW/report.txt"
import json, os, sys
cw = sys.argv[1]
job = json.load(open(cw + "/job-status.json"))
nodes = {n["id"]: n for n in json.load(open(cw + "/nodes.json"))["nodes"]}
arch_names = {"x86_64": "x86_64", "aarch64": "aarch64", "s390x": "s390x", "armhf": "arm"}
for i in job["instances"]:
    node = nodes[i["node"]]
    res = json.load(open("%s/%s.result.json" % (cw, i["id"])))
    vals = (res.get("state") or {}).get("values", {})
    log = open("%s/%s.log" % (cw, i["id"])).read()
    line = next((l for l in log.splitlines() if l.startswith("arch=")), "")
    print(i["id"], i["object"], i["state"], node["isa"], i["isa"],
          vals.get("isa", "-"), vals.get("state_ok", "-"),
          json.dumps([vals.get("x"), vals.get("acc")]) if i["object"] == "walk" else "-",
          line.split()[0].split("=")[1] if line else "-",
          next((l.split("result=")[1] for l in log.splitlines() if "result=" in l), "-"))
PY
cat "$CW/report.txt"

check "12 instances" "$(wc -l <"$CW/report.txt")" 12
check "every instance done" "$(awk '$3 != "done"' "$CW/report.txt" | wc -l)" 0
check "every instance ran on its node's ISA" "$(awk '$4 != $5' "$CW/report.txt" | wc -l)" 0
check "walks ran on all four ISAs" "$(awk '$2 == "walk" {print $4}' "$CW/report.txt" | sort -u | wc -l)" 4
check "each walk reports the ISA it ran on (its node's)" \
	"$(awk '$2 == "walk" && $6 !~ "^"$4 {print}' "$CW/report.txt" | wc -l)" 0
check "the manifest's state arrived intact on every ISA" "$(awk '$2 == "walk" && $7 != "1"' "$CW/report.txt" | wc -l)" 0
check "walk results agree bit for bit across ISAs" "$(awk '$2 == "walk" {print $8}' "$CW/report.txt" | sort -u | wc -l)" 1
check "primes results agree across ISAs" "$(awk '$2 == "primes" {print $10}' "$CW/report.txt" | sort -u | wc -l)" 1
check "primes ran on several ISAs" "$([ "$(awk '$2 == "primes" {print $4}' "$CW/report.txt" | sort -u | wc -l)" -ge 2 ] && echo yes)" yes
check "logs --follow of a finished instance prints its whole log and returns" \
	"$(cluster_cli logs --follow i-1 2>/dev/null | cmp - "$CW/i-1.log" && echo same)" same
# A follow from the start of an object that writes for 3 s (the agent relays every 2 s: several
# pieces, read at growing offsets) ends when it is done, with all of it, once each.
cat >"$CW/ticker.json" <<JSON
{"manifest": 1, "name": "ticker", "objects": [{"name": "ticker", "source": {"path": "$here/ticker"},
  "build": {"recipe": "c", "sources": ["ticker.c"]}, "instances": 1}]}
JSON
tinst=$(cluster_cli submit "$CW/ticker.json" --json | jq_ 'd["instances"][0]')
cluster_cli logs --follow --timeout 120 "$tinst" >"$CW/ticker.follow" 2>"$CW/ticker.err" || cluster_fail "follow failed: $(cat "$CW/ticker.err")"
cluster_cli logs "$tinst" >"$CW/ticker.log"
# (Under qemu-user dispatch-run notes first that there is no seccomp filter.)
check "logs --follow of a writing object: all 150 lines, in order, the same as 'dispatch logs' after" \
	"$(grep -v '^dispatch-run: ' "$CW/ticker.follow" | cmp - <(seq 150 | sed 's/^/tick /') &&
		cmp "$CW/ticker.follow" "$CW/ticker.log" && echo same)" same
check "... it saw the instance run and end (stderr)" "$(grep -c 'running on\|done' "$CW/ticker.err")" 2
# A cancel decided while the instance's agent is slow (stopped for 2 s): the follow waits for the
# agent's report of the end, which brings the last of the log, instead of ending at the cancel.
cat >"$CW/ticker-long.json" <<JSON
{"manifest": 1, "name": "ticker-long", "objects": [{"name": "ticker", "source": {"path": "$here/ticker"},
  "build": {"recipe": "c", "sources": ["ticker.c"]}, "args": ["100000"], "instances": 1}]}
JSON
cluster_cli submit "$CW/ticker-long.json" --json >"$CW/ticker-long.out"
linst=$(jq_ 'd["instances"][0]' <"$CW/ticker-long.out")
wait_for "$linst" 'd["state"] == "running"' 60
lnode=$(api GET "/v1/instances/$linst" | jq_ 'd["node"]')
lname=$(cluster_cli nodes --json | jq_ "[n['name'] for n in d['nodes'] if n['id'] == '$lnode'][0]")
lagent=$(cat "$CW/agent-${lname#node-}.pid")
sleep 2.5 # a relay or two
cluster_cli logs --follow --timeout 120 "$linst" >"$CW/long.follow" 2>/dev/null &
lfollow=$!
sleep 1
kill -STOP "$lagent"
cluster_cli cancel "$(jq_ 'd["job"]' <"$CW/ticker-long.out")" >/dev/null
sleep 2
kill -CONT "$lagent"
wait "$lfollow" || true
cluster_cli logs "$linst" >"$CW/long.log"
check "logs --follow across a cancel the agent reports late: all of the log, as 'dispatch logs' has it" \
	"$(cmp "$CW/long.follow" "$CW/long.log" && echo same) $(grep -c '^tick ' "$CW/long.follow" | awk '{ print ($1 > 150) }')" "same 1"

# Every agent executed only binaries of its own ISA: the artifacts in its cache
# say so in their meta.json, and their ELF headers agree.
for isa in "${cluster_agents[@]}"; do
	metas=$(find "$CW/agent-$isa" -type f -size +1k | while read -r f; do
		if zstd -qdc "$f" 2>/dev/null | tar -xO meta.json 2>/dev/null; then :; fi
	done | python3 -c 'import json,sys
text = sys.stdin.read()
dec = json.JSONDecoder(); i = 0; isas = set()
while i < len(text):
    text_i = text[i:].lstrip()
    if not text_i: break
    obj, n = dec.raw_decode(text_i); i = len(text) - len(text_i) + n
    isas.add(obj["isa"])
print(" ".join(sorted(isas)))')
	check "agent $isa executed only $isa artifacts" "$metas" "$isa"
done
check "the agents talked TLS: dispatchd serves https" "$(grep -c 'listening on https://' "$CW/dispatchd.log")" 1

# A process an object detaches from its session (setsid) ends with the run
# when the job is cancelled, on every ISA: each run has a control group of
# its own (common/cgroup.h). The nodes share the host's pid namespace, so the
# strays' pids are looked at here.
cat >"$CW/detach.json" <<JSON
{"manifest": 1, "name": "detach", "objects": [{"name": "detach", "source": {"path": "$here/detach"},
  "build": {"recipe": "c", "sources": ["detach.c"]}, "instances": 4}]}
JSON
cluster_cli submit "$CW/detach.json" --json >"$CW/detach.out"
djob=$(jq_ 'd["job"]' <"$CW/detach.out")
strays=()
for inst in $(jq_ '" ".join(d["instances"])' <"$CW/detach.out"); do
	pid=
	for _ in $(seq 240); do
		pid=$(cluster_cli logs "$inst" 2>/dev/null | sed -n 's/^stray \([0-9]*\)$/\1/p')
		[ -n "$pid" ] && break
		sleep 0.25
	done
	[ -n "$pid" ] || cluster_fail "instance $inst never reported its stray"
	strays+=("$pid")
done
# Alive, out of the object's session, in a run's group of an agent.
group_ok=0
for pid in "${strays[@]}"; do
	[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] &&
		grep -q "^0::.*/dispatch-agent\.[0-9a-f]\{16\}/i-[0-9]*-[0-9]*\$" "/proc/$pid/cgroup" && group_ok=$((group_ok + 1))
done
check "4 strays alive, each in a session of its own and in its run's control group" "$group_ok" 4
check "every agent made its runs' control groups (no note that it could not)" \
	"$(cat "$CW"/agent-*.log | grep -c 'no control group of their own' || true)" 0
# `dispatch logs --follow` on a running instance: it ends by itself when the run does.
finst=$(jq_ 'd["instances"][0]' <"$CW/detach.out")
cluster_cli logs --follow "$finst" >"$CW/follow.out" 2>"$CW/follow.err" &
follower=$!
sleep 1
check "logs --follow is still following the running instance" "$(kill -0 $follower 2>/dev/null && echo yes)" yes
cluster_cli cancel "$djob" >/dev/null
frc=timeout
for _ in $(seq 60); do
	if ! kill -0 $follower 2>/dev/null; then
		wait $follower && frc=0 || frc=$?
		break
	fi
	sleep 0.25
done
check "logs --follow ended by itself when the run was cancelled, exit 0" "$frc" 0
check "... having printed the instance's log" "$(grep -c '^stray [0-9]*$' "$CW/follow.out")" 1
check "... and its end on stderr" "$(grep -c 'cancelled' "$CW/follow.err")" 1
dead() { [ ! -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
for _ in $(seq 120); do
	left=0
	for pid in "${strays[@]}"; do dead "$pid" || left=$((left + 1)); done
	[ $left = 0 ] && break
	sleep 0.25
done
check "dispatch cancel: every detached process ended with its run" "$left" 0

checks_done hetero
