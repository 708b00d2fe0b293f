#!/usr/bin/env bash
# bench/agents.sh - how many agents one dispatchd holds: its memory and CPU
# while N simulated agents each keep a long poll open, and how fast it still
# answers an operator.
#
# Run from the repository root, as root, after building the project:
#   bench/agents.sh [--agents "1000 5000 10000"] [--hold S] [--wait-idle S]
#
# For each N, a fresh dispatchd (state on disk, plain HTTP on 127.0.0.1, port
# picked by the kernel; --heartbeat 30 --ttl 180 so that agents whose only
# sign of life is a 55 s long poll stay 'up') and bench/agentload.c (compiled
# here): N agents join (POST /v1/agent/join, names sim-0 ...; ISA "sim", which
# no job is built for), at most 100 joins in flight, then each keeps
# GET /v1/agent/messages?after=SEQ&wait=55 open, issued again when answered,
# one connection per agent, from source addresses 127.0.0.2..5. Once all are
# held, for S seconds (default 60: every poll is answered and re-issued once):
# dispatchd's VmRSS every 5 s (max reported), VmHWM, utime+stime (/proc),
# and the latency of GET /v1/jobs (curl time_total, 20 requests, 1 a second),
# plus one GET /v1/nodes (all N nodes). The open-files limit is raised for
# both processes (ulimit -Hn 65536 in this script only).
#
# Bounded: agentload stops by itself (--hold S, and --max-s); every wait has a
# limit; dispatchd is stopped and the work directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

LIST="1000 5000 10000"
HOLD=60
WAIT_IDLE=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--agents) [[ ${2:-} =~ ^[0-9\ ]+$ ]] || bench_die "--agents needs numbers"; LIST=$2; shift 2 ;;
	--hold) [[ ${2:-} =~ ^[0-9]+$ && $2 -ge 10 && $2 -le 600 ]] || bench_die "--hold needs 10..600"; HOLD=$2; shift 2 ;;
	--wait-idle) [[ ${2:-} =~ ^[0-9]+$ ]] || bench_die "--wait-idle needs seconds"; WAIT_IDLE=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) bench_die "unknown argument '$1' (see --help)" ;;
	esac
done
for n in $LIST; do
	[[ $n -ge 1 && $n -le 30000 ]] || bench_die "--agents: 1..30000 each"
done
command -v curl >/dev/null || bench_die "'curl' is not installed"

bench_init bench/agents.sh
bench_machine
gcc -O2 -Wall -o "$BIN/agentload" bench/agentload.c || bench_die "cannot compile agentload.c"
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
echo "   open files limit: $(ulimit -n)"
R=$BW/results
mkdir -p "$R"
HZ=$(getconf CLK_TCK)

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rows=()
for N in $LIST; do
	bench_wait_idle "$WAIT_IDLE"
	echo "== $N agents"
	D=$BW/d-$N
	"$BIN/dispatchd" --state-dir "$D" --listen 127.0.0.1:0 --heartbeat 30 --ttl 180 2>"$BW/dispatchd-$N.log" &
	DPID=$!
	bench_on_exit "kill $DPID"
	for i in $(seq 100); do [[ -s $D/dispatchd.url ]] && break; sleep 0.1; done
	[[ -s $D/dispatchd.url ]] || bench_die "dispatchd did not start: $(tail -3 "$BW/dispatchd-$N.log")"
	URL=$(cat "$D/dispatchd.url")
	PORT=${URL##*:}
	TOK=$(cat "$D/operator.token")
	sleep 1
	rss0=$(bench_status_kb "$DPID" VmRSS)
	"$BIN/agentload" --port "$PORT" --join-token-file "$D/join.token" --agents "$N" --hold $((HOLD + 15)) \
		--max-s $((HOLD + 915)) >"$R/load-$N.out" 2>"$R/load-$N.err" &
	LPID=$!
	bench_on_exit "kill $LPID"
	t0=$SECONDS
	while ! grep -q '^held' "$R/load-$N.out"; do
		kill -0 "$LPID" 2>/dev/null || bench_die "agentload stopped: $(tail -3 "$R/load-$N.err")"
		[[ $((SECONDS - t0)) -lt 900 ]] || bench_die "the agents did not all join in 900 s"
		sleep 0.5
	done
	held=$(grep '^held' "$R/load-$N.out")
	echo "   $held"
	cpu_a=$(bench_cpu_s "$DPID")
	lcpu_a=$(bench_cpu_s "$LPID" 2>/dev/null || echo 0)
	t_a=$EPOCHREALTIME
	rss_max=0
	: >"$R/jobs-$N.s"
	nodes_line=
	for ((s = 0; s < HOLD - 5; s++)); do
		curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOK" --max-time 30 "$URL/v1/jobs" \
			>>"$R/jobs-$N.s" || echo 30 >>"$R/jobs-$N.s"
		if ((s % 5 == 0)); then
			r=$(bench_status_kb "$DPID" VmRSS)
			((r > rss_max)) && rss_max=$r
		fi
		if ((s == HOLD / 2)); then
			nodes_line=$(curl -s -o "$R/nodes-$N.json" -w '%{time_total} %{size_download}' \
				-H "Authorization: Bearer $TOK" --max-time 60 "$URL/v1/nodes")
		fi
		((s < 20)) && sleep 1 || sleep 1
		kill -0 "$LPID" 2>/dev/null || break
	done
	cpu_b=$(bench_cpu_s "$DPID")
	lcpu_b=$(bench_cpu_s "$LPID" 2>/dev/null || echo 0)
	t_b=$EPOCHREALTIME
	hwm=$(bench_status_kb "$DPID" VmHWM)
	rss=$(bench_status_kb "$DPID" VmRSS)
	((rss > rss_max)) && rss_max=$rss
	up=$(jq '[.nodes[] | select(.state == "up")] | length' "$R/nodes-$N.json" 2>/dev/null || echo "?")
	wait "$LPID" || true
	summary=$(grep '^summary' "$R/load-$N.out" || echo "summary ?")
	echo "   $summary"
	jobs=$("$BT" stats 0.001 <"$R/jobs-$N.s")
	cpu_pct=$(awk -v a="$cpu_a" -v b="$cpu_b" -v t0="$t_a" -v t1="$t_b" 'BEGIN { printf "%.1f", 100 * (b - a) / (t1 - t0) }')
	lcpu_pct=$(awk -v a="$lcpu_a" -v b="$lcpu_b" -v t0="$t_a" -v t1="$t_b" 'BEGIN { printf "%.1f", 100 * (b - a) / (t1 - t0) }')
	joined_s=$(sed 's/.*joined_in_s=//' <<<"$held")
	fld() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
	rows+=("| $N | $(awk '{ print $2 }' <<<"$held") | $joined_s | $(mb "$rss0") | $(mb "$rss_max") | $(mb "$hwm") | $cpu_pct | $(fld p50 "$jobs") | $(fld p99 "$jobs") | $(awk '{ printf "%.0f ms, %.1f MB", $1 * 1000, $2 / 1e6 }' <<<"$nodes_line"), $up up | $(fld answered "$summary") | $(fld errors "$summary") | $lcpu_pct |")
	echo "   VmRSS max $(mb "$rss_max") MB, VmHWM $(mb "$hwm") MB, dispatchd CPU ${cpu_pct}% of a core over the hold; GET /v1/jobs: $jobs"
	kill "$DPID"
	wait "$DPID" 2>/dev/null || true
	rm -rf "$D"
done

echo
echo "== dispatchd holding N agents in long polls (hold ${HOLD} s after all joined; HTTP on loopback)"
echo "| agents | held | join all, s | VmRSS idle, MB | VmRSS held (max), MB | VmHWM, MB | dispatchd CPU, % of a core | GET /v1/jobs p50, ms | p99, ms | GET /v1/nodes | polls answered | errors | agentload CPU % |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
