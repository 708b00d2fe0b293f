# shellcheck shell=bash
# lib.sh - what the service tests share: tests/cluster/testlib.sh (the
# namespaces, dispatchd, checks, API helpers), the container of
# container.sh, and checks of a unit in it.
#
#   . "$(dirname "$0")/lib.sh"     # root or skip (77); cleans up on exit
#   check WHAT GOT WANT; ... ; svc_finish NAME
#
# Everything a test starts (container, dispatchd, namespaces, the overlay)
# is removed on exit, on a failure and on SIGTERM.

svc_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$svc_here/../cluster/testlib.sh"
. "$svc_here/container.sh"
trap 'ct_stop; cluster_stop' EXIT
trap 'exit 1' INT TERM
started=$SECONDS

# svc_show UNIT PROPERTY: the property's value in the container's systemd.
svc_show() { ct_exec systemctl show "$1" -p "$2" --value; }

# svc_check_hardening UNIT CAPBND: the unit's main process has the capability
# bounding set CAPBND (hex, as in /proc/PID/status) and no_new_privs, and
# /usr and /etc are read-only in its mount namespace (ProtectSystem=strict).
svc_check_hardening() {
	local pid
	pid=$(svc_show "$1" MainPID)
	check "$1 hardening: CapabilityBoundingSet and NoNewPrivileges in force" \
		"$(ct_exec awk '/^(NoNewPrivs|CapBnd):/ {printf "%s ", $2}' "/proc/$pid/status")" "$2 1 "
	check "$1 hardening: ProtectSystem=strict, /usr and /etc are read-only" \
		"$(ct_exec nsenter -t "$pid" -m sh -c 'touch /usr/x || touch /etc/x || echo read-only' 2>/dev/null)" read-only
}

svc_finish() {
	echo "$1: ran in $((SECONDS - started)) s"
	checks_done "$1"
}
