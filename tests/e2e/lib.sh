# shellcheck shell=bash
# lib.sh - shared helpers of dispatch's end-to-end tests. Source it first:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_setup                       # $WORK (temp dir, removed on exit), $CACHE
#   check "what" COMMAND ARGS...    # PASS when the command exits 0
#   check_eq / check_contains / check_lt ...
#   e2e_finish                      # "NAME: N passed, N failed", exit 1 if any failed
#
# Environment (set by CMake; defaults for running a script by hand):
#   DISPATCH             the dispatch executable
#   DISPATCH_SOURCE_DIR  the source tree (manifests/, toolchains/, scripts/)
#   TMPDIR               where the temp dirs go
set -euo pipefail

E2E_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${DISPATCH_SOURCE_DIR:=$(cd "$E2E_LIB_DIR/../.." && pwd)}"
: "${DISPATCH:=$DISPATCH_SOURCE_DIR/build/cli/dispatch}"
E2E_PASSED=0
E2E_FAILED=0
E2E_PIDS=()

# python3 parses JSON (jq is not necessarily installed). The system one starts
# fastest; any python3 on PATH will do.
if [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3
elif command -v python3 >/dev/null; then
	PY=$(command -v python3)
else
	echo "FAIL: $E2E_NAME: python3 is required to parse dispatch's JSON" >&2
	exit 1
fi

log() { printf '%s: %s\n' "$E2E_NAME" "$*"; }

# Stops the whole test: a precondition failed, nothing more to check.
die() {
	printf 'FAIL: %s: %s\n' "$E2E_NAME" "$*" >&2
	E2E_FAILED=$((E2E_FAILED + 1))
	exit 1
}

skip() {
	printf 'SKIP: %s: %s\n' "$E2E_NAME" "$*"
}

pass_() {
	printf 'PASS: %s\n' "$1"
	E2E_PASSED=$((E2E_PASSED + 1))
}

fail_() {
	printf 'FAIL: %s\n' "$1"
	shift
	if [ $# -gt 0 ]; then printf '%s\n' "$@" | sed 's/^/      /'; fi
	E2E_FAILED=$((E2E_FAILED + 1))
}

# check DESC CMD ARGS...: PASS when the command exits 0; its output is shown on failure.
check() {
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		pass_ "$desc"
	else
		fail_ "$desc" "command: $* (exit $rc)" "${out:0:3000}"
	fi
}

check_eq() {
	if [ "$2" = "$3" ]; then pass_ "$1"; else fail_ "$1" "expected: $2" "actual:   $3"; fi
}

check_ne() {
	if [ "$2" != "$3" ]; then pass_ "$1"; else fail_ "$1" "expected anything but: $2"; fi
}

# check_contains DESC HAYSTACK NEEDLE (fixed string)
check_contains() {
	if [[ "$2" == *"$3"* ]]; then pass_ "$1"; else fail_ "$1" "expected to contain: $3" "actual: ${2:0:3000}"; fi
}

check_not_contains() {
	if [[ "$2" != *"$3"* ]]; then pass_ "$1"; else fail_ "$1" "expected not to contain: $3" "actual: ${2:0:3000}"; fi
}

# check_lt DESC VALUE LIMIT: floating-point VALUE < LIMIT
check_lt() {
	if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 < b + 0) }'; then
		pass_ "$1 ($2 < $3)"
	else
		fail_ "$1" "expected $2 < $3"
	fi
}

# Creates $WORK (removed on exit) and $CACHE. $WORK is 0755: compilers run
# as "nobody" when the tests run as root, and must reach wrappers and
# sources the tests put there.
e2e_setup() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/e2e-$E2E_NAME.XXXXXX")
	chmod 755 "$WORK"
	# shellcheck disable=SC2034 # for the tests
	CACHE=$WORK/cache
	trap e2e_cleanup EXIT
	[ -x "$DISPATCH" ] || die "DISPATCH='$DISPATCH' is not an executable (build first)"
	log "dispatch: $DISPATCH; work dir: $WORK"
}

e2e_cleanup() {
	local rc=$? pid
	for pid in "${E2E_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
		if [ -n "${E2E_KEEP:-}" ]; then
			log "kept $WORK"
		else
			chmod -R u+w "$WORK" 2>/dev/null || true
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

e2e_finish() {
	printf '%s: %d passed, %d failed\n' "$E2E_NAME" "$E2E_PASSED" "$E2E_FAILED"
	[ "$E2E_FAILED" -eq 0 ] || exit 1
	exit 0
}

# now: wall clock seconds, fractional.
now() { printf '%s\n' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# d PREFIX ARGS...: runs dispatch (bounded in time) with stdout to PREFIX.out,
# stderr to PREFIX.err; sets RC (its exit status) and SECS (wall time).
d() {
	local prefix=$1 t0
	shift
	t0=$(now)
	RC=0
	timeout -k 10 "${E2E_DISPATCH_TIMEOUT:-400}" "$DISPATCH" "$@" >"$prefix.out" 2>"$prefix.err" || RC=$?
	# shellcheck disable=SC2034 # for the tests
	SECS=$(elapsed "$t0")
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail_ "dispatch $* did not finish in time"
	fi
}

# jpy FILE EXPR: evaluates the Python expression EXPR with d = the JSON
# document in FILE (and re, json); prints the result: a list one item a line,
# a bool as true/false, None as nothing.
jpy() {
	"$PY" - "$@" <<'EOF'
import json, re, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
def show(v):
    if v is None:
        return
    if isinstance(v, bool):
        print("true" if v else "false")
    elif isinstance(v, (list, tuple)):
        for x in v:
            show(x)
    elif isinstance(v, (dict,)):
        print(json.dumps(v, sort_keys=True))
    else:
        print(v)
show(eval(sys.argv[2], {"d": d, "re": re, "json": json}))
EOF
}

# check_json_results DESC FILE COUNT: FILE is a JSON array of COUNT build
# results, each with the documented fields. Stops the test otherwise: every
# later assertion reads them.
check_json_results() {
	local desc=$1 file=$2 count=$3 got
	if ! got=$("$PY" - "$file" <<'EOF' 2>&1
import json, sys
try:
    with open(sys.argv[1]) as f:
        d = json.load(f)
except Exception as e:
    with open(sys.argv[1], errors="replace") as f:
        text = f.read()
    sys.exit("not JSON (%s): %r" % (e, text[:300]))
if not isinstance(d, list):
    sys.exit("not a JSON array")
keys = {"object", "target", "isa", "level", "status", "cached", "seconds", "size", "digest", "path", "key"}
for i, r in enumerate(d):
    missing = keys - set(r)
    if missing:
        sys.exit("element %d lacks %s: %s" % (i, sorted(missing), json.dumps(r)))
    if r["status"] not in ("ok", "failed"):
        sys.exit("element %d has status %r" % (i, r["status"]))
    if r["target"] != "%s:%s" % (r["isa"], r["level"]):
        sys.exit("element %d: target %r is not isa:level" % (i, r["target"]))
print(len(d))
EOF
	); then
		die "$desc: dispatch's JSON output is unusable: $got (stderr: $(head -c 1500 "${file%.out}.err" 2>/dev/null))"
	fi
	if [ "$got" != "$count" ]; then
		die "$desc: dispatch's JSON output has $got results, expected $count: $(head -c 1500 "$file") (stderr: $(head -c 1500 "${file%.out}.err" 2>/dev/null))"
	fi
	pass_ "$desc: JSON array of $count results with every documented field"
}

# field FILE OBJECT TARGET NAME: one field of the result of (OBJECT, TARGET);
# TARGET is "isa" (any level: the first) or "isa:level".
field() {
	jpy "$1" "next((r.get('$4') for r in d if r['object'] == '$2' and (r['target'] == '$3' or r['isa'] == '$3')), '<no such result>')"
}

# summary FILE: "object target status cached" lines, sorted, for comparisons.
summary() {
	jpy "$1" "sorted('%s %s %s %s' % (r['object'], r['target'], r['status'], 'cached' if r['cached'] else 'built') for r in d)"
}

# cpu_flags: the flags of the first CPU in /proc/cpuinfo, one a line.
cpu_flags() {
	awk -F: '/^flags/ { print $2; exit }' /proc/cpuinfo | tr ' ' '\n' | sed '/^$/d'
}

has_cpu_flags() {
	local f flags
	flags=$(cpu_flags)
	for f in "$@"; do
		grep -qx -- "$f" <<<"$flags" || return 1
	done
}

# x86_64 micro-architecture levels this CPU runs. glibc's loader knows best
# (it asks CPUID: some hypervisors leave flags such as "abm" out of
# /proc/cpuinfo although the CPU has them); else /proc/cpuinfo's flags
# against the psABI's definitions.
x86_levels_supported() {
	local ldso=/lib64/ld-linux-x86-64.so.2 help
	echo baseline
	if [ -x "$ldso" ] && help=$("$ldso" --help 2>/dev/null) && grep -q 'x86-64-v2 (' <<<"$help"; then
		grep -o 'x86-64-v[234] (supported' <<<"$help" | sed 's/x86-64-\(v[234]\).*/\1/' | sort
		return 0
	fi
	has_cpu_flags cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3 || return 0
	echo v2
	has_cpu_flags avx avx2 bmi1 bmi2 f16c fma abm movbe xsave || return 0
	echo v3
	has_cpu_flags avx512f avx512bw avx512cd avx512dq avx512vl || return 0
	echo v4
}

# run_exe OUTFILE EXE ARGS...: runs an exported executable (a foreign one
# through qemu-user via binfmt_misc), bounded in time. Returns its status.
run_exe() {
	local out=$1
	shift
	timeout -k 5 "${E2E_EXE_TIMEOUT:-120}" "$@" >"$out" 2>&1
}
