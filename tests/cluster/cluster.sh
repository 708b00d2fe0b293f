# cluster.sh - start a heterogeneous dispatch cluster in network namespaces.
#
#   . tests/cluster/lib.sh; . tests/cluster/cluster.sh
#   cluster_start x86_64 aarch64 s390x armhf   # dispatchd (TLS) + one agent per ISA
#   cluster_start x86_64 b:x86_64 aarch64      # NAME:ISA: another agent of an ISA, named NAME
#   cluster_cli status ...                     # the CLI, from the host, over TLS
#   cluster_stop
#
# dispatchd listens on https://198.18.<id>.1:7443 with a certificate made for
# the run; every agent is the agent binary of its own ISA (foreign ones under
# qemu-user with their sysroot), each in its own namespace. An agent is known
# by its name (the ISA unless NAME:ISA): namespace NAME, node name node-NAME,
# work dir $CW/agent-NAME, log $CW/agent-NAME.log.
#
# Optional: CLUSTER_DISPATCHD_OPTS and CLUSTER_AGENT_OPTS add options to
# dispatchd and to every agent; CLUSTER_STAMP is a command every line of their
# logs goes through (bench/ passes `benchtool stamp` to time-stamp them).

top=${DISPATCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${DISPATCH_BUILD_DIR:-$top/build}
declare -A cluster_debarch=([aarch64]=arm64 [armhf]=armhf [s390x]=s390x [ppc64le]=ppc64el)
declare -A cluster_isa=()
declare -A cluster_cpus=() # NAME -> CPU list: that agent (and its objects) pinned there with taskset
cluster_agents=()

cluster_fail() { echo "FAIL: $*"; exit 1; }

# cluster_start ISA|NAME:ISA... : creates $CW (work dir), starts everything, waits for the nodes.
cluster_start() {
	CW=$(mktemp -d "${TMPDIR:-/tmp}/cluster.XXXXXX")
	chmod 711 "$CW"
	net_init
	net_host disp 1
	local addr; addr=$(net_addr disp)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj /CN=dispatchd -addext "subjectAltName=IP:$addr" \
		-keyout "$CW/key.pem" -out "$CW/cert.pem" 2>/dev/null || cluster_fail "cannot make a certificate"
	CLUSTER_URL="https://$addr:7443"
	cluster_start_dispatchd
	export DISPATCH_URL=$CLUSTER_URL DISPATCH_TOKEN_FILE=$CW/state/operator.token DISPATCH_CA=$CW/cert.pem
	local octet=10 spec name
	for spec in "$@"; do
		name=${spec%%:*}
		cluster_isa[$name]=${spec#*:}
		net_host "$name" $octet
		octet=$((octet + 1))
		cluster_agents+=("$name")
		cluster_start_agent "$name"
	done
	cluster_wait_nodes $# 120
}

# Prefix of a command that writes its own pid to a file, then becomes the
# command: $! of a background shell function is the subshell's pid, not the
# daemon's, and `kill -9` of that would leave the daemon running.
# shellcheck disable=SC2016
cluster_pidfile=(sh -c 'echo $$ >"$0"; exec "$@"')

# cluster_bg LOG CMD...: CMD in the background ($!), its output appended to LOG (through $CLUSTER_STAMP).
cluster_bg() {
	local log=$1
	shift
	if [ -n "${CLUSTER_STAMP:-}" ]; then
		# shellcheck disable=SC2086
		"$@" > >($CLUSTER_STAMP >>"$log") 2>&1 &
	else
		"$@" >>"$log" 2>&1 &
	fi
}

cluster_start_dispatchd() {
	rm -f "$CW/dispatchd.pid" "$CW/state/dispatchd.url"
	# shellcheck disable=SC2086
	cluster_bg "$CW/dispatchd.log" net_exec disp "${cluster_pidfile[@]}" "$CW/dispatchd.pid" \
		"$build/dispatcher/dispatchd" --state-dir "$CW/state" \
		--listen "$(net_addr disp):7443" --tls-cert "$CW/cert.pem" --tls-key "$CW/key.pem" \
		--ttl "${CLUSTER_TTL:-20}" --heartbeat "${CLUSTER_HEARTBEAT:-5}" ${CLUSTER_DISPATCHD_OPTS:-}
	local i
	for i in $(seq 100); do
		[ -s "$CW/state/dispatchd.url" ] && return 0
		sleep 0.1
	done
	cluster_fail "dispatchd did not start: $(tail -5 "$CW/dispatchd.log")"
}

# The agent binary of the ISA, and the environment it needs under qemu.
cluster_agent_cmd() {
	local isa=$1
	if [ "$isa" = "$(uname -m)" ]; then
		echo "$build/agent/dispatch-agent"
	else
		local bin="$top/build-$isa/agent/dispatch-agent"
		[ -x "$bin" ] || cluster_fail "no $isa agent at $bin (scripts/foreign $isa)"
		echo "env QEMU_LD_PREFIX=$top/.cache/sysroot/${cluster_debarch[$isa]} $bin"
	fi
}

# cluster_start_agent NAME: (again) the agent named NAME (an ISA, or the NAME of a NAME:ISA).
cluster_start_agent() {
	local name=$1 isa=${cluster_isa[$1]:-$1} pin=()
	[ -z "${cluster_cpus[$name]:-}" ] || pin=(taskset -c "${cluster_cpus[$name]}")
	mkdir -p "$CW/agent-$name"
	chmod 711 "$CW/agent-$name"
	rm -f "$CW/agent-$name.pid"
	# shellcheck disable=SC2046,SC2086
	cluster_bg "$CW/agent-$name.log" net_exec "$name" "${cluster_pidfile[@]}" "$CW/agent-$name.pid" \
		"${pin[@]}" $(cluster_agent_cmd "$isa") --dispatcher "$CLUSTER_URL" \
		--ca "$CW/cert.pem" --join-token-file "$CW/state/join.token" --work-dir "$CW/agent-$name" \
		--name "node-$name" ${CLUSTER_AGENT_OPTS:-}
}

cluster_cli() {
	timeout 300 "$build/cli/dispatch" "$@"
}

# cluster_wait_nodes N SECONDS
cluster_wait_nodes() {
	local n=$1 t
	for t in $(seq $(($2 * 4))); do
		local up
		up=$(cluster_cli nodes --json 2>/dev/null | python3 -c \
			'import json,sys; print(sum(n["state"] == "up" for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
		[ "$up" -ge "$n" ] && return 0
		sleep 0.25
	done
	cluster_fail "only $up of $n nodes joined; logs in $CW"
}

cluster_stop() {
	[ -z "${CW:-}" ] || net_cgroups_from_logs "$CW"/agent-*.log
	net_cleanup
	if [ -n "${CW:-}" ] && [ -z "${KEEP_CLUSTER:-}" ]; then
		rm -rf "$CW"
	fi
}
