#!/usr/bin/env bash
# Checkpoint/continue across ISAs and remote fork, on the heterogeneous cluster.
# One walk (64-bit integer and double state) starts on x86_64, is stopped and
# continued on s390x (big-endian), migrated to armhf (32-bit), then to
# aarch64, and ends bit-identical to an uninterrupted run. Then three forks
# of one checkpoint give the results of uninterrupted runs with those fork
# indices.
. "$(dirname "$0")/testlib.sh"

cluster_start x86_64 s390x armhf aarch64
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

# The uninterrupted reference, on x86_64 alone.
for n in "$S390" "$ARM" "$A64"; do api POST "/v1/nodes/$n/drain" >/dev/null; done
job_file reference instances 1
cluster_cli submit "$CW/reference.json" --wait --json >"$CW/reference.out"
ref=$(walk_result "$(jq_ 'd["instances"][0]["id"]' <"$CW/reference.out")")

# The chain: slow enough (a pause every 1024 steps) to be caught running on every hop,
# with 128 KiB of ballast in its state: too large to ride inside the exit event and
# the start message, so its checkpoints are uploaded and fetched as blobs (the forks'
# small ones below travel inline).
job_file chain instances 1 "{'sleep_us': 30000, 'ballast_kib': 128}"
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
check "the result is bit-identical to the uninterrupted run" "$(walk_result "$inst")" "$ref"
check "the chain's checkpoints were larger than 64 KiB (sent as blobs, not inline)" \
	"$(api GET "/v1/blobs/$(jq_ 'd["state_digest"]' <"$CW/chain-instance.json")" | wc -c | awk '{ print ($1 > 65536) }')" 1
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
check "the forks' checkpoint is small enough to travel inline" "$(wc -c <"$CW/ckpt.tar.zst" | awk '{ print ($1 <= 65536) }')" 1
forks=$(api POST "/v1/instances/$parent/fork" '{"count": 3}' | jq_ '" ".join(d["forks"])')
api POST "/v1/instances/$parent/continue" '{}' >/dev/null
job_file forkref fork 4 "{'fork_at': $at}"
cluster_cli submit "$CW/forkref.json" --wait --json >"$CW/forkref.out"
fjob=$(jq_ 'd["id"]' <"$CW/forkref.out")
for f in $forks "$parent"; do wait_for "$f" 'd["state"] == "done"' 300; done
declare -A want
for r in $(api GET "/v1/jobs/$fjob" | jq_ '" ".join("%s=%s" % (i["fork_index"], i["id"]) for i in d["instances"])'); do
	want[${r%%=*}]=$(walk_result "${r#*=}")
done
check "the parent (fork 0) matches the uninterrupted run" "$(walk_result "$parent")" "${want[0]}"
for f in $forks; do
	k=$(api GET "/v1/instances/$f" | jq_ 'd["fork_index"]')
	isa=$(api GET "/v1/instances/$f" | jq_ 'd["isa"]')
	check "fork $k (ran on $isa) matches the uninterrupted run with fork index $k" "$(walk_result "$f")" "${want[$k]}"
done
check "the three forks differ from each other" "$(for f in $forks; do walk_result "$f"; done | sort -u | wc -l)" 3

checks_done migrate
