# lib.sh - a real cluster on one machine: dispatchd and agents, each in its own
# network namespace, joined by a bridge; addresses from 198.18.0.0/15 only.
#
#   . tests/cluster/lib.sh
#   net_init                     # bridge + a /24 of 198.18.0.0/15 for this run
#   net_host disp 1              # namespace "<prefix>-disp" at 198.18.N.1
#   net_exec disp CMD...         # run in it
#   net_link disp down|up        # cut or heal its link
#   net_cleanup                  # kill everything, delete namespaces and bridge
#
# Needs root (ip netns). Every name is prefixed with a per-run id so that runs
# can overlap: net_init claims a free one (NET_ID, or the first free one from
# a guess by pid), and net_cleanup removes only what this run created.

# net_use_id ID: the names of run ID.
net_use_id() {
	net_id=$1
	net_prefix="dsp$net_id"
	net_subnet="198.18.$net_id"
	net_switch="$net_prefix-switch"
}
net_use_id "${NET_ID:-$(( ($$ % 200) + 20 ))}"
net_hosts=()
net_owned= # set once net_init has claimed the id

net_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: network namespaces need root"
		exit 77
	fi
}

net_init() {
	net_require_root
	local base=$net_id i
	# Creating the switch namespace claims the id: it fails when another run holds it.
	for i in $(seq 0 199); do
		net_use_id $(( (base - 20 + i) % 200 + 20 ))
		ip netns add "$net_switch" 2>/dev/null && break
		if [ -n "${NET_ID:-}" ] || [ "$i" -eq 199 ]; then
			echo "FAIL: network namespace $net_switch exists: another run holds id $net_id"
			exit 1
		fi
	done
	net_owned=1
	ip -n "$net_switch" link add br0 type bridge
	ip -n "$net_switch" link set br0 up
	ip link add "${net_prefix}h" type veth peer name host netns "$net_switch"
	ip -n "$net_switch" link set host master br0 up
	ip addr add "$net_subnet.254/24" dev "${net_prefix}h"
	ip link set "${net_prefix}h" up
}

# net_host NAME OCTET: a namespace with eth0 at 198.18.<id>.<OCTET>.
net_host() {
	local name=$1 octet=$2 ns="$net_prefix-$1"
	ip netns add "$ns" || { echo "FAIL: cannot create network namespace $ns"; exit 1; }
	ip -n "$net_switch" link add "v$octet" type veth peer name eth0 netns "$ns"
	ip -n "$net_switch" link set "v$octet" master br0 up
	ip -n "$ns" addr add "$net_subnet.$octet/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	net_hosts+=("$name:$octet")
}

net_addr() {
	local h
	for h in "${net_hosts[@]}"; do
		if [ "${h%%:*}" = "$1" ]; then
			echo "$net_subnet.${h##*:}"
			return 0
		fi
	done
	return 1
}

# net_exec NAME CMD...: CMD in the host's namespace. `ip netns exec` mounts
# the namespace's own sysfs on /sys, which hides the cgroup file systems
# under /sys/fs/cgroup: the cgroup2 hierarchy is mounted there again (in
# that command's private mount namespace), as a host has it, so agents make
# their runs' control groups (common/cgroup.h) as they do on a node.
net_exec() {
	local ns="$net_prefix-$1"
	shift
	ip netns exec "$ns" sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null; exec "$@"' net_exec "$@"
}

# net_link NAME up|down: the bridge side of the host's link.
net_link() {
	local h
	for h in "${net_hosts[@]}"; do
		if [ "${h%%:*}" = "$1" ]; then
			ip -n "$net_switch" link set "v${h##*:}" "$2"
		fi
	done
}

# The control groups (common/cgroup.h) of this run's agents, by name
# (dispatch-agent.HASH): net_cgroups_from_logs reads them from the lines the
# agents log when they start; net_cleanup removes what agents and
# supervisors killed with -9 left of them (rmdir takes empty groups only).
net_cgroups=()
net_cgroups_from_logs() {
	local name
	for name in $(sed -n "s|.*runs' control groups in '.*/\(dispatch-agent\.[0-9a-f]\{16\}\)'.*|\1|p" "$@" 2>/dev/null); do
		net_cgroups+=("$name")
	done
}
net_cgroups_tidy() {
	local root own name
	[ ${#net_cgroups[@]} -gt 0 ] || return 0
	root=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
		/proc/self/mountinfo)
	own=$(sed -n 's/^0:://p' /proc/self/cgroup)
	[ -n "$root" ] || return 0
	for name in "${net_cgroups[@]}"; do
		[ -d "$root${own%/}/$name" ] || continue
		rmdir "$root${own%/}/$name"/*/ 2>/dev/null || true
		rmdir "$root${own%/}/$name" 2>/dev/null || true
	done
	net_cgroups=()
}

net_cleanup() {
	local h ns
	[ -n "$net_owned" ] || return 0
	for h in "${net_hosts[@]}"; do
		ns="$net_prefix-${h%%:*}"
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
	done
	sleep 0.2
	net_cgroups_tidy
	for h in "${net_hosts[@]}"; do
		ip netns del "$net_prefix-${h%%:*}" 2>/dev/null || true
	done
	ip link del "${net_prefix}h" 2>/dev/null || true
	ip netns del "$net_switch" 2>/dev/null || true
	net_hosts=()
	net_owned=
}
