# shellcheck shell=bash
# container.sh - a Debian 12 machine booted with systemd under systemd-nspawn,
# with dispatch installed in it as a package would be, in a network namespace
# of lib.sh.
#
#   . tests/cluster/lib.sh; . tests/cluster/cluster.sh; . tests/systemd/container.sh
#   ct_prepare               # the root file system of scripts/rootfs, an overlay on it
#                            # in $CW/ct, `cmake --install` of the build into the overlay
#   ct_boot HOST             # boots it in lib.sh's namespace of HOST (net_host), waits for systemd
#   ct_exec CMD...           # runs CMD in the container (all its namespaces, a clean environment)
#   ct_stop                  # powers it off (bounded), unmounts the overlay
#
# The root file system stays untouched: everything a run writes goes to the
# overlay's upper directory, removed with $CW. --register=no: no
# systemd-machined is needed on the host (so no `machinectl` or
# `systemd-run --machine`: ct_exec enters the namespaces of the container's
# PID 1 with nsenter).

ct_rootfs=${DISPATCH_ROOTFS:-$top/.cache/rootfs/bookworm}
ct_name="dsp$net_id-ct"
ct_pid="" ct_leader="" CT_ROOT=""

ct_prepare() {
	local t
	for t in systemd-nspawn nsenter; do
		command -v "$t" >/dev/null || cluster_fail "$t is missing (scripts/setup installs it)"
	done
	"$top/scripts/rootfs" "$ct_rootfs" >/dev/null || cluster_fail "no root file system (scripts/rootfs)"
	mkdir -p "$CW/ct/upper" "$CW/ct/work" "$CW/ct/root"
	mount -t overlay overlay -o "lowerdir=$ct_rootfs,upperdir=$CW/ct/upper,workdir=$CW/ct/work" "$CW/ct/root" ||
		cluster_fail "cannot mount an overlay on $ct_rootfs"
	CT_ROOT=$CW/ct/root
	# The build tree may be relinked while it is copied (a build running
	# beside the test): install again until the copies match it.
	local b ok=0
	for _ in 1 2 3 4 5; do
		DESTDIR=$CT_ROOT cmake --install "$build" >"$CW/ct/install.log" 2>&1 ||
			cluster_fail "cmake --install failed: $(tail -3 "$CW/ct/install.log")"
		ok=1
		for b in agent/dispatch-agent agent/dispatch-run dispatcher/dispatchd cli/dispatch; do
			cmp -s "$build/$b" "$CT_ROOT/usr/local/bin/${b#*/}" || ok=0
		done
		[ $ok -eq 1 ] && break
		sleep 2
	done
	[ $ok -eq 1 ] || cluster_fail "the build tree kept changing during cmake --install"
	mkdir -p "$CT_ROOT/etc/dispatch"
	chmod 700 "$CT_ROOT/etc/dispatch"
}

# The container's PID 1: nspawn's child that is PID 1 in its own PID namespace.
ct_find_leader() {
	local c
	for c in $(pgrep -P "$ct_pid" 2>/dev/null); do
		if [ "$(awk '/^NSpid:/ {print $NF}' "/proc/$c/status" 2>/dev/null)" = 1 ]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

ct_boot() {
	local ns="$net_prefix-$1" t state
	systemd-nspawn --register=no --keep-unit --boot --directory="$CT_ROOT" --machine="$ct_name" \
		--network-namespace-path="/run/netns/$ns" --console=passive --link-journal=no \
		--resolv-conf=off --timezone=off >"$CW/ct/nspawn.log" 2>&1 &
	ct_pid=$!
	for t in $(seq 100); do
		ct_leader=$(ct_find_leader) && break
		kill -0 "$ct_pid" 2>/dev/null || cluster_fail "systemd-nspawn ended: $(tail -5 "$CW/ct/nspawn.log")"
		sleep 0.1
	done
	[ -n "$ct_leader" ] || cluster_fail "the container's systemd did not start in 10 s"
	# Until systemd answers "running" (or "degraded": some unit of the base
	# system failed); before its socket exists systemctl cannot connect.
	for t in $(seq 180); do
		state=$(ct_exec systemctl is-system-running 2>/dev/null || true)
		case $state in
		running | degraded) return 0 ;;
		esac
		kill -0 "$ct_pid" 2>/dev/null || break
		sleep 0.5
	done
	cluster_fail "the container did not finish booting (state '$state'): $(tail -5 "$CW/ct/nspawn.log")"
}

ct_exec() {
	[ -n "$ct_leader" ] || cluster_fail "no container"
	timeout 120 nsenter --target "$ct_leader" --all \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

ct_stop() {
	local t
	if [ -n "$ct_pid" ] && kill -0 "$ct_pid" 2>/dev/null; then
		kill -TERM "$ct_pid" 2>/dev/null # nspawn asks the container's systemd to power off
		for t in $(seq 150); do
			kill -0 "$ct_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$ct_pid" 2>/dev/null || true
		wait "$ct_pid" 2>/dev/null || true
	fi
	# Killing PID 1 of a PID namespace kills all of it.
	if [ -n "$ct_leader" ]; then kill -KILL "$ct_leader" 2>/dev/null || true; fi
	ct_pid="" ct_leader=""
	if [ -n "$CT_ROOT" ]; then
		umount "$CT_ROOT" 2>/dev/null || umount -l "$CT_ROOT" 2>/dev/null || true
		rmdir "/run/systemd/nspawn/propagate/$ct_name" 2>/dev/null || true
		CT_ROOT=""
	fi
}
