#!/usr/bin/env bash
# bench/agent-idle.sh - what an idle dispatch-agent costs its node: memory
# (VmRSS, and the private and proportional shares from smaps_rollup) and CPU
# over a quiet window.
#
# Run from the repository root, as root, after building the project:
#   bench/agent-idle.sh [--window S] [--no-plain]
#
# The cluster of bench/start.sh (dispatchd and one agent, each in its own
# network namespace, TLS). The agent joins and runs one null object (so its
# start path, caches and buffers have been used once), then sits idle: it
# heartbeats every 5 s and re-issues its 25 s long poll. Over S seconds
# (default 60): utime+stime of all its threads (/proc/PID/stat), context
# switches (/proc/PID/task/*/status), and at the end VmRSS, VmHWM, RssAnon,
# RssFile (/proc/PID/status), Rss, Pss, Private_Clean+Private_Dirty,
# Shared_Clean (/proc/PID/smaps_rollup), and the mappings that hold the most
# resident memory (/proc/PID/smaps). Unless --no-plain, the same again with a
# plain-HTTP cluster (no TLS: a part of OpenSSL is never touched).
#
# Bounded by the window; everything is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

WINDOW=60
PLAIN=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--window) [[ ${2:-} =~ ^[0-9]+$ && $2 -ge 5 && $2 -le 3600 ]] || bench_die "--window needs 5..3600"; WINDOW=$2; shift 2 ;;
	--no-plain) PLAIN=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) bench_die "unknown argument '$1' (see --help)" ;;
	esac
done
[[ $(id -u) == 0 ]] || bench_die "needs root (network namespaces)"

bench_init bench/agent-idle.sh
bench_machine
bench_null_manifest "$BW/m"
HZ=$(getconf CLK_TCK)
rows=()
ctxt() { cat /proc/"$1"/task/*/status | awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s }'; }
kb() { awk -v k="$2" '$1 == k":" { print $2 }' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

measure() {
	local label=$1 p cpu_a cpu_b cs_a cs_b st sm
	shift
	echo "== $label: cluster, one null object, then ${WINDOW} s idle"
	bench_cluster_start "$@"
	bench_cli submit "$BW/m/null.json" --wait --timeout 120 >/dev/null 2>&1 || bench_die "the null object did not run"
	p=$BC_APID
	sleep 2
	cpu_a=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")
	cs_a=$(ctxt "$p")
	sleep "$WINDOW"
	cpu_b=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")
	cs_b=$(ctxt "$p")
	st=/proc/$p/status
	sm=/proc/$p/smaps_rollup
	cp "$st" "$BW/status-$label"
	cp "$sm" "$BW/smaps_rollup-$label"
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anon]" } /^Rss:/ { rss[name] += $2 }
		END { for (n in rss) if (rss[n] > 0) printf "%8d kB  %s\n", rss[n], n }' "/proc/$p/smaps" | sort -rn | head -12 >"$BW/top-$label"
	rows+=("| $label | $(mib "$(kb "$st" VmRSS)") | $(mib "$(kb "$st" VmHWM)") | $(mib "$(kb "$st" RssAnon)") | $(mib "$(kb "$st" RssFile)") | $(mib "$(kb "$sm" Pss)") | $(mib $(($(kb "$sm" Private_Clean) + $(kb "$sm" Private_Dirty)))) | $(mib "$(kb "$sm" Shared_Clean)") | $(kb "$st" Threads) | $(awk -v a="$cpu_a" -v b="$cpu_b" -v hz="$HZ" 'BEGIN { printf "%.0f", 1000 * (b - a) / hz }') | $((cs_b - cs_a)) |")
	echo "   largest resident mappings:"
	sed 's/^/     /' "$BW/top-$label"
	bench_cluster_stop
}

measure tls
[[ $PLAIN == 1 ]] && measure plain --plain

echo
echo "== idle dispatch-agent: memory (MiB) and CPU over ${WINDOW} s (CPU ticks are 1/${HZ} s)"
echo "| cluster | VmRSS | VmHWM | RssAnon | RssFile | Pss | Private (clean+dirty) | Shared_Clean | threads | CPU ms in ${WINDOW} s | context switches |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
vm=$(kb "$BW/status-tls" VmRSS)
echo "   goal VmRSS <= 4 MiB: $( ((vm <= 4096)) && echo met || echo "NOT met ($(mib "$vm") MiB)")"
