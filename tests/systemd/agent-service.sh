#!/usr/bin/env bash
# dispatch-agent as a systemd service, under a real systemd: a Debian 12
# container booted with systemd-nspawn in a network namespace of its own,
# dispatch installed into it with `cmake --install`, dispatchd outside in
# another namespace. The agent joins and runs objects; `systemctl restart`
# and `systemctl stop` leave a running object alive (same process) and it
# ends with the result of an uninterrupted run. The control: with systemd's
# default KillMode=control-group the same stop ends the object's run (its
# supervisor, signalled too, has it checkpoint and exit at best) and the
# instance must be placed again; KillMode=process is what prevents that.
# The unit's hardening is checked to be in force while all this works.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# dispatchd in its namespace (no agents of cluster.sh), the node's namespace.
cluster_start
net_host node 10
ct_prepare

# The node's settings, as an operator writes them (packaging/systemd/agent.env).
cp "$CW/cert.pem" "$CT_ROOT/etc/dispatch/ca.pem"
install -m 600 "$CW/state/join.token" "$CT_ROOT/etc/dispatch/join.token"
cat >"$CT_ROOT/etc/dispatch/agent.env" <<EOF
DISPATCH_URL=$CLUSTER_URL
DISPATCH_CA=/etc/dispatch/ca.pem
DISPATCH_AGENT_OPTS=--name node-systemd --heartbeat 1
EOF
ct_boot node
echo "container booted in $((SECONDS - started)) s"

agent_show() { svc_show dispatch-agent "$1"; }
# Supervisor and object of the only run: "SHIM OBJECT START-TIME-OF-OBJECT".
run_pids() {
	ct_exec sh -c 'for f in /var/lib/dispatch-agent/inst/*/pid; do
		read -r s o <"$f" && echo "$s $o $(cut -d" " -f22 /proc/$o/stat 2>/dev/null)"; done'
}
alive() { ct_exec sh -c "[ -d /proc/$1 ] && [ \"\$(cut -d' ' -f22 /proc/$1/stat)\" = '$2' ]" && echo yes || echo no; }
walk_job() { # name steps sleep_us: a one-instance walk manifest in $CW/NAME.json
	python3 - "$top" "$CW/$1.json" "$2" "$3" <<'PY'
import json, sys
top, out, steps, sleep_us = sys.argv[1:5]
m = json.load(open(top + "/manifests/examples/walk.json"))
m["name"] = out.rsplit("/", 1)[1][:-5]
w = m["objects"][0]
w["source"]["path"] = top + "/manifests/examples/walk"
w["instances"] = 1
w["state"].update(steps=int(steps), sleep_us=int(sleep_us))
json.dump(m, open(out, "w"))
PY
}

# 1. Enabled and started the way an operator does it; the node joins.
ct_exec systemctl enable --now dispatch-agent >/dev/null 2>&1
check "systemctl enable --now: the service is active" "$(ct_exec systemctl is-active dispatch-agent || true)" active
check "the service is enabled for multi-user.target" "$(ct_exec systemctl is-enabled dispatch-agent || true)" enabled
cluster_wait_nodes 1 60
check "the node joined under its --name from agent.env" \
	"$(cluster_cli nodes --json | jq_ '[n["name"] for n in d["nodes"] if n["state"] == "up"]')" "['node-systemd']"
check "KillMode=process, Restart=on-failure" "$(agent_show KillMode) $(agent_show Restart)" "process on-failure"
check "the work directory is the StateDirectory" \
	"$(ct_exec stat -c '%U %a' /var/lib/dispatch-agent/node.json)" "root 600"
svc_check_hardening dispatch-agent 00000000002000e3

# 2. A reference run, uninterrupted, on the same node.
STEPS=400000
walk_job reference "$STEPS" 0
cluster_cli submit "$CW/reference.json" --wait --json >"$CW/reference.out" || cluster_fail "the reference walk failed"
ref=$(walk_result "$(jq_ 'd["instances"][0]["id"]' <"$CW/reference.out")")
check "an object ran under the service (reference walk done)" "$(jq_ 'd["instances"][0]["state"]' <"$CW/reference.out")" "done"
cluster_cli logs "$(jq_ 'd["instances"][0]["id"]' <"$CW/reference.out")" >"$CW/reference.log"
check "every sandbox step of dispatch-run worked under the hardening (no note in the object's log)" \
	"$(grep -c '^walk: ' "$CW/reference.log") $(grep -c 'dispatch-run' "$CW/reference.log")" "1 0"

# 3. A slow walk (60 ms every 1024 steps: about 25 s) across a restart and a stop.
walk_job slow "$STEPS" 60000
inst=$(cluster_cli submit "$CW/slow.json" --json | jq_ 'd["instances"][0]')
wait_for "$inst" 'd["state"] == "running" and d["progress"] > 0.02' 120
read -r shim obj start < <(run_pids)
echo "object pid $obj (supervisor $shim) in the container"
check "the object runs as nobody, not as root" "$(ct_exec stat -c %U "/proc/$obj")" nobody
check "the object has its own network and mount namespaces" "$(ct_exec sh -c "for n in net mnt; do
	[ \$(readlink /proc/$obj/ns/\$n) != \$(readlink /proc/$shim/ns/\$n) ] || exit 1; done && echo yes")" yes
check "the supervisor and the object are in the service's control group" \
	"$(ct_exec grep -l 'dispatch-agent\.service' "/proc/$shim/cgroup" "/proc/$obj/cgroup" | wc -l)" 2
run=$(ct_exec sh -c 'basename "$(dirname /var/lib/dispatch-agent/inst/*/pid)"')
check "the object is in its run's own control group below the service's (Delegate=yes)" \
	"$(ct_exec grep -c "^0::/system.slice/dispatch-agent.service/dispatch-agent\.[0-9a-f]\{16\}/$run\$" "/proc/$obj/cgroup")" 1
check "the supervisor stays in the service's group" \
	"$(ct_exec grep -c '^0::/system.slice/dispatch-agent.service$' "/proc/$shim/cgroup")" 1
ct_exec journalctl -u dispatch-agent --no-pager >"$CW/agent-journal.txt"
# The unit's group in the container's cgroup2 mount (/sys/fs/cgroup, or .../unified on a hybrid host).
svc_cg=$(sed -n "s|.*runs' control groups in '\(/sys/fs/cgroup.*/system.slice/dispatch-agent.service\)/dispatch-agent\.[0-9a-f]\{16\}'\$|\1|p" \
	"$CW/agent-journal.txt" | tail -1)
check "the agent makes the runs' groups, forking objects into them with clone3() (the unit lets it)" \
	"$([ -n "$svc_cg" ] && echo base) $(grep -c 'no control group of their own\|clone3() is refused' "$CW/agent-journal.txt")" "base 0"
check "ProtectControlGroups=yes: the cgroup tree is read-only for the agent but for the unit's own subtree" \
	"$(ct_exec nsenter -t "$(agent_show MainPID)" -m sh -c "mkdir '${svc_cg%/system.slice/*}/dispatch-x' 2>/dev/null && echo rw-root;
		mkdir '$svc_cg/x' && rmdir '$svc_cg/x' && echo rw-own")" rw-own
agent1=$(agent_show MainPID)

ct_exec systemctl restart dispatch-agent
agent2=$(agent_show MainPID)
check "systemctl restart: a new agent process" "$([ "$agent2" != "$agent1" ] && [ "$agent2" != 0 ] && echo yes)" yes
check "systemctl restart: the object is the same process, still running" "$(alive "$obj" "$start")" yes
check "systemctl restart: its supervisor too" "$(ct_exec sh -c "[ -d /proc/$shim ]" && echo yes || echo no)" yes
p=$(api GET "/v1/instances/$inst" | jq_ 'd["progress"]')
wait_for "$inst" 'd["state"] == "running" and d["progress"] > '"$p" 30
check "after the restart its progress goes on, same generation" "$(api GET "/v1/instances/$inst" | jq_ 'd["generation"]')" 1

ct_exec systemctl stop dispatch-agent
check "systemctl stop: the service is inactive" "$(ct_exec systemctl is-active dispatch-agent || true)" inactive
check "systemctl stop: no agent process is left" \
	"$(agent_show MainPID) $(ct_exec sh -c 'grep -lx dispatch-agent /proc/[0-9]*/comm' || echo none)" "0 none"
sleep 2
check "systemctl stop: the object is the same process, still running" "$(alive "$obj" "$start")" yes
ct_exec systemctl start dispatch-agent
wait_for "$inst" 'd["state"] == "done"' 120
check "the object that lived through both ended with the uninterrupted run's result" "$(walk_result "$inst")" "$ref"
api GET "/v1/instances/$inst" >"$CW/slow-instance.json"
check "it never moved: generation 1, no moves" "$(jq_ '"%d %d" % (d["generation"], d["moves"])' <"$CW/slow-instance.json")" "1 0"
check "nothing was checkpointed or restarted on the way" \
	"$(jq_ 'sum(h["event"] in ("checkpointed", "failed", "lost") for h in d["history"])' <"$CW/slow-instance.json")" 0
for _ in $(seq 40); do
	n=$(ct_exec sh -c 'ls /var/lib/dispatch-agent/inst | wc -l')
	[ "$n" = 0 ] && break
	sleep 0.25
done
check "the finished runs' directories are gone (the agent removed what the objects wrote)" "$n" 0
check "... and their control groups (the agent's base group is there, empty)" \
	"$(ct_exec sh -c "cd '$svc_cg' && ls -d dispatch-agent.* | wc -l && find . -mindepth 2 -type d | wc -l" |
		tr '\n' ' ')" "1 0 "

# 4. The control: the same stop with systemd's default KillMode ends the
# supervisor and the object with the agent's control group.
walk_job control "$STEPS" 60000
inst2=$(cluster_cli submit "$CW/control.json" --json | jq_ 'd["instances"][0]')
wait_for "$inst2" 'd["state"] == "running" and d["progress"] > 0.02' 120
read -r shim2 obj2 start2 < <(run_pids)
ct_exec sh -c 'mkdir -p /run/systemd/system/dispatch-agent.service.d &&
	printf "[Service]\nKillMode=control-group\n" >/run/systemd/system/dispatch-agent.service.d/kill.conf &&
	systemctl daemon-reload'
check "the drop-in sets the default KillMode" "$(agent_show KillMode)" control-group
ct_exec systemctl stop dispatch-agent
check "with KillMode=control-group, systemctl stop kills the object" "$(alive "$obj2" "$start2")" no
check "... and its supervisor" "$(ct_exec sh -c "[ -d /proc/$shim2 ]" && echo yes || echo no)" no
ct_exec sh -c 'rm -r /run/systemd/system/dispatch-agent.service.d && systemctl daemon-reload && systemctl start dispatch-agent'
check "without the drop-in KillMode is process again" "$(agent_show KillMode)" process
# The stop signalled the supervisor too, which asks its object for a
# checkpoint and ends it: that run is over, the instance is placed again.
wait_for "$inst2" 'd["generation"] > 1 or d["state"] in ("failed", "lost")' 60
check "the killed run did not go on: the instance had to be placed again" \
	"$(api GET "/v1/instances/$inst2" | jq_ 'd["generation"] > 1 or d["state"] == "failed"')" True

# 5. Draining from the node: SIGUSR2 to the agent alone. The object
# checkpoints, the agent exits 0 and Restart=on-failure leaves it stopped.
wait_for "$inst2" 'd["state"] == "running"' 60
n=$(api GET "/v1/instances/$inst2" | jq_ 'sum(h["event"] == "checkpointed" for h in d["history"])')
ct_exec systemctl kill --kill-whom=main --signal=SIGUSR2 dispatch-agent
for _ in $(seq 120); do
	[ "$(ct_exec systemctl is-active dispatch-agent || true)" = inactive ] && break
	sleep 0.25
done
check "systemctl kill --kill-whom=main -s SIGUSR2: the agent drained and exited cleanly, not restarted" \
	"$(agent_show ActiveState) $(agent_show Result) $(agent_show NRestarts)" "inactive success 0"
check "the drained object's checkpoint reached the dispatcher" \
	"$(api GET "/v1/instances/$inst2" | jq_ 'sum(h["event"] == "checkpointed" for h in d["history"])')" $((n + 1))
check "no run is left on the drained node" "$(ct_exec sh -c 'ls /var/lib/dispatch-agent/inst | wc -l')" 0
cluster_cli cancel "$(api GET "/v1/instances/$inst2" | jq_ 'd["job"]')" >/dev/null 2>&1 || true

svc_finish agent-service
