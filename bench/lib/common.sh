# bench/lib/common.sh - shared by bench/start.sh, throughput.sh, agents.sh,
# agent-idle.sh and migrate.sh: a private work directory, private copies of the binaries, the
# benchtool helper, machine facts, CPU-idle waiting and a one-agent cluster in
# network namespaces (tests/cluster/lib.sh). Source it from the repository root.
#
#   bench_init NAME            # $BW (work dir, removed on exit), $BT (benchtool), $BIN/...
#   bench_on_exit CMD          # run CMD at exit (last registered runs first)
#   bench_wait_idle SECONDS    # wait up to SECONDS for 5 s of >= 90% idle CPUs
#   bench_busy_begin; ...; bench_busy_end   # prints the machine's busy % in between
#   bench_cluster_start        # dispatchd + one agent, each in its own namespace
#   bench_null_manifest DIR [INSTANCES]     # the null object (static no-op C program)
#   bench_common_opt "$@"      # --wait-idle, --json, --help (bench_usage) in an option loop

bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench_build=${DISPATCH_BUILD_DIR:-$bench_top/build}
bench_exit_cmds=()

bench_die() {
	echo "${bench_name:-bench}: $*" >&2
	exit 1
}

bench_on_exit() {
	bench_exit_cmds+=("$1")
}

bench_cleanup() {
	local i
	for ((i = ${#bench_exit_cmds[@]} - 1; i >= 0; i--)); do
		eval "${bench_exit_cmds[$i]}" >/dev/null 2>&1 || true
	done
	bench_exit_cmds=()
	if [[ -n ${BW:-} && -d $BW && -z ${BENCH_KEEP:-} ]]; then
		rm -rf "$BW"
	elif [[ -n ${BW:-} ]]; then
		echo "${bench_name}: kept $BW" >&2
	fi
}

# bench_init NAME: work dir, traps, benchtool, private copies of the binaries
# (a concurrent rebuild of build/ cannot swap them in the middle of a run).
bench_init() {
	bench_name=$1
	local t
	for t in gcc jq timeout ip; do
		command -v "$t" >/dev/null || bench_die "'$t' is not installed"
	done
	BW=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-bench.XXXXXX")
	chmod 711 "$BW"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	BIN=$BW/bin
	mkdir -p "$BIN"
	for t in dispatcher/dispatchd agent/dispatch-agent agent/dispatch-run cli/dispatch; do
		[[ -x $bench_build/$t ]] || bench_die "'$bench_build/$t' is missing: build the project first"
		cp "$bench_build/$t" "$BIN/"
	done
	chmod 755 "$BIN"
	gcc -O2 -Wall -o "$BIN/benchtool" "$bench_top/bench/lib/benchtool.c" || bench_die "cannot compile benchtool.c"
	BT=$BIN/benchtool
}

bench_machine() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	echo "machine: ${cpu:-?}, $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
		"Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo ?)," \
		"$(df -T "$BW" | awk 'NR == 2 { print $2 }') at $BW"
}

# Busy share of all CPUs (user+system+irq..., not idle/iowait) between begin and end.
bench_cpu_sample() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
bench_busy_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
		printf "%.0f", 100 - 100 * (y[2] - x[2]) / (y[1] - x[1] + 1e-9) }'
}
bench_busy_begin() { bench_busy_a=$(bench_cpu_sample); }
bench_busy_end() { bench_busy_pct "$bench_busy_a" "$(bench_cpu_sample)"; }

# Waits, at most $1 seconds, for 5 s in which the CPUs are >= 90% idle.
bench_wait_idle() {
	local max=$1 deadline busy a
	[[ $max -gt 0 ]] || return 0
	deadline=$((SECONDS + max))
	while :; do
		a=$(bench_cpu_sample)
		sleep 5
		busy=$(bench_busy_pct "$a" "$(bench_cpu_sample)")
		[[ $busy -le 10 ]] && { echo "   CPUs idle (${busy}% busy): measuring"; return 0; }
		[[ $SECONDS -ge $deadline ]] && { echo "   the CPUs are still ${busy}% busy with other work: measuring anyway"; return 0; }
		echo "   waiting for an idle machine (${busy}% busy)"
	done
}

# CPU seconds (utime+stime) a process has used.
bench_cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
bench_status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# bench_null_manifest DIR [INSTANCES]: DIR/null.json, a static no-op C program.
bench_null_manifest() {
	local dir=$1 n=${2:-1}
	mkdir -p "$dir/null"
	printf 'int main(void) { return 0; }\n' >"$dir/null/null.c"
	cat >"$dir/null.json" <<-EOF
		{ "manifest": 1, "name": "null",
		  "objects": [ { "name": "null", "source": {"path": "null"},
		                 "build": {"recipe": "c", "sources": ["null.c"]},
		                 "instances": $n, "targets": ["$(uname -m)"] } ] }
	EOF
}

# bench_cluster_start [--plain] [--tmpfs]: dispatchd in namespace "disp" (198.18.N.1),
# one agent in namespace "node" (198.18.N.2). TLS with a certificate made for
# the run unless --plain. --tmpfs: the state and work directories on a tmpfs
# mounted for the run (fsync costs nothing there). Sets BC_URL, BC_DPID, BC_APID, BC_DIR and exports
# DISPATCH_URL/DISPATCH_TOKEN_FILE/DISPATCH_CA for the CLI. dispatchd's stderr
# and the agent's --json stdout and stderr go through `benchtool stamp` into
# $BC_DIR/{dispatchd.log,agent.json,agent.log}. Extra dispatchd options: $BC_DISPATCHD_OPTS.
bench_cluster_n=0
bench_cluster_start() {
	local plain=0 tmpfs=0 addr i
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--plain) plain=1 ;;
		--tmpfs) tmpfs=1 ;;
		esac
		shift
	done
	[[ $(id -u) == 0 ]] || bench_die "network namespaces need root"
	# shellcheck source=../../tests/cluster/lib.sh
	. "$bench_top/tests/cluster/lib.sh"
	bench_cluster_n=$((bench_cluster_n + 1))
	BC_DIR=$BW/cluster$bench_cluster_n
	mkdir -p "$BC_DIR"
	if [[ $tmpfs == 1 ]]; then
		mount -t tmpfs -o size=2g,mode=711 "bench-$$" "$BC_DIR" || bench_die "cannot mount a tmpfs"
		bench_on_exit "umount -l '$BC_DIR'"
	fi
	bench_on_exit "net_cgroups_from_logs '$BC_DIR/agent.log'; net_cleanup"
	net_init
	net_host disp 1
	net_host node 2
	mkdir -p "$BC_DIR/agent"
	chmod 711 "$BC_DIR" "$BC_DIR/agent"
	addr=$(net_addr disp)
	local tls=()
	if [[ $plain == 0 ]]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
			-subj /CN=dispatchd -addext "subjectAltName=IP:$addr" \
			-keyout "$BC_DIR/key.pem" -out "$BC_DIR/cert.pem" 2>/dev/null || bench_die "cannot make a certificate"
		tls=(--tls-cert "$BC_DIR/cert.pem" --tls-key "$BC_DIR/key.pem")
		BC_URL=https://$addr:7443
		export DISPATCH_CA=$BC_DIR/cert.pem
	else
		BC_URL=http://$addr:7443
		unset DISPATCH_CA
		# Newer builds refuse plain HTTP off loopback unless told; older ones only warned.
		"$BIN/dispatchd" --help | grep -q -- --insecure-http && tls=(--insecure-http)
	fi
	# shellcheck disable=SC2086
	net_exec disp "$BIN/dispatchd" --state-dir "$BC_DIR/state" --listen "$addr:7443" "${tls[@]}" \
		${BC_DISPATCHD_OPTS:-} 2> >("$BT" stamp >"$BC_DIR/dispatchd.log") &
	BC_DPID=$!
	for i in $(seq 100); do
		[[ -s $BC_DIR/state/dispatchd.url ]] && break
		sleep 0.1
	done
	[[ -s $BC_DIR/state/dispatchd.url ]] || bench_die "dispatchd did not start: $(tail -3 "$BC_DIR/dispatchd.log")"
	export DISPATCH_URL=$BC_URL DISPATCH_TOKEN_FILE=$BC_DIR/state/operator.token
	local ca=()
	[[ $plain == 0 ]] && ca=(--ca "$BC_DIR/cert.pem")
	[[ $plain == 1 ]] && "$BIN/dispatch-agent" --help | grep -q -- --insecure-http && ca=(--insecure-http)
	net_exec node "$BIN/dispatch-agent" --dispatcher "$BC_URL" "${ca[@]}" \
		--join-token-file "$BC_DIR/state/join.token" --work-dir "$BC_DIR/agent" --name bench-node --json \
		> >("$BT" stamp >"$BC_DIR/agent.json") 2> >("$BT" stamp >"$BC_DIR/agent.log") &
	BC_APID=$!
	for i in $(seq 100); do
		grep -q '"joined"' "$BC_DIR/agent.json" 2>/dev/null && break
		sleep 0.1
	done
	grep -q '"joined"' "$BC_DIR/agent.json" || bench_die "the agent did not join: $(tail -3 "$BC_DIR/agent.log")"
	BC_DPID=$(bench_ns_pid disp "$BIN/dispatchd") || bench_die "cannot find dispatchd's pid"
	BC_APID=$(bench_ns_pid node "$BIN/dispatch-agent") || bench_die "cannot find the agent's pid"
}

bench_cluster_stop() {
	net_cgroups_from_logs "$BC_DIR/agent.log"
	net_cleanup
	sleep 0.3
}

# bench_ns_pid NAME EXE: the pid of the process running EXE in namespace NAME
# ($! of `net_exec ... &` is a subshell).
bench_ns_pid() {
	local p
	for p in $(ip netns pids "$net_prefix-$1"); do
		[[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$2" ]] && { echo "$p"; return 0; }
	done
	return 1
}

bench_cli() { timeout 120 "$BIN/dispatch" "$@"; }

# bench_wait_line FILE PATTERN SECONDS: waits until grep finds PATTERN in FILE.
bench_wait_line() {
	local end=$((SECONDS + $3))
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		[[ $SECONDS -ge $end ]] && return 1
		sleep 0.005
	done
}

# Busy % of the CPUs over one second (other programs; call it while idle).
bench_idle_probe() {
	local a
	a=$(bench_cpu_sample)
	sleep 1
	bench_busy_pct "$a" "$(bench_cpu_sample)"
}

# bench_usage: the script's header comment (its --help).
bench_usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# bench_common_opt "$@": the options every benchmark takes, for the last arm of
# its option loop (`*) bench_common_opt "$@"; shift "$BENCH_SHIFT" ;;`):
# --wait-idle S (WAIT_IDLE), --json FILE (JSON_OUT), -h/--help (bench_usage);
# anything else is an error.
bench_common_opt() {
	case "$1" in
	--wait-idle) [[ ${2:-} =~ ^[0-9]+$ ]] || bench_die "--wait-idle needs seconds"; WAIT_IDLE=$2 ;;
	--json) [[ -n ${2:-} ]] || bench_die "--json needs a file"; JSON_OUT=$(realpath -m "$2") ;;
	-h | --help) bench_usage; exit 0 ;;
	*) bench_die "unknown argument '$1' (see --help)" ;;
	esac
	BENCH_SHIFT=2
}
