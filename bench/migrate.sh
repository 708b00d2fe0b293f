#!/usr/bin/env bash
# bench/migrate.sh - what moving a running object costs: the bytes a migration
# moves against the object's resident memory (what process migration would
# copy), and the latency from the stop request to running on another node
# with the artifact cached.
#
# Run from the repository root, as root, after building the project (and the
# aarch64 agent, scripts/foreign aarch64, for the cross-ISA rows):
#   bench/migrate.sh [--runs N] [--cross-runs N] [--trace N] [--sleep-us US]
#                    [--settle S] [--wait-idle S] [--json FILE]
#
# The cluster is tests/cluster/cluster.sh: dispatchd and three agents, each in
# its own network namespace on 198.18.x.y, TLS: two native x86_64 agents
# (node-a, node-b) and an aarch64 agent under qemu-user (node-aarch64,
# emulated; not started with --cross-runs 0). The object is the walk example
# (manifests/examples/walk, an SDK object with 64-bit integer and double
# state, the only example that checkpoints) with steps = 10^15, so it never
# ends, and sleep_us = US (default 0: it computes flat out on one core),
# submitted with --no-balance (only the benchmark moves it).
#
# Warm-up: the walk is moved until it has run on node-a and node-b (both
# caches hold the artifact), then it moves N times (default 30) between them,
# A -> B -> A ..., each time:
#   1. just before the stop, the object's memory: VmRSS (/proc/PID/status),
#      Rss, Pss, the dirty pages (Private_Dirty + Shared_Dirty) and
#      Anonymous (/proc/PID/smaps_rollup: the pages a CRIU-style dump
#      writes; the executable's clean file pages it would not, and dirty
#      counts them too while the freshly unpacked executable is not yet
#      written back); PID from the agent's log
#      ("started: walk (pid N)"), checked against the instance directory's
#      pid file (WORK/inst/I-G/pid: "SUPERVISOR OBJECT");
#   2. POST /v1/instances/I/migrate {"node": OTHER} (curl), then waits for the
#      destination agent's log line "generation G started" (benchtool waitfor)
#      and for GET /v1/instances/I to say running there, generation G;
#   3. the bytes on the two nodes' links (the bridge ports, rx + tx) from
#      before the request to after that: everything the migration sent over
#      the network (TLS, HTTP, TCP/IP headers), plus whatever else the nodes
#      sent meanwhile (long polls, heartbeats, progress events).
# then pauses S seconds (default 0.5). Afterwards, from the instance's history
# (dispatchd's clock): 'migrate requested' -> 'checkpointed' (stop sent over
# the long poll, the object writes its state and exits, the agent packs the
# bundle and reports the exit, the bundle inside the event when it is at most
# 64 KiB, uploaded first otherwise) -> 'placed' -> 'running' on the other
# node (start message over the long poll, carrying a bundle of at most 64 KiB,
# else the state is fetched; unpacked, object spawned, 'running' reported); the agents' log lines (time-stamped by
# benchtool stamp, same host clock) split those: the stop reaching the source
# agent, the object's exit seen and its state packed, the start handled on the
# destination. The state bundle that moved is the 'checkpointed' digest: its
# size in dispatchd's store (STATE/cache/cas/sha256/..), checked once against
# the body GET /v1/blobs/DIGEST returns. The start message is the
# long-poll reply body that carries it, rebuilt byte for byte from the fields
# dispatchd packs (dispatcher/scheduler.c start_instance and inline_state,
# api.c agent_messages) but for the digits of its sequence number. The
# payload is bundle + start message: the state crosses two links (source to
# dispatchd, dispatchd to destination), the second time inside the message.
# Moves in which the source agent read the object's "checkpoint 1" progress
# line before its exit are counted: it then packs, stores, uploads and reports
# the state as a periodic checkpoint (history event 'checkpoint') before it
# handles the exit, which packs it again.
# With --trace N (default 0), N more native moves with strace -f on dispatchd
# and both agents (their supervisors, objects and packers included): fsync and
# fdatasync calls per move and the time spent in them, per process; not in
# the latency figures (strace slows everything it follows).
# With --cross-runs M (default 10, 0: none) the walk then moves M times each
# way between node-a and the emulated aarch64 node (after one warm-up round
# trip): clearly emulated figures, for the cross-ISA path.
#
# Interference: the CPU time other programs used during the native series is
# the busy time in /proc/stat minus the CPU of this script's process tree
# (dispatchd, the agents, the supervisors and objects: benchtool treecpu).
#
# Bounded: every wait has a time limit, the whole run a deadline; everything
# lives in a mktemp -d directory removed on exit (kept, with the cluster's
# logs, with BENCH_KEEP=1) and every process started is stopped (the
# namespaces are deleted). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh
bench_name=bench/migrate.sh

RUNS=30
CROSS=10
TRACE=0
SLEEP_US=0
SETTLE=0.5
WAIT_IDLE=0
JSON_OUT=
while [[ $# -gt 0 ]]; do
	case "$1" in
	--runs) [[ ${2:-} =~ ^[1-9][0-9]*$ && $2 -le 1000 ]] || bench_die "--runs needs 1..1000"; RUNS=$2; shift 2 ;;
	--cross-runs) [[ ${2:-} =~ ^[0-9]+$ && $2 -le 200 ]] || bench_die "--cross-runs needs 0..200"; CROSS=$2; shift 2 ;;
	--trace) [[ ${2:-} =~ ^[0-9]+$ && $2 -le 100 ]] || bench_die "--trace needs 0..100"; TRACE=$2; shift 2 ;;
	--sleep-us) [[ ${2:-} =~ ^[0-9]+$ && $2 -le 1000000 ]] || bench_die "--sleep-us needs 0..1000000"; SLEEP_US=$2; shift 2 ;;
	--settle) [[ ${2:-} =~ ^[0-9]+(\.[0-9]+)?$ ]] || bench_die "--settle needs seconds"; SETTLE=$2; shift 2 ;;
	*) bench_common_opt "$@"; shift "$BENCH_SHIFT" ;;
	esac
done
[[ $(id -u) == 0 ]] || bench_die "needs root (network namespaces)"
command -v curl >/dev/null || bench_die "'curl' is not installed"
[[ $TRACE == 0 ]] || command -v strace >/dev/null || bench_die "--trace needs strace"
if [[ $CROSS -gt 0 && ! -x build-aarch64/agent/dispatch-agent ]]; then
	bench_die "no aarch64 agent (scripts/foreign aarch64), or use --cross-runs 0"
fi

bench_init bench/migrate.sh
bench_machine
DEADLINE=$((SECONDS + 600 + (RUNS + TRACE + 2 * CROSS) * 20)) # the whole run
R=$BW/results
mkdir -p "$R"

# tests/cluster/cluster.sh on private copies of the binaries (a concurrent
# rebuild of build/ cannot swap them mid-run); logs time-stamped on arrival.
mkdir -p "$BW/build/dispatcher" "$BW/build/agent" "$BW/build/cli"
cp "$BIN/dispatchd" "$BW/build/dispatcher/"
cp "$BIN/dispatch-agent" "$BIN/dispatch-run" "$BW/build/agent/"
cp "$BIN/dispatch" "$BW/build/cli/"
chmod -R 755 "$BW/build"
export DISPATCH_BUILD_DIR=$BW/build DISPATCH_SOURCE_DIR=$bench_top
CLUSTER_STAMP="$BT stamp"
[[ -z ${BENCH_KEEP:-} ]] || KEEP_CLUSTER=1 # the logs too
. tests/cluster/lib.sh
. tests/cluster/cluster.sh
bench_on_exit cluster_stop
nodes=(a:x86_64 b:x86_64)
[[ $CROSS -gt 0 ]] && nodes+=(aarch64)
echo "== cluster: dispatchd, agents ${nodes[*]} (network namespaces, TLS)"
# Not in an `||` list: that would turn off `set -e` inside cluster_start; it
# prints why and exits when something fails.
TMPDIR=$BW cluster_start "${nodes[@]}"
TOKEN=$(cat "$CW/state/operator.token")

api() { # METHOD PATH [JSON BODY]
	local body=()
	[[ $# -ge 3 ]] && body=(--data "$3")
	curl -sS --fail-with-body --max-time 30 --cacert "$CW/cert.pem" -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' -X "$1" "${body[@]}" "$CLUSTER_URL$2"
}
declare -A NODE_ID NODE_OF_ID
for name in "${cluster_agents[@]}"; do
	NODE_ID[$name]=$(api GET /v1/nodes | jq -r --arg n "node-$name" '.nodes[] | select(.name == $n) | .id')
	[[ -n ${NODE_ID[$name]} ]] || bench_die "node-$name did not join"
	NODE_OF_ID[${NODE_ID[$name]}]=$name
done
echo "   $(for n in "${cluster_agents[@]}"; do printf '%s=%s ' "node-$n" "${NODE_ID[$n]}"; done)"

# The walk, forever: one instance, no balancing.
mkdir -p "$BW/m"
jq --arg src "$bench_top/manifests/examples/walk" --argjson sleep "$SLEEP_US" '
	.name = "migrate" | .objects[0].source.path = $src | .objects[0].instances = 1
	| .objects[0].state.steps = 1000000000000000 | .objects[0].state.sleep_us = $sleep' \
	manifests/examples/walk.json >"$BW/m/walk.json"

echo "== idle check before the object starts"
bench_wait_idle "$WAIT_IDLE"
BUSY_BEFORE=$(bench_idle_probe)
echo "   CPUs ${BUSY_BEFORE}% busy with other work"

out=$(bench_cli submit "$BW/m/walk.json" --no-balance --json) || bench_die "submit failed: $out"
JOB=$(jq -r .job <<<"$out")
INST=$(jq -r '.instances[0]' <<<"$out")
bench_on_exit "curl -sS --max-time 10 --cacert '$CW/cert.pem' -H 'Authorization: Bearer $TOKEN' -X POST '$CLUSTER_URL/v1/jobs/$JOB/cancel'"
for ((i = 0; i < 1200; i++)); do
	js=$(api GET "/v1/instances/$INST")
	[[ $(jq -r .state <<<"$js") == running ]] && break
	[[ $(jq -r .state <<<"$js") == failed ]] && bench_die "$INST failed: $(jq -c . <<<"$js")"
	sleep 0.25
done
[[ $(jq -r .state <<<"$js") == running ]] || bench_die "$INST is not running after 300 s: $(jq -c . <<<"$js")"
CUR=${NODE_OF_ID[$(jq -r .node <<<"$js")]}
GEN=$(jq -r .generation <<<"$js")
echo "   job $JOB, instance $INST running on node-$CUR ($(jq -r '.isa + ":" + .level' <<<"$js"))"

# The object's pid from the agent's log line for generation G of INST on NAME.
obj_pid() { # NAME G
	sed -n "s/.*instance '$INST' generation $2 started: walk (pid \([0-9]*\)).*/\1/p" "$CW/agent-$1.log" | tail -1
}
# "VmRSS Rss Pss dirty Anonymous" in bytes, dirty = Private_Dirty + Shared_Dirty.
mem_of() {
	{ grep '^VmRSS:' "/proc/$1/status" && cat "/proc/$1/smaps_rollup"; } 2>/dev/null | awk '
		$1 == "VmRSS:" { v = $2 } $1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } $1 == "Anonymous:" { a = $2 }
		$1 == "Private_Dirty:" || $1 == "Shared_Dirty:" { d += $2 }
		END { if (r == "") exit 1; printf "%d %d %d %d %d\n", v * 1024, r * 1024, p * 1024, d * 1024, a * 1024 }'
}
# rx + tx bytes of every bridge port: "vOCTET BYTES" lines.
links() { ip -n "$net_switch" -s -j link show | jq -r '.[] | "\(.ifname) \(.stats64.rx.bytes + .stats64.tx.bytes)"'; }
port_of() { echo "v$(net_addr "$1" | sed 's/.*\.//')"; }
port_bytes() { awk -v p="$1" '$1 == p { print $2 }' <<<"$2"; }

# move LABEL DEST: migrates the walk from $CUR to DEST and waits until it runs
# there; appends "LABEL SRC DEST GEN t_request VmRSS Rss Pss dirty anon
# src_link_bytes dst_link_bytes" to $R/moves.txt.
move() {
	local label=$1 dst=$2 src=$CUR pid mem="- - - - -" l0 l1 t0 i js st
	[[ $SECONDS -lt $DEADLINE ]] || bench_die "out of time (--runs too large for the deadline)"
	pid=$(obj_pid "$src" "$GEN")
	if [[ ${cluster_isa[$src]} == "$(uname -m)" ]]; then
		[[ -n $pid && $(cut -d' ' -f2 "$CW/agent-$src/inst/$INST-$GEN/pid" 2>/dev/null) == "$pid" ]] ||
			bench_die "cannot find the object's pid on node-$src (log: '$pid')"
		# its run's bin/ or the agent's shared unpacked tree
		[[ $(readlink "/proc/$pid/exe") == "$CW/agent-$src/"*/walk ]] || bench_die "pid $pid is not the walk"
		mem=$(mem_of "$pid") || bench_die "cannot read the memory of pid $pid"
	fi
	l0=$(links)
	t0=$EPOCHREALTIME
	api POST "/v1/instances/$INST/migrate" "{\"node\": \"${NODE_ID[$dst]}\"}" >/dev/null ||
		bench_die "migrate $INST to node-$dst refused"
	"$BT" waitfor 120 "$CW/agent-$dst.log" "instance '$INST' generation $((GEN + 1)) started" ||
		bench_die "$INST did not start on node-$dst: $(api GET "/v1/instances/$INST" | jq -c '.history[-4:]')"
	for ((i = 0; i < 3000; i++)); do
		js=$(api GET "/v1/instances/$INST")
		st=$(jq -r '"\(.state) \(.node) \(.generation)"' <<<"$js")
		[[ $st == "running ${NODE_ID[$dst]} $((GEN + 1))" ]] && break
		[[ $st == failed* || $st == done* ]] && bench_die "$INST: $st: $(jq -c '.history[-4:]' <<<"$js")"
		sleep 0.01
	done
	[[ $st == "running ${NODE_ID[$dst]} $((GEN + 1))" ]] || bench_die "$INST: $st, not running on node-$dst"
	l1=$(links)
	echo "$label $src $dst $((GEN + 1)) $t0 $mem" \
		"$(($(port_bytes "$(port_of "$src")" "$l1") - $(port_bytes "$(port_of "$src")" "$l0")))" \
		"$(($(port_bytes "$(port_of "$dst")" "$l1") - $(port_bytes "$(port_of "$dst")" "$l0")))" >>"$R/moves.txt"
	CUR=$dst
	GEN=$((GEN + 1))
	sleep "$SETTLE"
}

: >"$R/moves.txt"
echo "== warm-up: the walk runs on node-a and on node-b once (both agents cache the artifact)"
[[ $CUR == a ]] || move warm a
move warm b
move warm a

other() { if [[ $CUR == a ]]; then echo b; else echo a; fi; }
echo "== $RUNS moves between node-a and node-b (native x86_64), ${SETTLE} s apart"
ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
c0=$(ticks)
o0=$("$BT" treecpu $$)
w0=$SECONDS
for ((k = 0; k < RUNS; k++)); do
	move native "$(other)"
done
c1=$(ticks)
o1=$("$BT" treecpu $$)
SERIES_S=$((SECONDS - w0))
# busy ticks, all ticks, ours -> "busy% others% ours%"
INTERF=$(awk -v a="$c0" -v b="$c1" -v o0="$o0" -v o1="$o1" -v hz="$(getconf CLK_TCK)" 'BEGIN { split(a, x, " "); split(b, y, " ");
	busy = y[1] - x[1]; all = y[2] - x[2] + 1e-9; ours = o1 - o0;
	printf "%.0f %.0f %.0f %.1f", 100 * busy / all, 100 * (busy - ours) / all, 100 * ours / all, (busy - ours) / hz }')

if [[ $TRACE -gt 0 ]]; then
	echo "== trace: $TRACE more moves with strace -f on dispatchd and both agents (fsync, fdatasync)"
	declare -A TPID=([dispatchd]=$(bench_ns_pid disp "$BW/build/dispatcher/dispatchd") \
		[agent-a]=$(bench_ns_pid a "$BW/build/agent/dispatch-agent") [agent-b]=$(bench_ns_pid b "$BW/build/agent/dispatch-agent"))
	tr_pids=()
	for t in "${!TPID[@]}"; do
		[[ -n ${TPID[$t]} ]] || bench_die "cannot find the pid of $t"
		ls "/proc/${TPID[$t]}/task" >"$R/$t.tids"
		strace -f -ttt -T -e trace=fsync,fdatasync -o "$R/$t.strace" -p "${TPID[$t]}" 2>/dev/null &
		tr_pids+=($!)
		bench_on_exit "kill $!"
	done
	sleep 1
	move traced "$(other)" # the object that ran before strace was attached is not followed: not counted
	T_TRACE=$EPOCHREALTIME
	for ((k = 0; k < TRACE; k++)); do
		move traced "$(other)"
	done
	sleep 0.5
	kill "${tr_pids[@]}" 2>/dev/null || true
	wait "${tr_pids[@]}" 2>/dev/null || true
fi

if [[ $CROSS -gt 0 ]]; then
	echo "== cross-ISA (EMULATED aarch64 agent and object under qemu-user): warm-up round trip, then $CROSS each way"
	[[ $CUR == a ]] || move warm a
	move warm aarch64
	move warm a
	for ((k = 0; k < CROSS; k++)); do
		move x86-to-aarch64 aarch64
		move aarch64-to-x86 a
	done
fi

# ---------------------------------------------------------------------------
api GET "/v1/instances/$INST" >"$R/instance.json"
api GET "/v1/jobs/$JOB" >"$R/job.json"
# One line per move, in order: t_request checkpointed digest placed target running
# checkpoint_events moved_detail.
jq -r '.history as $h | [range(0; $h | length) | select($h[.].event == "migrate requested")] as $ms
	| range(0; $ms | length) as $k
	| ($h[$ms[$k] + 1:(if $k + 1 < ($ms | length) then $ms[$k + 1] else ($h | length) end)]) as $r
	| def ev(e): [$r[] | select(.event == e)][0];
	  [$h[$ms[$k]].time, ev("checkpointed").time, ev("checkpointed").detail, ev("placed").time,
	   (ev("placed").detail // "" | (capture("(?<t>[a-z0-9_]+:[A-Za-z0-9._-]+)").t // "?")), ev("running").time,
	   ([$r[] | select(.event == "checkpoint")] | length),
	   (ev("running").detail // "-" | gsub(" "; "_"))] | map(tostring) | join(" ")' \
	"$R/instance.json" >"$R/history.txt"
[[ $(wc -l <"$R/history.txt") == $(wc -l <"$R/moves.txt") ]] ||
	bench_die "the history has $(wc -l <"$R/history.txt") moves, the benchmark made $(wc -l <"$R/moves.txt")"
grep -q ' null ' "$R/history.txt" && bench_die "a move lacks an event in the history: $(grep ' null ' "$R/history.txt" | head -2)"

# The first stamp at or after T of a line containing TEXT in an agent's log.
stamp_after() { # NAME T TEXT
	awk -v t="$2" -v s="$3" '$1 >= t && index($0, s) { print $1; found = 1; exit } END { if (!found) print "null" }' \
		"$CW/agent-$1.log"
}
cas_size() { stat -c %s "$CW/state/cache/cas/sha256/${1:0:2}/$1"; }
artifact_of() { # TARGET
	jq -r --arg t "$1" '.builds[] | select(.target == $t) | .digest' "$R/job.json"
}
# The long-poll reply body carrying a start message (api.c agent_messages): SEQ stands for the sequence number.
# A state bundle of at most 64 KiB rides in it, base64 (scheduler.c inline_state).
start_msg_bytes() { # GEN ARTIFACT STATE
	local b64=""
	(($(cas_size "$3") <= 65536)) && b64=$(base64 -w0 "$CW/state/cache/cas/sha256/${3:0:2}/$3")
	jq -cn --arg i "$INST" --argjson g "$1" --arg a "$2" --arg s "$3" --arg b "$b64" '
		{seq: 100, messages: [{type: "start", instance: $i, generation: $g, artifact: $a, entry: "walk", args: [],
		  state: $s, fork_index: 0, limits: {cpu_s: 0, memory: 0, wall_s: 0}}
		  + (if $b == "" then {} else {state_bundle: $b} end) + {checkpoint_s: 0, seq: 100}]}' |
		tr -d '\n' | wc -c
}
# moves.txt + history.txt + agent stamps -> all.txt, one line per move:
#  1 label 2 src 3 dst 4 gen 5 t_bench 6 VmRSS 7 Rss 8 Pss 9 dirty 10 anon 11 src_link 12 dst_link
#  13 requested 14 checkpointed 15 placed 16 running 17 stop_seen(src agent) 18 exited(src agent)
#  19 started(dst agent) 20 bundle_bytes 21 start_msg_bytes 22 digest 23 checkpoint_events
paste -d' ' "$R/moves.txt" "$R/history.txt" | while read -r label src dst gen tb v r p d a ls ld treq tck digest tpl target trun nck _; do
	stop_seen=$(stamp_after "$src" "$treq" "instance '$INST': checkpoint requested")
	exited=$(stamp_after "$src" "$treq" "instance '$INST' generation $((gen - 1)) exited")
	started=$(stamp_after "$dst" "$treq" "instance '$INST' generation $gen started")
	art=$(artifact_of "$target")
	[[ -n $art ]] || bench_die "no build for '$target' in job $JOB"
	echo "$label $src $dst $gen $tb $v $r $p $d $a $ls $ld $treq $tck $tpl $trun $stop_seen $exited $started" \
		"$(cas_size "$digest") $(start_msg_bytes "$gen" "$art" "$digest") $digest $nck"
done >"$R/all.txt"
grep -q ' null ' "$R/all.txt" && bench_die "an agent log line is missing: $(grep ' null ' "$R/all.txt" | head -2)"

# The bundle's size in the store against what the HTTP API serves, once.
d=$(awk '$1 == "native" { print $22; exit }' "$R/all.txt")
CL=$(curl -sS --max-time 30 --cacert "$CW/cert.pem" -H "Authorization: Bearer $TOKEN" -o "$R/bundle.tar.zst" \
	-w '%{size_download}' "$CLUSTER_URL/v1/blobs/$d")
[[ $CL == "$(cas_size "$d")" ]] || bench_die "GET /v1/blobs/$d gave $CL bytes, the store holds $(cas_size "$d")"
BUNDLE_LIST=$(zstd -qdc "$R/bundle.tar.zst" | tar -tvf - | awk '{ printf "%s%s (%s B)", sep, $6, $3; sep = ", " }')
TAR_SIZE=$(zstd -qdc "$R/bundle.tar.zst" | wc -c)

# ---------------------------------------------------------------------------
ms() { awk -v l="$1" -v a="$2" -v b="$3" '$1 == l { printf "%.3f\n", ($b - $a) * 1000 }' "$R/all.txt" | "$BT" stats; }
# ms_if LABEL 0|1 FROM TO: like ms, only the moves in which the state was uploaded once (0) or twice (1).
ms_if() {
	awk -v l="$1" -v r="$2" -v a="$3" -v b="$4" '$1 == l && ($23 > 0) == r { printf "%.3f\n", ($b - $a) * 1000 }' \
		"$R/all.txt" | "$BT" stats
}
col() { awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$R/all.txt" | "$BT" stats; }
fld() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
p50() { fld p50 "$1" | cut -d. -f1; }
row() { printf '| %-62s | %4s | %8s | %8s | %8s | %8s |\n' "$1" "$(fld n "$2")" "$(fld p50 "$2")" \
	"$(fld p90 "$2")" "$(fld p99 "$2")" "$(fld max "$2")"; }
head_row() { printf '| %-62s | %4s | %8s | %8s | %8s | %8s |\n' "$1" n p50 p90 p99 max; echo "| --- | ---: | ---: | ---: | ---: | ---: |"; }
declare -A ST RACE
WALK_CPU="the walk computes flat out on one core"
[[ $SLEEP_US == 0 ]] || WALK_CPU="the walk sleeps $SLEEP_US us every 1024 steps"
labels=(native)
[[ $CROSS -gt 0 ]] && labels+=(x86-to-aarch64 aarch64-to-x86)
for l in "${labels[@]}"; do
	# phase:from:to (columns of all.txt, above)
	for p in total:13:16 ckpt:13:14 resume:14:16 p1:13:17 p2:17:18 p3:18:14 p4:14:15 p5:15:19 p6:19:16; do
		IFS=: read -r k a b <<<"$p"
		ST[$k-$l]=$(ms "$l" "$a" "$b")
	done
	for p in bundle:20 startmsg:21 wiresrc:11 wiredst:12; do
		ST[${p%%:*}-$l]=$(col "$l" "${p#*:}")
	done
	ST[wire-$l]=$(awk -v l="$l" '$1 == l { print $11 + $12 }' "$R/all.txt" | "$BT" stats)
	RACE[$l]=$(awk -v l="$l" '$1 == l && $23 > 0 { n++ } END { print n + 0 }' "$R/all.txt")
done
for c in 6:vmrss 7:rss 8:pss 9:dirty 10:anon; do
	ST[${c#*:}]=$(col native "${c%%:*}")
done
BUNDLE=$(p50 "${ST[bundle-native]}")
START_MSG=$(p50 "${ST[startmsg-native]}")
PAYLOAD=$((BUNDLE + START_MSG))
WIRE=$(p50 "${ST[wire-native]}")
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b }'; }
verdict() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { ok = op == "le" ? v <= g : v >= g; print ok ? "met" : "NOT met" }'; }

echo
echo "== bytes moved per migration (walk, native moves, n=$(fld n "${ST[bundle-native]}"); p50s)"
echo "   state bundle (tar.zst in dispatchd's store): $BUNDLE B (min $(fld min "${ST[bundle-native]}"), max $(fld max "${ST[bundle-native]}"));" \
	"GET /v1/blobs of one: $CL B"
echo "     it holds $BUNDLE_LIST; the tar is $TAR_SIZE B"
echo "   start message (the long-poll reply body carrying it): $START_MSG B"
echo "   payload = bundle + start message (which carries the bundle again, base64, when it is <= 64 KiB): $PAYLOAD B"
echo "   wire: all bytes on the two nodes' links (TLS, HTTP, TCP/IP, other messages included): $WIRE B" \
	"(source $(p50 "${ST[wiresrc-native]}"), destination $(p50 "${ST[wiredst-native]}"); max $(fld max "${ST[wire-native]}"))"
echo "   the object just before the stop: VmRSS $(kib "$(p50 "${ST[vmrss]}")"), Rss $(kib "$(p50 "${ST[rss]}")")," \
	"Pss $(kib "$(p50 "${ST[pss]}")"), Private_Dirty + Shared_Dirty $(kib "$(p50 "${ST[dirty]}")")," \
	"Anonymous $(kib "$(p50 "${ST[anon]}")")"
echo "   ratios, goal >= 1000x:"
for m in vmrss:VmRSS anon:Anonymous; do
	mv=$(p50 "${ST[${m%%:*}]}")
	printf '     %-9s / bundle %6sx (%s), / payload %6sx (%s), / wire %5sx (%s)\n' "${m#*:}" \
		"$(ratio "$mv" "$BUNDLE")" "$(verdict "$(ratio "$mv" "$BUNDLE")" 1000 ge)" \
		"$(ratio "$mv" "$PAYLOAD")" "$(verdict "$(ratio "$mv" "$PAYLOAD")" 1000 ge)" \
		"$(ratio "$mv" "$WIRE")" "$(verdict "$(ratio "$mv" "$WIRE")" 1000 ge)"
done

echo
echo "== latency stop -> running on the other node, artifact cached, ms (dispatchd's history; agents' logs)"
echo "   native series: $SERIES_S s; CPUs busy ${INTERF%% *}%: other programs $(cut -d' ' -f2 <<<"$INTERF")%" \
	"($(cut -d' ' -f4 <<<"$INTERF") CPU-s), this benchmark's processes $(cut -d' ' -f3 <<<"$INTERF")% ($WALK_CPU);" \
	"before the object started, ${BUSY_BEFORE}% busy"
for l in "${labels[@]}"; do
	echo
	if [[ $l == native ]]; then
		echo "-- node-a <-> node-b, native x86_64"
	else
		echo "-- $l (EMULATED: the aarch64 agent and object run under qemu-user)"
	fi
	head_row phase
	row "total: migrate requested -> running on the other node" "${ST[total-$l]}"
	row "stop request -> checkpointed" "${ST[ckpt-$l]}"
	row "  source agent has the stop message (long poll)" "${ST[p1-$l]}"
	row "  -> object exited, state packed (source agent's log)" "${ST[p2-$l]}"
	row "  -> checkpointed (outbox saved, bundle uploaded, exit event)" "${ST[p3-$l]}"
	row "checkpointed -> running on the other node" "${ST[resume-$l]}"
	row "  -> placed (dispatchd: start message queued)" "${ST[p4-$l]}"
	row "  -> started (long poll, state fetched, unpacked, spawned)" "${ST[p5-$l]}"
	row "  -> running (the running event reached dispatchd)" "${ST[p6-$l]}"
	echo "   state bundle p50 $(p50 "${ST[bundle-$l]}") B, wire p50 $(p50 "${ST[wire-$l]}") B;" \
		"the state was uploaded twice (checkpoint line seen before the exit) in ${RACE[$l]} of $(fld n "${ST[total-$l]}") moves"
	for r in 0:once 1:twice; do
		st=$(ms_if "$l" "${r%%:*}" 17 18) || continue
		echo "     uploaded ${r#*:}: n=$(fld n "$st"), stop message -> exited and packed p50 $(fld p50 "$st") ms," \
			"total p50 $(fld p50 "$(ms_if "$l" "${r%%:*}" 13 16)") ms"
	done
done
T50=$(fld p50 "${ST[total-native]}")
echo
echo "   goal p50 stop -> running <= 5 ms plus transfer: $T50 ms: $(verdict "$T50" 5 le)" \
	"(the transfer: $PAYLOAD B of payload, $WIRE B on the wire: microseconds at LAN speed)"

if [[ $TRACE -gt 0 ]]; then
	echo
	echo "== fsync + fdatasync from the stop request to running elsewhere, per move (strace -f, $TRACE moves;" \
		"'children': supervisors, objects, packers)"
	awk -v t0="$T_TRACE" '$1 == "traced" && $13 >= t0 { print $13, $16 }' "$R/all.txt" >"$R/trace-windows.txt"
	for t in dispatchd agent-a agent-b; do
		awk -v n="$TRACE" -v who="$t" 'FILENAME ~ /windows/ { a[++w] = $1; b[w] = $2; next }
			FILENAME ~ /tids$/ { tid[$1] = 1; next }
			/f(data)?sync\(/ && match($0, /<[0-9.]+>$/) {
				for (i = 1; i <= w; i++) if ($2 >= a[i] && $2 <= b[i]) break
				if (i > w) next
				k = ($1 in tid) ? "own" : "children"; c[k]++; s[k] += substr($0, RSTART + 1, RLENGTH - 2) }
			END { printf "   %-9s itself %4.1f calls %5.1f ms, children %4.1f calls %5.1f ms\n", who,
				c["own"] / n, 1000 * s["own"] / n, c["children"] / n, 1000 * s["children"] / n }' \
			"$R/trace-windows.txt" "$R/$t.tids" "$R/$t.strace"
	done
	echo "   traced moves: total p50 $(fld p50 "$(ms traced 13 16)") ms (strace slows them); each agent is the source" \
		"in half of them and the destination in the other half"
fi

if [[ -n $JSON_OUT ]]; then
	{
		echo "{"
		for k in "${!ST[@]}"; do
			printf '  "%s": {%s},\n' "$k" "$(sed 's/\([a-z0-9]*\)=\([0-9.]*\)/"\1": \2,/g; s/,$//' <<<"${ST[$k]}")"
		done
		printf '  "runs": %d, "cross_runs": %d, "payload_bytes": %d, "interference": "%s"\n}\n' "$RUNS" "$CROSS" "$PAYLOAD" "$INTERF"
	} >"$JSON_OUT"
	echo "   figures written to $JSON_OUT"
fi
