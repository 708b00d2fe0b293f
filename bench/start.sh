#!/usr/bin/env bash
# bench/start.sh - start latency of a null object through dispatch, next to a
# local posix_spawn, ssh (new connection and multiplexed) and Slurm's srun,
# all measured in the same run.
#
# Run from the repository root, as root, after building the project:
#   bench/start.sh [--runs N] [--plain] [--no-ssh] [--no-slurm] [--no-tmpfs] [--trace N]
#                  [--wait-idle S] [--json FILE]
#
# The cluster: dispatchd in one network namespace, one dispatch-agent in
# another (tests/cluster/lib.sh, 198.18.0.0/15), TLS with a certificate made
# for the run (--plain: HTTP). The null object is a static no-op C program
# built with the "c" recipe; warm-up submissions first, so the artifact is
# built, cached by dispatchd and by the agent.
#
# What is measured, N (default 50) runs each, one after the other:
#   dispatch        `dispatch submit null.json --json` from the host, N
#                   sequential jobs of one instance. Latency = the instance's
#                   history (GET /v1/instances/ID, dispatchd's clock):
#                   'submitted' -> 'running', and 'submitted' -> 'done'; also
#                   CLI start -> 'running' (host clock = same clock). The next
#                   job is submitted once the previous one is done.
#   local spawn     posix_spawn + waitpid of the same executable (the
#                   artifact the agent ran), from the host (benchtool lat)
#   local sandbox   the same through dispatch-run with the agent's options
#                   (private network namespace, nobody, rlimits, seccomp)
#   ssh             `ssh root@NODE EXE` into the agent's namespace: sshd
#                   started there on its own port, host key and client key
#                   made for the run, the remote user's home a fresh
#                   directory (root's own ~/.bashrc would add its start-up)
#   ssh (mux)       the same over a ControlMaster connection (ControlPath)
#   srun            `srun EXE` on a single-node Slurm started for the run
#                   (munged, slurmctld, slurmd with a slurm.conf in the work
#                   directory, loopback only); slurm-wlm and munge are
#                   installed with apt-get when missing
# and the breakdown of dispatch's latency from the history ('placed') and the
# agent's --json lines ('started', 'exited', stamped on arrival). Unless
# --no-tmpfs, the dispatch series is repeated with a second cluster whose
# state and work directories are on a tmpfs (fsync is free there): the
# difference is what the store's and the agent's fsyncs cost. The local
# series also run dispatch-run --no-sandbox and the sandbox without a private
# network namespace, to show what each sandbox step costs.
# --trace N: N more submissions with strace (seccomp-bpf, so only the traced
# calls stop) on dispatchd and the agent, counting fsync/fdatasync and their
# time per submission.
#
# Everything runs in a mktemp -d directory removed on exit; every daemon the
# benchmark started is stopped. Network traffic stays in the run's own
# namespaces and on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

RUNS=50
PLAIN=
SSH=1
SLURM=1
TRACE=0
TMPFS=1
WAIT_IDLE=0
JSON_OUT=
while [[ $# -gt 0 ]]; do
	case "$1" in
	--runs) [[ ${2:-} =~ ^[1-9][0-9]*$ && $2 -le 5000 ]] || bench_die "--runs needs 1..5000"; RUNS=$2; shift 2 ;;
	--plain) PLAIN=--plain; shift ;;
	--no-ssh) SSH=0; shift ;;
	--no-slurm) SLURM=0; shift ;;
	--no-tmpfs) TMPFS=0; shift ;;
	--trace) [[ ${2:-} =~ ^[0-9]+$ && $2 -le 100 ]] || bench_die "--trace needs 0..100"; TRACE=$2; shift 2 ;;
	*) bench_common_opt "$@"; shift "$BENCH_SHIFT" ;;
	esac
done

[[ $(id -u) == 0 ]] || bench_die "needs root (network namespaces, sshd, Slurm)"

bench_init bench/start.sh
bench_machine
bench_null_manifest "$BW/m"
M=$BW/m/null.json
LIMIT=$((RUNS * 2 + 60)) # seconds for one series of N runs
R=$BW/results
mkdir -p "$R"

# submit_one: one job; waits until its instance is done; prints one line
# "t_cli0 t_cli1 submitted placed running done agent_started agent_exited instance level".
submit_one() {
	local t0 t1 out inst js st i a_start a_exit
	t0=$EPOCHREALTIME
	out=$(bench_cli submit "$M" --json) || bench_die "submit failed: $out"
	t1=$EPOCHREALTIME
	inst=$(jq -r '.instances[0]' <<<"$out")
	bench_wait_line "$BC_DIR/agent.json" "\"exited\",\"instance\":\"$inst\"," 30 ||
		bench_die "instance $inst did not run: $(tail -3 "$BC_DIR/agent.log")"
	for i in $(seq 200); do
		js=$(bench_cli status "$inst" --json)
		st=$(jq -r .state <<<"$js")
		[[ $st == done || $st == failed ]] && break
		sleep 0.01
	done
	[[ $st == done ]] || bench_die "instance $inst: $st: $(jq -c . <<<"$js")"
	a_start=$(grep -m1 "\"started\",\"instance\":\"$inst\"," "$BC_DIR/agent.json" | cut -d' ' -f1)
	a_exit=$(grep -m1 "\"exited\",\"instance\":\"$inst\"," "$BC_DIR/agent.json" | cut -d' ' -f1)
	jq -r --arg t0 "$t0" --arg t1 "$t1" --arg astart "$a_start" --arg aexit "$a_exit" --arg id "$inst" '
		def ev(e): [.history[] | select(.event == e) | .time][0];
		"\($t0) \($t1) \(ev("submitted")) \(ev("placed")) \(ev("running")) \(ev("done")) \($astart) \($aexit) \($id) \(.level)"' <<<"$js"
}

# dispatch_series LABEL [cluster options]: a cluster, warm-up, RUNS submissions into $R/dispatch-LABEL.txt.
dispatch_series() {
	local label=$1 i end
	shift
	echo "== cluster ($label): dispatchd and one agent in network namespaces"
	bench_cluster_start $PLAIN "$@"
	echo "   dispatchd $BC_URL (pid $BC_DPID), agent pid $BC_APID, state in $BC_DIR"
	echo "== warm-up: 3 submissions (build, dispatchd's cache, the agent's cache)"
	for i in 1 2 3; do
		submit_one >"$R/warmup.txt" || exit 1
	done
	if [[ -z ${EXE:-} ]]; then
		LEVEL=$(awk '{ print $10 }' "$R/warmup.txt")
		timeout 300 "$BIN/dispatch" artifacts export "$M" --out "$BW/art" --target "$(uname -m):$LEVEL" \
			--cache "$BC_DIR/state/cache" -q >/dev/null || bench_die "cannot export the artifact"
		EXE=$(ls "$BW"/art/*/null)
		chmod 755 "$BW/art" "$(dirname "$EXE")" "$EXE"
		echo "   the agent runs $(uname -m):$LEVEL: $EXE ($(stat -c %s "$EXE") bytes, static)"
	fi
	bench_wait_idle "$WAIT_IDLE"
	echo "== dispatch ($label): $RUNS sequential submissions"
	BUSY[$label]=$(bench_idle_probe)
	: >"$R/dispatch-$label.txt"
	end=$((SECONDS + LIMIT))
	for ((i = 0; i < RUNS && SECONDS < end; i++)); do
		submit_one >>"$R/dispatch-$label.txt"
		sleep 0.05 # let the agent's next long poll settle
	done
}

declare -A BUSY
dispatch_series disk
# ---------------------------------------------------------------------------
if [[ $SSH == 1 ]]; then
	command -v /usr/sbin/sshd >/dev/null && command -v ssh >/dev/null ||
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq openssh-server openssh-client >/dev/null ||
		bench_die "cannot install openssh-server"
	echo "== ssh: sshd in the agent's namespace"
	SD=$BW/ssh
	mkdir -p "$SD/home/.ssh"
	chmod 700 "$SD" "$SD/home" "$SD/home/.ssh"
	ssh-keygen -q -t ed25519 -N '' -f "$SD/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$SD/id"
	cp "$SD/id.pub" "$SD/home/.ssh/authorized_keys"
	node=$(net_addr node)
	port=2222
	echo "[$node]:$port $(cut -d' ' -f1,2 "$SD/host_key.pub")" >"$SD/known_hosts"
	cat >"$SD/sshd_config" <<-EOF
		Port $port
		ListenAddress $node
		HostKey $SD/host_key
		PidFile $SD/sshd.pid
		AuthorizedKeysFile $SD/home/.ssh/authorized_keys
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		PrintMotd no
		PrintLastLog no
		UseDNS no
		LogLevel ERROR
	EOF
	made_run_sshd=
	[[ -d /run/sshd ]] || { mkdir -p /run/sshd && chmod 755 /run/sshd && made_run_sshd=1; }
	[[ -n $made_run_sshd ]] && bench_on_exit "rmdir /run/sshd"
	# A private mount namespace in which root's home is the fresh directory.
	net_exec node unshare -m sh -c "mount --make-rprivate / && mount --bind '$SD/home' /root &&
		exec /usr/sbin/sshd -D -e -f '$SD/sshd_config'" 2>"$SD/sshd.log" &
	SSHD_PID=$!
	bench_on_exit "kill $SSHD_PID"
	SSHC=(ssh -F /dev/null -i "$SD/id" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$SD/known_hosts"
		-o StrictHostKeyChecking=yes -o LogLevel=ERROR -o ConnectTimeout=10 -p "$port")
	for i in $(seq 50); do
		timeout 10 "${SSHC[@]}" -n "root@$node" true 2>/dev/null && break
		sleep 0.2
	done
	timeout 10 "${SSHC[@]}" -n "root@$node" "$EXE" || bench_die "ssh does not work: $(tail -3 "$SD/sshd.log")"
	echo "== ssh: $RUNS runs, a new connection each"
	"$BT" lat "$RUNS" "$LIMIT" -- "${SSHC[@]}" -n "root@$node" "$EXE" >"$R/ssh.us"
	echo "== ssh: $RUNS runs over a multiplexed master connection"
	timeout 20 "${SSHC[@]}" -o ControlMaster=yes -o ControlPath="$SD/ctl" -o ControlPersist=no -fN "root@$node"
	bench_on_exit "ssh -o ControlPath='$SD/ctl' -O exit x"
	"${SSHC[@]}" -o ControlPath="$SD/ctl" -n "root@$node" "$EXE"
	"$BT" lat "$RUNS" "$LIMIT" -- "${SSHC[@]}" -o ControlPath="$SD/ctl" -n "root@$node" "$EXE" >"$R/sshmux.us"
	ssh -o ControlPath="$SD/ctl" -O exit x 2>/dev/null || true
	kill "$SSHD_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------------------
if [[ $SLURM == 1 ]]; then
	if ! command -v srun >/dev/null || ! command -v munged >/dev/null; then
		echo "   installing slurm-wlm and munge"
		DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq slurm-wlm munge >/dev/null ||
			bench_die "cannot install slurm-wlm and munge (apt-get update first?)"
	fi
	echo "== Slurm: munged, slurmctld and slurmd on this host (loopback)"
	L=$BW/slurm
	H=$(hostname -s)
	mkdir -p "$L/state" "$L/spool" "$L/munge"
	chmod 711 "$L/munge"
	head -c 1024 /dev/urandom >"$L/munge/munge.key"
	chmod 400 "$L/munge/munge.key"
	cat >"$L/slurm.conf" <<-EOF
		ClusterName=bench
		SlurmctldHost=$H(127.0.0.1)
		SlurmctldPort=26817
		SlurmdPort=26818
		SrunPortRange=46000-46999
		SlurmUser=root
		SlurmdUser=root
		AuthType=auth/munge
		AuthInfo=socket=$L/munge/munge.sock
		CredType=cred/munge
		StateSaveLocation=$L/state
		SlurmdSpoolDir=$L/spool
		SlurmctldPidFile=$L/slurmctld.pid
		SlurmdPidFile=$L/slurmd.pid
		SlurmctldLogFile=$L/slurmctld.log
		SlurmdLogFile=$L/slurmd.log
		ProctrackType=proctrack/linuxproc
		TaskPlugin=task/none
		JobAcctGatherType=jobacct_gather/none
		AccountingStorageType=accounting_storage/none
		JobCompType=jobcomp/none
		SchedulerType=sched/builtin
		SelectType=select/cons_tres
		SelectTypeParameters=CR_Core
		MpiDefault=none
		ReturnToService=2
		NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
		PartitionName=bench Nodes=$H Default=YES MaxTime=INFINITE State=UP
	EOF
	export SLURM_CONF=$L/slurm.conf
	munged -F --force --socket="$L/munge/munge.sock" --key-file="$L/munge/munge.key" \
		--pid-file="$L/munge/munged.pid" --log-file="$L/munge/munged.log" --seed-file="$L/munge/seed" \
		>"$L/munged.out" 2>&1 &
	slurm_pids=$!
	bench_on_exit "kill $!"
	for i in $(seq 50); do [[ -S $L/munge/munge.sock ]] && break; sleep 0.1; done
	slurmctld -D -f "$SLURM_CONF" >"$L/slurmctld.out" 2>&1 &
	slurm_pids="$! $slurm_pids"
	bench_on_exit "kill $!; sleep 0.5"
	slurmd -D -f "$SLURM_CONF" -N "$H" >"$L/slurmd.out" 2>&1 &
	slurm_pids="$! $slurm_pids"
	bench_on_exit "kill $!"
	for i in $(seq 120); do
		[[ $(sinfo -h -o %t 2>/dev/null) == idle ]] && break
		sleep 0.5
	done
	[[ $(sinfo -h -o %t 2>/dev/null) == idle ]] || bench_die "the Slurm node is not idle: $(sinfo 2>&1 | tail -2)"
	timeout 30 srun "$EXE" || bench_die "srun does not work"
	echo "== srun: $RUNS runs"
	"$BT" lat "$RUNS" "$LIMIT" -- srun "$EXE" >"$R/srun.us"
	for p in $slurm_pids; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
fi

# ---------------------------------------------------------------------------
if [[ $TRACE -gt 0 ]]; then
	command -v strace >/dev/null || bench_die "--trace needs strace"
	echo "== trace: $TRACE submissions with strace on dispatchd and the agent (fsync, fdatasync)"
	strace -f --seccomp-bpf -e trace=fsync,fdatasync -T -o "$R/dispatchd.strace" -p "$BC_DPID" 2>/dev/null &
	st1=$!
	strace -f --seccomp-bpf -e trace=fsync,fdatasync -T -o "$R/agent.strace" -p "$BC_APID" 2>/dev/null &
	st2=$!
	bench_on_exit "kill $st1 $st2"
	sleep 1
	: >"$R/trace.txt"
	for ((i = 0; i < TRACE; i++)); do
		submit_one >>"$R/trace.txt"
		sleep 0.05
	done
	sleep 0.5
	kill "$st1" "$st2" 2>/dev/null || true
	wait "$st1" "$st2" 2>/dev/null || true
fi

bench_cluster_stop
if [[ $TMPFS == 1 ]]; then
	dispatch_series tmpfs --tmpfs
	bench_cluster_stop
fi

echo "== local: posix_spawn + wait of the same executable, $RUNS runs"
BUSY[local]=$(bench_idle_probe)
"$BT" lat "$RUNS" "$LIMIT" -- "$EXE" >"$R/local.us"

echo "== local: the same through dispatch-run: full sandbox (the agent's options), without --no-net, --no-sandbox"
mkdir -p "$BW/sbx"
chown nobody: "$BW/sbx" 2>/dev/null || true
nobody_uid=$(id -u nobody)
nobody_gid=$(id -g nobody)
"$BT" lat "$RUNS" "$LIMIT" -- "$BIN/dispatch-run" --no-net --uid "$nobody_uid" --gid "$nobody_gid" \
	--fsize 1073741824 --nofile 1024 --workdir "$BW/sbx" -- "$EXE" >"$R/sandbox.us"
"$BT" lat "$RUNS" "$LIMIT" -- "$BIN/dispatch-run" --uid "$nobody_uid" --gid "$nobody_gid" \
	--fsize 1073741824 --nofile 1024 --workdir "$BW/sbx" -- "$EXE" >"$R/sandbox-net.us"
"$BT" lat "$RUNS" "$LIMIT" -- "$BIN/dispatch-run" --no-sandbox --workdir "$BW/sbx" -- "$EXE" >"$R/nosandbox.us"


# ---------------------------------------------------------------------------
ms() { "$BT" stats 1000 <"$1"; } # microseconds -> ms
col() { awk -v a="$2" -v b="$3" '{ printf "%.3f\n", ($b - $a) * 1000 }' "$R/dispatch-$1.txt" | "$BT" stats; }
field() { sed -n "s/\(^\| \)$1=\([0-9.]*\).*/\2/p" <<<"$2" | sed 's/.* //'; }
fld() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
row() { # name stats
	printf '| %-40s | %4s | %8s | %8s | %8s | %8s |\n' "$1" "$(fld n "$2")" "$(fld p50 "$2")" \
		"$(fld p90 "$2")" "$(fld p99 "$2")" "$(fld max "$2")"
}
head_row() {
	printf '| %-40s | %4s | %8s | %8s | %8s | %8s |\n' "$1" n p50 p90 p99 max
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
}

declare -A ST
series=(disk)
[[ $TMPFS == 1 ]] && series+=(tmpfs)
for x in "${series[@]}"; do
	ST[run-$x]=$(col "$x" 3 5)
	ST[done-$x]=$(col "$x" 3 6)
	ST[cli-$x]=$(col "$x" 1 5)
	ST[b1-$x]=$(col "$x" 1 3)
	ST[b2-$x]=$(col "$x" 3 4)
	ST[b3-$x]=$(col "$x" 4 7)
	ST[b4-$x]=$(col "$x" 7 5)
	ST[b5-$x]=$(col "$x" 5 6)
	ST[b6-$x]=$(col "$x" 7 8)
done
ST[local]=$(ms "$R/local.us")
ST[sandbox]=$(ms "$R/sandbox.us")
ST[sandbox-net]=$(ms "$R/sandbox-net.us")
ST[nosandbox]=$(ms "$R/nosandbox.us")
[[ -s $R/ssh.us ]] && ST[ssh]=$(ms "$R/ssh.us")
[[ -s $R/sshmux.us ]] && ST[sshmux]=$(ms "$R/sshmux.us")
[[ -s $R/srun.us ]] && ST[srun]=$(ms "$R/srun.us")

echo
echo "== start latency, ms ($RUNS runs each; CPUs busy with other work just before: dispatch ${BUSY[disk]}%, local ${BUSY[local]}%)"
head_row what
row "dispatch: submitted -> running" "${ST[run-disk]}"
row "dispatch: submitted -> done" "${ST[done-disk]}"
row "dispatch: CLI start -> running" "${ST[cli-disk]}"
if [[ $TMPFS == 1 ]]; then
	row "dispatch, state on tmpfs: submitted -> running" "${ST[run-tmpfs]}"
	row "dispatch, state on tmpfs: CLI start -> running" "${ST[cli-tmpfs]}"
fi
row "local posix_spawn + wait" "${ST[local]}"
row "local dispatch-run --no-sandbox" "${ST[nosandbox]}"
row "local dispatch-run sandbox, no --no-net" "${ST[sandbox-net]}"
row "local dispatch-run sandbox (agent's options)" "${ST[sandbox]}"
[[ -n ${ST[ssh]:-} ]] && row "ssh NODE exe (new connection)" "${ST[ssh]}"
[[ -n ${ST[sshmux]:-} ]] && row "ssh NODE exe (multiplexed)" "${ST[sshmux]}"
[[ -n ${ST[srun]:-} ]] && row "srun exe (single-node Slurm)" "${ST[srun]}"
for x in "${series[@]}"; do
	echo
	echo "== where dispatch's time goes ($x), ms per submission"
	head_row phase
	row "CLI start -> submitted" "${ST[b1-$x]}"
	row "submitted -> placed (dispatchd)" "${ST[b2-$x]}"
	row "placed -> agent started the object" "${ST[b3-$x]}"
	row "agent started -> running (dispatchd)" "${ST[b4-$x]}"
	row "running -> done" "${ST[b5-$x]}"
	row "agent: object started -> exit seen" "${ST[b6-$x]}"
done

p50() { fld p50 "$1"; }
p99() { fld p99 "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { ok = op == "le" ? v <= g : v >= g; print ok ? "met" : "NOT met" }'; }
echo
echo "== ratios and goals (dispatch = submitted -> running, state on disk)"
d50=$(p50 "${ST[run-disk]}")
d99=$(p99 "${ST[run-disk]}")
c50=$(p50 "${ST[cli-disk]}")
echo "   dispatch p99 ${d99} ms; goal <= 5 ms: $(verdict "$d99" 5 le)"
echo "   dispatch p50 / local posix_spawn p50: $(ratio "$d50" "$(p50 "${ST[local]}")")x"
if [[ -n ${ST[srun]:-} ]]; then
	r=$(ratio "$(p50 "${ST[srun]}")" "$d50")
	echo "   srun p50 / dispatch p50: ${r}x (p99: $(ratio "$(p99 "${ST[srun]}")" "$d99")x; vs CLI start -> running: $(ratio "$(p50 "${ST[srun]}")" "$c50")x); goal >= 5x: $(verdict "$r" 5 ge)"
fi
if [[ -n ${ST[sshmux]:-} ]]; then
	r=$(ratio "$(p50 "${ST[sshmux]}")" "$d50")
	echo "   ssh (mux) p50 / dispatch p50: ${r}x (p99: $(ratio "$(p99 "${ST[sshmux]}")" "$d99")x; vs CLI start -> running: $(ratio "$(p50 "${ST[sshmux]}")" "$c50")x); goal >= 16x: $(verdict "$r" 16 ge)"
	echo "   ssh (new) p50 / dispatch p50: $(ratio "$(p50 "${ST[ssh]}")" "$d50")x"
fi
if [[ $TMPFS == 1 ]]; then
	t50=$(p50 "${ST[run-tmpfs]}")
	echo "   state on tmpfs: p50 ${t50} ms, p99 $(p99 "${ST[run-tmpfs]}") ms ($(ratio "$d50" "$t50")x faster than on disk)"
	[[ -n ${ST[srun]:-} ]] && echo "     srun p50 / tmpfs p50: $(ratio "$(p50 "${ST[srun]}")" "$t50")x"
	[[ -n ${ST[sshmux]:-} ]] && echo "     ssh (mux) p50 / tmpfs p50: $(ratio "$(p50 "${ST[sshmux]}")" "$t50")x"
fi

if [[ $TRACE -gt 0 ]]; then
	echo
	echo "== fsync/fdatasync per submission (strace on the disk cluster, $TRACE submissions)"
	for p in dispatchd agent; do
		awk -v n="$TRACE" -v who="$p" '/f(data)?sync\(/ { c++; if (match($0, /<[0-9.]+>/)) t += substr($0, RSTART + 1, RLENGTH - 2) }
			END { printf "   %-9s %5.1f calls, %6.1f ms in them per submission\n", who, c / n, 1000 * t / n }' "$R/$p.strace"
	done
fi

if [[ -n $JSON_OUT ]]; then
	{
		echo "{"
		for k in "${!ST[@]}"; do
			printf '  "%s": {%s},\n' "$k" "$(sed 's/\([a-z0-9]*\)=\([0-9.]*\)/"\1": \2,/g; s/,$//' <<<"${ST[$k]}")"
		done
		printf '  "runs": %d\n}\n' "$RUNS"
	} >"$JSON_OUT"
	echo "   figures written to $JSON_OUT"
fi
