#!/usr/bin/env bash
# sandbox.sh - what a build may do. A `command` recipe records what it sees
# (its user, the network interfaces of its namespace, whether it can reach a
# server on the host's loopback, whether it can write into the manifest's
# source directory or the cache, its environment) into a C string, compiles
# it for the target with $CC, and the test runs the exported executable and
# checks the facts: when the tests run as root, builds run as "nobody", in a
# private network namespace, and cannot write outside their work directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_setup

m=$WORK/m
mkdir -p "$m/src" "$CACHE"
chmod 755 "$m" "$m/src"

# A server on the host's loopback that counts its connections: the build must
# not reach it; the test itself must (so that "not reached" means something).
cat >"$WORK/listen.py" <<'EOF'
import os, socket, sys, time
port_file, log_file, stop_file = sys.argv[1:4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
s.settimeout(0.2)
with open(port_file + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
deadline = time.time() + 300
while time.time() < deadline and not os.path.exists(stop_file):
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    with open(log_file, "a") as f:
        f.write("connection\n")
    c.close()
EOF
: >"$WORK/connections"
"$PY" "$WORK/listen.py" "$WORK/port" "$WORK/connections" "$WORK/stop" &
E2E_PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || die "the loopback listener did not start"
port=$(cat "$WORK/port")

# What the build script needs to know: where it must not be able to write.
cat >"$m/src/paths.txt" <<EOF
SRC_DIR='$m/src'
MANIFEST_DIR='$m'
CACHE_DIR='$CACHE'
PORT='$port'
EOF
cat >"$m/src/facts.sh" <<'EOF'
#!/bin/sh
# Records what the build sees, then compiles it into the executable.
. ./paths.txt
# can_write DIR: creates a file there (left behind, for the test to see).
can_write() { if (: >"$1/.e2e-escape-$DISPATCH_ISA") 2>/dev/null; then echo yes; else echo no; fi; }
user=$(id -un)
uid=$(id -u)
procnet=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s,", $1 }' /proc/net/dev)
sysnet=$(ls /sys/class/net 2>/dev/null | tr '\n' ,)
loopback=no
if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then loopback=yes; fi
src=$(can_write "$SRC_DIR")
mdir=$(can_write "$MANIFEST_DIR")
cache=$(can_write "$CACHE_DIR")
cas=no
[ -d "$CACHE_DIR/cas/sha256" ] && cas=$(can_write "$CACHE_DIR/cas/sha256")
work=$(can_write "$PWD")
# The directory of this build's work dir ($HOME) and its siblings: the other
# builds' work dirs and the sources dispatch prepared for every object. None
# is this build's to change.
parent=$(can_write "$HOME/..")
srcdirs=""
builddirs=""
for dir in "$HOME"/../*/; do
	[ "$(cd "$dir" && pwd -P)" = "$(cd "$HOME" && pwd -P)" ] && continue
	[ "$(can_write "$dir")" = yes ] || continue
	case $(basename "$dir") in
	build-*) builddirs="$builddirs$(basename "$dir")," ;;
	*) srcdirs="$srcdirs$(basename "$dir")," ;;
	esac
done
leak=${E2E_SECRET_VAR:-unset}
facts="user=$user uid=$uid procnet=$procnet sysnet=$sysnet loopback=$loopback srcwrite=$src manifestwrite=$mdir cachewrite=$cache caswrite=$cas workwrite=$work parentwrite=$parent srcdirwrite=${srcdirs:-none} builddirwrite=${builddirs:-none} leak=$leak isa=$DISPATCH_ISA level=$DISPATCH_LEVEL triple=$DISPATCH_TRIPLE home=$HOME"
printf '#include <stdio.h>\nint main(void) { puts("%s"); return 0; }\n' "$facts" >facts.c
$CC -static -o facts facts.c
EOF
chmod -R a+rX "$m"
cat >"$m/sandbox.json" <<'EOF'
{
  "manifest": 1,
  "name": "sandbox",
  "objects": [
    {"name": "facts", "source": {"path": "src"},
     "build": {"recipe": "command", "argv": ["sh", "facts.sh"], "output": "facts"}}
  ]
}
EOF

# A variable of ours must not leak into the build's environment.
export E2E_SECRET_VAR=leaked
d "$WORK/build" artifacts export "$m/sandbox.json" --out "$WORK/out" --cache "$CACHE" --json \
	--target x86_64 --target aarch64
unset E2E_SECRET_VAR
check_eq "the facts build exits 0" 0 "$RC"
check_json_results "facts" "$WORK/build.out" 2
check_eq "the facts build succeeded for both targets" "ok ok" \
	"$(jpy "$WORK/build.out" "' '.join(r['status'] + ('' if r['status'] == 'ok' else ': ' + r.get('error', '')) for r in d)")"

# Positive control: the listener does accept connections from here.
if timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
	pass_ "control: the test reaches the loopback listener"
else
	fail_ "control: the test reaches the loopback listener"
fi
for _ in $(seq 50); do [ -s "$WORK/connections" ] && break; sleep 0.1; done
: >"$WORK/stop"

fact() { # fact FACTS NAME
	tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}
root=0
[ "$(id -u)" -eq 0 ] && root=1
for t in x86_64:baseline aarch64:armv8-a; do
	exe=$WORK/out/$t/facts
	if ! run_exe "$WORK/facts-$t.txt" "$exe"; then
		fail_ "$t: the facts executable runs" "$(head -c 2000 "$WORK/facts-$t.txt")"
		continue
	fi
	facts=$(head -n1 "$WORK/facts-$t.txt")
	log "$t: $facts"
	check_eq "$t: DISPATCH_ISA/LEVEL/TRIPLE describe the target" \
		"${t%%:*} ${t#*:} $(jpy "$DISPATCH_SOURCE_DIR/toolchains/${t%%:*}.json" "d['triple']")" \
		"$(fact "$facts" isa) $(fact "$facts" level) $(fact "$facts" triple)"
	check_eq "$t: the build's environment is its own (no variable of ours leaked)" "unset" "$(fact "$facts" leak)"
	check_eq "$t: the build could write in its work dir" "yes" "$(fact "$facts" workwrite)"
	if [ "$root" -eq 0 ]; then
		skip "$t: not root: builds run as $(id -un), not sandboxed as nobody; user, network and write checks skipped"
		continue
	fi
	check_eq "$t: the build ran as nobody, not root" "nobody" "$(fact "$facts" user)"
	check_ne "$t: the build's uid is not 0" "0" "$(fact "$facts" uid)"
	# /proc/net/dev is the reader's namespace; /sys/class/net is sysfs's, shown for information.
	check_eq "$t: the only network interface the build saw was lo" "lo," "$(fact "$facts" procnet)"
	check_eq "$t: the build could not reach the host's loopback" "no" "$(fact "$facts" loopback)"
	check_eq "$t: the build could not write into the manifest's source dir" "no" "$(fact "$facts" srcwrite)"
	check_eq "$t: the build could not write into the manifest's dir" "no" "$(fact "$facts" manifestwrite)"
	check_eq "$t: the build could not write into the cache dir" "no" "$(fact "$facts" cachewrite)"
	check_eq "$t: the build could not write into the artifact store" "no" "$(fact "$facts" caswrite)"
	check_eq "$t: the build could not write beside its work dir" "no" "$(fact "$facts" parentwrite)"
	# Else one build can change the sources another build (another target,
	# another object) compiles, and its artifact is cached under a key that
	# names sources it was not built from.
	check_eq "$t: the build could not write into the sources dispatch prepared" "none" \
		"$(fact "$facts" srcdirwrite)"
	check_eq "$t: the build could not write into other builds' work dirs" "none" \
		"$(fact "$facts" builddirwrite)"
done
check_eq "the loopback listener saw exactly the test's own connection" 1 "$(grep -c connection "$WORK/connections" || true)"
if [ "$root" -eq 1 ]; then
	check_eq "no file escaped into the source, manifest or cache dirs" "" \
		"$(find "$m" "$CACHE" -name '.e2e-escape-*')"
fi

# Without root (dispatchd or dispatch run by a service user) builds cannot drop
# to nobody, but they still get a network of their own: a user namespace makes
# the network namespace possible.
if [ "$root" -eq 1 ]; then
	U=$WORK/unprivileged
	mkdir -p "$U"
	chmod 777 "$U"
	RC=0
	timeout -k 10 400 setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$U" TMPDIR="$U" \
		"$DISPATCH" artifacts export "$m/sandbox.json" --out "$U/out" --cache "$U/cache" --json \
		--target x86_64 >"$U/build.out" 2>"$U/build.err" || RC=$?
	check_eq "unprivileged: the facts build exits 0" 0 "$RC"
	[ "$RC" -eq 0 ] || log "unprivileged: $(head -c 2000 "$U/build.err")"
	if run_exe "$U/facts.txt" "$U/out/x86_64:baseline/facts"; then
		facts=$(head -n1 "$U/facts.txt")
		log "unprivileged: $facts"
		check_eq "unprivileged: the build ran as the caller (nobody)" "nobody" "$(fact "$facts" user)"
		check_eq "unprivileged: the only network interface the build saw was lo" "lo," "$(fact "$facts" procnet)"
		check_eq "unprivileged: the build could not reach the host's loopback" "no" "$(fact "$facts" loopback)"
	else
		fail_ "unprivileged: the facts executable runs" "$(head -c 2000 "$U/build.err")"
	fi
fi

# One build must not change what another compiles. With --jobs 1 the x86_64
# build of "poison" runs first and tries to rewrite the source its object's
# later builds start from; the aarch64 build must still see the original.
mkdir -p "$m/poison"
echo clean >"$m/poison/marker.txt"
cat >"$m/poison/build.sh" <<'EOF'
#!/bin/sh
marker=$(cat marker.txt)
for f in "$HOME"/../poison-*/marker.txt; do
	(echo "poisoned-by-$DISPATCH_ISA" >"$f") 2>/dev/null || true
done
printf '#include <stdio.h>\nint main(void) { puts("marker=%s"); return 0; }\n' "$marker" >p.c
$CC -static -o poison p.c
EOF
chmod -R a+rX "$m/poison"
cat >"$m/poison.json" <<'EOF'
{
  "manifest": 1,
  "name": "poison",
  "objects": [
    {"name": "poison", "source": {"path": "poison"},
     "build": {"recipe": "command", "argv": ["sh", "build.sh"], "output": "poison"}}
  ]
}
EOF
d "$WORK/poison" artifacts export "$m/poison.json" --out "$WORK/out-poison" --cache "$CACHE" --json \
	--jobs 1 --target x86_64 --target aarch64
check_eq "poison: the build exits 0" 0 "$RC"
check_json_results "poison" "$WORK/poison.out" 2
if [ "$root" -eq 1 ]; then
	for t in x86_64:baseline aarch64:armv8-a; do
		if run_exe "$WORK/poison-$t.txt" "$WORK/out-poison/$t/poison"; then
			check_eq "poison: $t was built from the manifest's source, unchanged by another build" \
				"marker=clean" "$(head -n1 "$WORK/poison-$t.txt")"
		else
			fail_ "poison: $t runs" "$(head -c 2000 "$WORK/poison-$t.txt")"
		fi
	done
else
	skip "poison: not root: builds are not sandboxed from each other"
fi

e2e_finish
