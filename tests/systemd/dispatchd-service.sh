#!/usr/bin/env bash
# dispatchd and dispatch-agent as systemd services side by side, under a real
# systemd: a Debian 12 container booted with systemd-nspawn in a network
# namespace, dispatch installed with `cmake --install`, dispatchd serving
# TLS on the container's address with the settings of
# /etc/dispatch/dispatchd.env. The CLI on the host submits a job: dispatchd
# compiles it with the container's gcc in its build sandbox and the agent
# runs it. A probe object, compiled by a `command` recipe, reports the uid
# and the network its build ran with: nobody and no network under the unit
# as shipped (root with hardening); the control with DynamicUser=yes shows
# why the unit is not unprivileged: the same build then runs as dispatchd's
# own user, with the network.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CW=$(mktemp -d "${TMPDIR:-/tmp}/cluster.XXXXXX")
chmod 711 "$CW"
net_init
net_host node 10
addr=$(net_addr node)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-subj /CN=dispatchd -addext "subjectAltName=IP:$addr" \
	-keyout "$CW/key.pem" -out "$CW/cert.pem" 2>/dev/null || cluster_fail "cannot make a certificate"
ct_prepare

# The settings, as an operator writes them (packaging/systemd/*.env).
install -m 600 "$CW/key.pem" "$CT_ROOT/etc/dispatch/key.pem"
cp "$CW/cert.pem" "$CT_ROOT/etc/dispatch/cert.pem"
cat >"$CT_ROOT/etc/dispatch/dispatchd.env" <<EOF
DISPATCHD_LISTEN=$addr:7443
DISPATCHD_OPTS=--tls-cert /etc/dispatch/cert.pem --tls-key /etc/dispatch/key.pem --heartbeat 1
EOF
cat >"$CT_ROOT/etc/dispatch/agent.env" <<EOF
DISPATCH_URL=https://$addr:7443
DISPATCH_JOIN_TOKEN_FILE=/var/lib/dispatchd/join.token
DISPATCH_CA=/etc/dispatch/cert.pem
DISPATCH_AGENT_OPTS=--name node-systemd
EOF
ct_boot node
echo "container booted in $((SECONDS - started)) s"

check "systemd-analyze verify finds nothing to say about either unit" \
	"$(ct_exec systemd-analyze verify dispatchd.service dispatch-agent.service 2>&1 && echo ok)" ok
ct_exec systemctl enable --now dispatchd >/dev/null 2>&1
check "systemctl enable --now dispatchd: active" "$(ct_exec systemctl is-active dispatchd || true)" active
for _ in $(seq 100); do
	[ -s "$CT_ROOT/var/lib/dispatchd/dispatchd.url" ] && break
	sleep 0.1
done
check "it wrote its tokens and URL in the StateDirectory, 0600" \
	"$(ct_exec stat -c '%U %a' /var/lib/dispatchd/operator.token /var/lib/dispatchd/join.token | sort -u)" "root 600"
check "it serves the address of dispatchd.env" "$(cat "$CT_ROOT/var/lib/dispatchd/dispatchd.url")" "https://$addr:7443"
svc_check_hardening dispatchd 00000000002004e3
pid=$(svc_show dispatchd MainPID)

# The CLI on the host, over TLS, with the operator token the service made.
export DISPATCH_URL="https://$addr:7443" DISPATCH_CA=$CW/cert.pem DISPATCH_TOKEN_FILE=$CW/operator.token
install -m 600 "$CT_ROOT/var/lib/dispatchd/operator.token" "$DISPATCH_TOKEN_FILE"
ct_exec systemctl enable --now dispatch-agent >/dev/null 2>&1
cluster_wait_nodes 1 60
check "the agent service joined the dispatchd service" \
	"$(cluster_cli nodes --json | jq_ '[n["name"] for n in d["nodes"] if n["state"] == "up"]')" "['node-systemd']"

# A walk: compiled in the container by dispatchd (with the SDK it installed), run by the agent.
python3 - "$top" "$CW/walk.json" <<'PY'
import json, sys
top, out = sys.argv[1:3]
m = json.load(open(top + "/manifests/examples/walk.json"))
m["objects"][0]["source"]["path"] = top + "/manifests/examples/walk"
m["objects"][0]["instances"] = 2
m["objects"][0]["targets"] = ["x86_64"]
json.dump(m, open(out, "w"))
PY
cluster_cli submit "$CW/walk.json" --wait --json >"$CW/walk.out" || cluster_fail "the walk job failed: $(cat "$CW/walk.out")"
check "a job built by the dispatchd service and run by the agent service is done" \
	"$(jq_ '" ".join(i["state"] for i in d["instances"])' <"$CW/walk.out")" "done done"

# The probe: its build records `id -u` and the network interfaces it sees.
probe() { # name: builds and runs the probe (a fresh source each time), prints its line
	mkdir -p "$CW/$1"
	cat >"$CW/$1/build.sh" <<EOF
# $1
printf '#include <stdio.h>\nint main(void) { puts("uid=%s interfaces=%s"); return 0; }\n' \\
	"\$(id -u)" "\$(awk -F: 'NR > 2 {printf "%s", \$1}' /proc/net/dev | tr -s ' ' | sed 's/^ //')" >probe.c
\$CC probe.c -o probe \$LDFLAGS
EOF
	cat >"$CW/$1.json" <<EOF
{"manifest": 1, "name": "$1", "objects": [{"name": "probe", "source": {"path": "$CW/$1"},
 "build": {"recipe": "command", "argv": ["sh", "build.sh"], "output": "probe"}, "targets": ["x86_64"]}]}
EOF
	cluster_cli submit "$CW/$1.json" --wait --json >"$CW/$1.out" || cluster_fail "the $1 job failed: $(cat "$CW/$1.out")"
	cluster_cli logs "$(jq_ 'd["instances"][0]["id"]' <"$CW/$1.out")" | grep '^uid='
}
check "the build sandbox under the unit: the compiler ran as nobody with no network but a loopback" \
	"$(probe probe)" "uid=65534 interfaces=lo"
check "the build trees in dispatchd's private /tmp were removed" \
	"$(ct_exec nsenter -t "$pid" -m sh -c 'ls -d /tmp/dispatch-build* 2>/dev/null | wc -l')" 0

# The control: as DynamicUser the sandbox's drop and network namespace are
# skipped (common/proc.c drops to nobody only as root, and the unit's
# RestrictNamespaces=net forbids the user namespace it would need otherwise).
# The dynamic user must read the certificate and key (this test only).
chmod 755 "$CT_ROOT/etc/dispatch"
chmod 644 "$CT_ROOT/etc/dispatch/key.pem"
ct_exec sh -c 'mkdir -p /run/systemd/system/dispatchd.service.d &&
	printf "[Service]\nDynamicUser=yes\n" >/run/systemd/system/dispatchd.service.d/user.conf &&
	systemctl daemon-reload && systemctl restart dispatchd'
cluster_wait_nodes 1 60
check "the control runs dispatchd as a dynamic user" \
	"$(svc_show dispatchd DynamicUser) $(svc_show dispatchd ActiveState) $(svc_show dispatchd NRestarts)" "yes active 0"
duid=$(ct_exec stat -c %u "/proc/$(svc_show dispatchd MainPID)")
line=$(probe control)
check "as DynamicUser the compiler runs as dispatchd's own uid $duid, not nobody" "${line%% *}" "uid=$duid"
check "as DynamicUser the compiler has the container's network (eth0)" \
	"$(case ${line#* } in *eth0*) echo network ;; *) echo "$line" ;; esac)" network

svc_finish dispatchd-service
