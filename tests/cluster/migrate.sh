#!/usr/bin/env bash
# Checkpoint/continue across ISAs and remote fork, on the heterogeneous cluster.
# One walk (64-bit integer and double state) starts on x86_64, is stopped and
# continued on s390x (big-endian), migrated to armhf (32-bit), then to
# aarch64, and ends bit-identical to an uninterrupted run. Then three forks
# of one checkpoint give the results of uninterrupted runs with those fork
# indices.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/cluster.sh"
net_require_root
trap cluster_stop EXIT

pass=0 fail=0
check() { if [ "$2" = "$3" ]; then echo "PASS: $1"; pass=$((pass + 1)); else echo "FAIL: $1: expected '$3', got '$2'"; fail=$((fail + 1)); fi; }
api() { python3 "$here/api.py" "$@"; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

cluster_start x86_64 s390x armhf aarch64
node_of() { cluster_cli nodes --json | jq_ "[n['id'] for n in d['nodes'] if n['isa'] == '$1'][0]"; }
X86=$(node_of x86_64) S390=$(node_of s390x) ARM=$(node_of armhf) A64=$(node_of aarch64)

STEPS=600000
job_file() { # name instances|fork N [extra state as python dict]
	python3 - "$top" "$CW/$1.json" "$2" "$3" "${4:-{\}}" "$STEPS" <<'PY'
import ast, json, sys
top, out, how, n, extra, steps = sys.argv[1:7]
m = json.load(open(top + "/manifests/examples/walk.json"))
m["name"] = out.rsplit("/", 1)[1][:-5]
w = m["objects"][0]
w["source"]["path"] = top + "/manifests/examples/walk"
w.pop("instances", None)
w[how] = int(n)
w["state"].update(steps=int(steps), **ast.literal_eval(extra))
json.dump(m, open(out, "w"))
PY
}
wait_for() { # instance python-condition-on-d [seconds]
	local t
	for t in $(seq $((${3:-120} * 4))); do
		[ "$(api GET "/v1/instances/$1" | jq_ "$2")" = True ] && return 0
		sleep 0.25
	done
	api GET "/v1/instances/$1" >&2
	cluster_fail "instance $1 never got to: $2"
}
result_of() { cluster_cli result "$1" --json | jq_ 'json.dumps([d["state"]["values"]["x"], d["state"]["values"]["acc"]])'; }

# The uninterrupted reference, on x86_64 alone.
for n in "$S390" "$ARM" "$A64"; do api POST "/v1/nodes/$n/drain" >/dev/null; done
job_file reference instances 1
cluster_cli submit "$CW/reference.json" --wait --json >"$CW/reference.out"
ref=$(result_of "$(jq_ 'd["instances"][0]["id"]' <"$CW/reference.out")")

# The chain: slow enough (a pause every 1024 steps) to be caught running on every hop.
job_file chain instances 1 "{'sleep_us': 30000}"
inst=$(cluster_cli submit "$CW/chain.json" --json | jq_ 'd["instances"][0]')
wait_for "$inst" 'd["state"] == "running" and d["node"] == "'"$X86"'" and d["progress"] > 0.05'
for n in "$S390" "$ARM" "$A64"; do api POST "/v1/nodes/$n/undrain" >/dev/null; done

# x86_64 -> s390x by stop and continue.
api POST "/v1/instances/$inst/stop" >/dev/null
wait_for "$inst" 'd["state"] == "checkpointed"'
p1=$(api GET "/v1/instances/$inst" | jq_ 'd["progress"]')
api POST "/v1/instances/$inst/continue" "{\"node\": \"$S390\"}" >/dev/null
wait_for "$inst" 'd["state"] == "running" and d["node"] == "'"$S390"'" and d["progress"] > '"$p1"' + 0.03'
# s390x -> armhf, armhf -> aarch64 by migrate.
for hop in "$ARM" "$A64"; do
	p=$(api GET "/v1/instances/$inst" | jq_ 'd["progress"]')
	api POST "/v1/instances/$inst/migrate" "{\"node\": \"$hop\"}" >/dev/null
	wait_for "$inst" 'd["state"] in ("running", "done") and d["node"] == "'"$hop"'" and d["progress"] > '"$p"
done
wait_for "$inst" 'd["state"] == "done"' 300
api GET "/v1/instances/$inst" >"$CW/chain-instance.json"
check "the chain ran on x86_64, s390x, armhf, aarch64 in that order" \
	"$(jq_ '" ".join(h["isa"] for h in d["history"] if h["event"] == "running")' <"$CW/chain-instance.json")" \
	"x86_64 s390x armhf aarch64"
check "each hop continued from a checkpoint (3 checkpointed events)" \
	"$(jq_ 'sum(h["event"] == "checkpointed" for h in d["history"])' <"$CW/chain-instance.json")" 3
check "generation counts the four placements" "$(jq_ 'd["generation"]' <"$CW/chain-instance.json")" 4
check "the result is bit-identical to the uninterrupted run" "$(result_of "$inst")" "$ref"
check "the migrations' cost was measured" \
	"$(jq_ 'sum(h["event"] == "running" and "moved" in (h["detail"] or "") for h in d["history"])' <"$CW/chain-instance.json")" 2

# Forks: continue one checkpoint three times; compare with uninterrupted runs
# that fork at the same step.
job_file parent instances 1 "{'sleep_us': 30000}"
parent=$(cluster_cli submit "$CW/parent.json" --json | jq_ 'd["instances"][0]')
wait_for "$parent" 'd["state"] == "running" and d["progress"] > 0.1'
api POST "/v1/instances/$parent/stop" >/dev/null
wait_for "$parent" 'd["state"] == "checkpointed"'
digest=$(api GET "/v1/instances/$parent" | jq_ 'd["state_digest"]')
api GET "/v1/blobs/$digest" >"$CW/ckpt.tar.zst"
at=$(zstd -qdc "$CW/ckpt.tar.zst" | tar -xO state.json | jq_ 'd["values"]["i"]')
forks=$(api POST "/v1/instances/$parent/fork" '{"count": 3}' | jq_ '" ".join(d["forks"])')
api POST "/v1/instances/$parent/continue" '{}' >/dev/null
job_file forkref fork 4 "{'fork_at': $at}"
cluster_cli submit "$CW/forkref.json" --wait --json >"$CW/forkref.out"
fjob=$(jq_ 'd["id"]' <"$CW/forkref.out")
for f in $forks "$parent"; do wait_for "$f" 'd["state"] == "done"' 300; done
declare -A want
for r in $(api GET "/v1/jobs/$fjob" | jq_ '" ".join("%s=%s" % (i["fork_index"], i["id"]) for i in d["instances"])'); do
	want[${r%%=*}]=$(result_of "${r#*=}")
done
check "the parent (fork 0) matches the uninterrupted run" "$(result_of "$parent")" "${want[0]}"
for f in $forks; do
	k=$(api GET "/v1/instances/$f" | jq_ 'd["fork_index"]')
	isa=$(api GET "/v1/instances/$f" | jq_ 'd["isa"]')
	check "fork $k (ran on $isa) matches the uninterrupted run with fork index $k" "$(result_of "$f")" "${want[$k]}"
done
check "the three forks differ from each other" "$(for f in $forks; do result_of "$f"; done | sort -u | wc -l)" 3

echo "migrate: $pass passed, $fail failed"
[ $fail -eq 0 ]
