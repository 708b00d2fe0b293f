#!/usr/bin/env bash
# bench/throughput.sh - start throughput: null objects per second through
# dispatch (one job with many instances on one agent) as a ratio of the local
# posix_spawn rate of the same executable with as many at once as the agent
# has slots, measured in the same run.
#
# Run from the repository root, as root, after building the project:
#   bench/throughput.sh [--instances N] [--no-tmpfs] [--plain] [--wait-idle S]
#
# The cluster is the one of bench/start.sh: dispatchd and one agent, each in
# its own network namespace (tests/cluster/lib.sh), TLS unless --plain. A
# warm-up job (one instance) builds the null object and fills both caches;
# then one job of N (default 500) instances of it is submitted. The agent
# runs at most `cores` instances at once (its slots), so
#   dispatch rate = N / (last instance's 'finished' - the job's 'created')
# (dispatchd's clock; also from the first instance's 'started', which leaves
# out the job intake). The local rate is `benchtool rate N SLOTS`:
# posix_spawn + wait of the same executable, at most SLOTS at once.
# Unless --no-tmpfs the dispatch part is repeated with the state and work
# directories on a tmpfs (fsync costs nothing there).
#
# Bounded: every wait has a time limit; the work directory is removed and
# every daemon stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

N=500
PLAIN=
TMPFS=1
WAIT_IDLE=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--instances) [[ ${2:-} =~ ^[1-9][0-9]*$ && $2 -le 20000 ]] || bench_die "--instances needs 1..20000"; N=$2; shift 2 ;;
	--plain) PLAIN=--plain; shift ;;
	--no-tmpfs) TMPFS=0; shift ;;
	--wait-idle) [[ ${2:-} =~ ^[0-9]+$ ]] || bench_die "--wait-idle needs seconds"; WAIT_IDLE=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) bench_die "unknown argument '$1' (see --help)" ;;
	esac
done
[[ $(id -u) == 0 ]] || bench_die "needs root (network namespaces)"

bench_init bench/throughput.sh
bench_machine
bench_null_manifest "$BW/one" 1
bench_null_manifest "$BW/many" "$N"
LIMIT=$((N / 2 + 120)) # seconds for the job
R=$BW/results
mkdir -p "$R"
declare -A RATE WALL BUSY

# series LABEL [cluster options]
series() {
	local label=$1 out job st i js
	shift
	echo "== cluster ($label): dispatchd and one agent in network namespaces"
	bench_cluster_start $PLAIN "$@"
	bench_cli submit "$BW/one/null.json" --wait --timeout 300 >/dev/null 2>&1 || bench_die "the warm-up job failed"
	SLOTS=$(bench_cli nodes --json | jq '.nodes[0].cores')
	if [[ -z ${EXE:-} ]]; then
		LEVEL=$(bench_cli status j-1 --json | jq -r '.instances[0].level')
		timeout 300 "$BIN/dispatch" artifacts export "$BW/one/null.json" --out "$BW/art" \
			--target "$(uname -m):$LEVEL" --cache "$BC_DIR/state/cache" -q >/dev/null || bench_die "cannot export the artifact"
		EXE=$(ls "$BW"/art/*/null)
	fi
	bench_wait_idle "$WAIT_IDLE"
	BUSY[$label]=$(bench_idle_probe)
	echo "== dispatch ($label): one job of $N instances, $SLOTS slots"
	bench_busy_begin
	out=$(bench_cli submit "$BW/many/null.json" --json) || bench_die "submit failed"
	job=$(jq -r .job <<<"$out")
	for ((i = 0; i < LIMIT * 2; i++)); do
		st=$(bench_cli status "$job" --json | jq -r .state)
		[[ $st == done || $st == failed ]] && break
		sleep 0.5
	done
	BUSY[$label-during]=$(bench_busy_end)
	[[ $st == done ]] || bench_die "job $job: $st after ${LIMIT}s"
	js=$(bench_cli status "$job" --json)
	jq -r '.instances[] | "\(.created) \(.started) \(.finished)"' <<<"$js" >"$R/$label.txt"
	WALL[$label]=$(awk 'NR == 1 || $1 < c { c = $1 } NR == 1 || $3 > f { f = $3 } END { printf "%.3f", f - c }' "$R/$label.txt")
	WALL[$label-run]=$(awk 'NR == 1 || $2 < s { s = $2 } NR == 1 || $3 > f { f = $3 } END { printf "%.3f", f - s }' "$R/$label.txt")
	RATE[$label]=$(awk -v n="$N" -v w="${WALL[$label]}" 'BEGIN { printf "%.1f", n / w }')
	RATE[$label-run]=$(awk -v n="$N" -v w="${WALL[$label-run]}" 'BEGIN { printf "%.1f", n / w }')
	DCPU[$label]=$(bench_cpu_s "$BC_DPID")
	ACPU[$label]=$(bench_cpu_s "$BC_APID")
	bench_cluster_stop
}

declare -A DCPU ACPU
series disk
[[ $TMPFS == 1 ]] && series tmpfs --tmpfs

echo "== local: posix_spawn + wait of the same executable, $N runs, $SLOTS at once"
BUSY[local]=$(bench_idle_probe)
lr=$("$BT" rate "$N" "$SLOTS" 300 -- "$EXE")
LOCAL=$(sed 's/.*rate=//' <<<"$lr")
lr1=$("$BT" rate "$N" 1 300 -- "$EXE")
LOCAL1=$(sed 's/.*rate=//' <<<"$lr1")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "== start throughput, null objects per second ($N instances; CPUs busy with other work just before: ${BUSY[disk]}% / local ${BUSY[local]}%)"
echo "| what | wall s | objects/s | ratio to local ($SLOTS at once) |"
echo "| --- | ---: | ---: | ---: |"
for x in disk tmpfs; do
	[[ -n ${RATE[$x]:-} ]] || continue
	echo "| dispatch ($x): job created -> last done | ${WALL[$x]} | ${RATE[$x]} | $(ratio "${RATE[$x]}" "$LOCAL") |"
	echo "| dispatch ($x): first running -> last done | ${WALL[$x-run]} | ${RATE[$x-run]} | $(ratio "${RATE[$x-run]}" "$LOCAL") |"
done
echo "| local posix_spawn, $SLOTS at once | $(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<<"$lr") | $LOCAL | 1 |"
echo "| local posix_spawn, 1 at once | $(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<<"$lr1") | $LOCAL1 | $(ratio "$LOCAL1" "$LOCAL") |"
echo
for x in disk tmpfs; do
	[[ -n ${RATE[$x]:-} ]] || continue
	echo "   $x: all CPUs ${BUSY[$x-during]}% busy during the job; CPU time over the whole run: dispatchd ${DCPU[$x]} s, agent ${ACPU[$x]} s"
done
r=$(ratio "${RATE[disk]}" "$LOCAL")
echo "   goal: dispatch rate >= 0.4 x local: $(awk -v r="$r" 'BEGIN { print (r >= 0.4) ? "met" : "NOT met" }') (${r})"
