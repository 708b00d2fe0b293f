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

checks_done hetero
