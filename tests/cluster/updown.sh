#!/usr/bin/env bash
# `dispatch up` and `dispatch down`, the local cluster of the README's demo
# (on loopback; the native agent only). `down` leaves nothing running of
# it: not even a process an object detached from its session and moved out
# of the cluster's directory, which only the agents' control groups
# (common/cgroup.h) still hold; and the groups go too.
. "$(dirname "$0")/testlib.sh"

W=$(mktemp -d "${TMPDIR:-/tmp}/updown.XXXXXX")
chmod 711 "$W" # the objects' user passes through to its directories
D=$W/cluster
dispatch=$build/cli/dispatch
trap 'timeout 60 "$dispatch" down --dir "$D" >/dev/null 2>&1 || true; [ -n "${KEEP_CLUSTER:-}" ] || rm -rf "$W"' EXIT

timeout 120 "$dispatch" up --dir "$D" >"$W/up.out" 2>&1 || { cat "$W/up.out"; cluster_fail "dispatch up failed"; }
check "dispatch up: one native node joined" "$(grep -c '^n-1 .*local-native' "$W/up.out")" 1
DISPATCH_URL=$(sed -n 's/^url = //p' "$D/config")
DISPATCH_TOKEN_FILE=$(sed -n 's/^token_file = //p' "$D/config")
export DISPATCH_URL DISPATCH_TOKEN_FILE

cat >"$W/detach.json" <<JSON
{"manifest": 1, "name": "detach", "objects": [{"name": "detach", "source": {"path": "$here/detach"},
  "build": {"recipe": "c", "sources": ["detach.c"]}, "instances": 1}]}
JSON
inst=$(timeout 300 "$dispatch" submit "$W/detach.json" --json | jq_ 'd["instances"][0]')
pid=
for _ in $(seq 240); do
	pid=$(timeout 30 "$dispatch" logs "$inst" 2>/dev/null | sed -n 's/^stray \([0-9]*\)$/\1/p')
	[ -n "$pid" ] && break
	sleep 0.25
done
[ -n "$pid" ] || cluster_fail "the object never reported its stray"
if [ ! -f "$D/agent-native/cgroup" ]; then
	echo "SKIP: the agent made no control groups here: $(grep -h 'control group' "$D"/agent-*.log)"
	exit 77
fi
group=$(cat "$D/agent-native/cgroup")
check "the stray runs out of the cluster's directory, in its run's group below the agent's" \
	"$(readlink "/proc/$pid/cwd") $(grep -c "^0::.*/$(basename "$group")/i-1-1\$" "/proc/$pid/cgroup")" "/ 1"

dead() { [ ! -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# `down` acts only on what is the caller's and named as an agent there names
# it: a cluster directory others can write is refused, and a WORK/cgroup
# naming another group (here a decoy with a process in it, named like an
# agent's) is ignored.
chmod 777 "$D"
check "dispatch down refuses a cluster directory others can write" \
	"$(timeout 60 "$dispatch" down --dir "$D" 2>&1 >/dev/null | grep -c 'refusing to stop'; echo "rc ${PIPESTATUS[0]}")" "1
rc 1"
chmod 755 "$D"
cg_root=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
	/proc/self/mountinfo)
decoy="$cg_root$(sed -n 's/^0:://p' /proc/self/cgroup | sed 's|/$||')/dispatch-agent.0123456789abcdef"
mkdir "$decoy"
sleep 300 &
decoy_pid=$!
echo "$decoy_pid" >"$decoy/cgroup.procs"
trap 'kill $decoy_pid 2>/dev/null; sleep 0.1; rmdir "$decoy" 2>/dev/null; timeout 60 "$dispatch" down --dir "$D" >/dev/null 2>&1 || true; [ -n "${KEEP_CLUSTER:-}" ] || rm -rf "$W"' EXIT
cp "$D/agent-native/cgroup" "$W/cgroup.saved"
echo "$decoy" >"$D/agent-native/cgroup"
timeout 60 "$dispatch" down --dir "$D" >"$W/down1.out" 2>&1 || { cat "$W/down1.out"; cluster_fail "dispatch down failed"; }
check "dispatch down ignores a WORK/cgroup naming a group that is not its agent's" \
	"$(grep -c "is not the control group of an agent on" "$W/down1.out") $(dead "$decoy_pid" && echo killed || echo alive)" "1 alive"
check "... so the detached process lives on in the agent's real group" "$(dead "$pid" && echo dead || echo alive)" alive
cp "$W/cgroup.saved" "$D/agent-native/cgroup"

timeout 60 "$dispatch" down --dir "$D" >"$W/down.out" 2>&1 || { cat "$W/down.out"; cluster_fail "dispatch down failed"; }
for _ in $(seq 20); do dead "$pid" && break; sleep 0.1; done
check "dispatch down: the detached process is gone" "$(dead "$pid" && echo yes)" yes
left=0
for p in /proc/[0-9]*; do
	c=$(readlink "$p/cwd" 2>/dev/null) || continue
	case $c in "$D" | "$D"/*) dead "${p#/proc/}" || left=$((left + 1)) ;; esac
done
check "dispatch down: no process works in the cluster's directory" "$left" 0
check "dispatch down: the agent's control groups are gone" "$([ -e "$group" ] && echo there || echo gone)" gone

checks_done updown
