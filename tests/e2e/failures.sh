#!/usr/bin/env bash
# failures.sh - how builds fail: a compile error fails its object only and
# reports the compiler's message; a hung build times out; a build for the
# wrong ISA, a non-ELF output, a missing output and a missing source file
# each fail with a clear message; bad usage exits 2; a malformed manifest
# exits 1 naming the JSON path of the problem.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_setup

cd "$WORK"
mkdir -p src
cat >src/good.c <<'EOF'
#include <stdio.h>
int main(void) { puts("good object"); return 0; }
EOF
cat >src/bad.c <<'EOF'
int main(void) { return 0 }
EOF
cat >src/prog.c <<'EOF'
#include <stdio.h>
int main(void) { puts("prog"); return 0; }
EOF
chmod -R a+rX src

# result FILE OBJECT TARGET FIELD
r() { field "$WORK/$1.out" "$2" "$3" "$4"; }

# 1. One good object, one with a syntax error.
cat >mixed.json <<'EOF'
{
  "manifest": 1,
  "name": "mixed",
  "objects": [
    {"name": "good", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["good.c"]}},
    {"name": "bad", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["bad.c"]}}
  ]
}
EOF
d mixed build mixed.json --json --cache "$CACHE" --target x86_64
check_eq "compile error: exit status 1" 1 "$RC"
check_json_results "compile error" mixed.out 2
check_eq "compile error: the good object is built" "ok" "$(r mixed good x86_64 status)"
check "compile error: the good object's artifact is in the store" test -f "$(r mixed good x86_64 path)"
check_eq "compile error: the bad object failed" "failed" "$(r mixed bad x86_64 status)"
err=$(r mixed bad x86_64 error)
check_contains "compile error: the error has the compiler's message" "$err" "error:"
check_contains "compile error: the error names the file and line" "$err" "bad.c:1:"
check_contains "compile error: the error says which step failed" "$err" "compile failed"
check_eq "compile error: a failed result has no digest and no path" "None None" \
	"$(jpy mixed.out "'%s %s' % next((x['digest'], x['path']) for x in d if x['object'] == 'bad')")"
check "compile error: the whole log is kept in the cache's logs/" \
	grep -q "error:" "$CACHE/logs/bad-$(r mixed bad x86_64 key).log"

d mixed-plain build mixed.json --cache "$CACHE" --target x86_64
check_eq "compile error, plain output: exit status 1" 1 "$RC"
check "compile error, plain output: the failing object is named FAILED on stdout" \
	grep -Eq '^bad +x86_64:baseline +FAILED' mixed-plain.out
check "compile error, plain output: the good one is listed as cached" \
	grep -Eq '^good +x86_64:baseline +cached' mixed-plain.out
check "compile error, plain output: the summary counts the failure" \
	grep -q '^2 artifacts: 0 built, 1 cached, 1 failed' mixed-plain.out
check "compile error, plain output: stderr says which object failed, and why" \
	grep -q -- '--- bad for x86_64:baseline failed:' mixed-plain.err
check_contains "compile error, plain output: stderr has the compiler's message" "$(cat mixed-plain.err)" "error:"
d mixed-again build mixed.json --json --cache "$CACHE" --target x86_64
check_eq "a failure is not cached: the next build tries again" "failed False" \
	"$(r mixed-again bad x86_64 status) $(jpy mixed-again.out "next(x['cached'] for x in d if x['object'] == 'bad') and 'True' or 'False'")"

# 2. A build that hangs is killed at --timeout.
cat >hang.json <<'EOF'
{
  "manifest": 1,
  "name": "hang",
  "objects": [
    {"name": "hang", "source": {"path": "src"},
     "build": {"recipe": "command", "argv": ["sh", "-c", "sleep 37.25 & sleep 37.25; wait"], "output": "hang"}}
  ]
}
EOF
d hang build hang.json --json --cache "$CACHE" --target x86_64 --timeout 2
check_eq "timeout: exit status 1" 1 "$RC"
check_lt "timeout: a 2 s limit stops a 37 s build quickly" "$SECS" 10
check_json_results "timeout" hang.out 1
check_eq "timeout: the object failed" "failed" "$(r hang hang x86_64 status)"
check_contains "timeout: the error says it timed out" "$(r hang hang x86_64 error)" "timed out"
sleep 0.5
left=$(pgrep -f 'sleep 37.25' || true)
check_eq "timeout: no process of the build is left running" "" "$left"
for pid in $left; do kill "$pid" 2>/dev/null || true; done

# 3. Built, but not for the target: plain gcc for aarch64 (and armhf: 32-bit).
cat >wrongisa.json <<'EOF'
{
  "manifest": 1,
  "name": "wrongisa",
  "objects": [
    {"name": "wrong", "source": {"path": "src"},
     "build": {"recipe": "command", "argv": ["gcc", "-static", "-o", "prog", "prog.c"], "output": "prog"},
     "targets": ["aarch64", "armhf"]},
    {"name": "script", "source": {"path": "src"},
     "build": {"recipe": "command", "argv": ["sh", "-c", "printf '#!/bin/sh\\necho hi\\n' >prog; chmod +x prog"], "output": "prog"}},
    {"name": "nothing", "source": {"path": "src"},
     "build": {"recipe": "command", "argv": ["true"], "output": "prog"}},
    {"name": "right", "source": {"path": "src"},
     "build": {"recipe": "command", "argv": ["sh", "-c", "$CC -static -o prog prog.c"], "output": "prog"}}
  ]
}
EOF
d wrongisa build wrongisa.json --json --cache "$CACHE" --target aarch64 --target armhf
check_eq "wrong ISA: exit status 1" 1 "$RC"
check_json_results "wrong ISA" wrongisa.out 8
check_eq "wrong ISA: the x86_64 binary for aarch64 failed" "failed" "$(r wrongisa wrong aarch64 status)"
check_contains "wrong ISA: the error is about the ELF machine" "$(r wrongisa wrong aarch64 error)" "ELF machine 62, expected 183"
check_contains "wrong ISA: the x86_64 binary for armhf fails on its word size" \
	"$(r wrongisa wrong armhf error)" "64-bit little-endian ELF file, expected 32-bit"
check_contains "not ELF: a script as output fails" "$(r wrongisa script aarch64 error)" "not an ELF executable"
check_contains "no output: a build that makes nothing fails" "$(r wrongisa nothing aarch64 error)" "did not produce 'prog'"
check_eq "the same command with \$CC builds for both targets" "ok ok" \
	"$(r wrongisa right aarch64 status) $(r wrongisa right armhf status)"

# 4. Missing sources.
cat >missing.json <<'EOF'
{
  "manifest": 1,
  "name": "missing",
  "objects": [
    {"name": "nofile", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["missing.c"]}},
    {"name": "nodir", "source": {"path": "no-such-dir"}, "build": {"recipe": "c", "sources": ["good.c"]}},
    {"name": "good", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["good.c"]}}
  ]
}
EOF
d missing build missing.json --json --cache "$CACHE" --target x86_64
check_eq "missing source: exit status 1" 1 "$RC"
check_json_results "missing source" missing.out 3
check_eq "missing source: the others still build" "ok" "$(r missing good x86_64 status)"
err=$(r missing nofile x86_64 error)
check_contains "missing source file: the error names the file" "$err" "missing.c"
check_contains "missing source file: the error says it is not found" "$err" "not found"
check_not_contains "missing source file: the error is not about dispatch's own build log" "$err" "build.log"
err=$(r missing nodir x86_64 error)
check_contains "missing source dir: the error names the directory" "$err" "$WORK/no-such-dir"

# 5. Bad usage: exit 2 and a usage text or an error.
usage() { # usage DESC ARGS...
	local desc=$1
	shift
	d usage "$@"
	check_eq "usage: $desc exits 2" 2 "$RC"
	if [ "$(wc -c <usage.err)" -gt 0 ]; then
		pass_ "usage: $desc explains itself on stderr"
	else
		fail_ "usage: $desc explains itself on stderr"
	fi
}
usage "an unknown option" build --bogus mixed.json --cache "$CACHE"
usage "build without a manifest" build --cache "$CACHE"
usage "build with two manifests" build mixed.json hang.json --cache "$CACHE"
usage "--jobs 0" build mixed.json --jobs 0 --cache "$CACHE"
usage "--timeout abc" build mixed.json --timeout abc --cache "$CACHE"
usage "export without --out" artifacts export mixed.json --cache "$CACHE"
usage "an unknown artifacts command" artifacts frobnicate mixed.json --out out --cache "$CACHE"
usage "an unknown command" frobnicate
usage "no command at all"
check_contains "usage: the unknown option is named" "$(d usage build --bogus mixed.json; cat usage.err)" "bogus"

# 6. Errors that stop everything: exit 1 with a message (and no crash).
fatal() { # fatal DESC EXPECTED-IN-STDERR ARGS...
	local desc=$1 want=$2
	shift 2
	d fatal "$@"
	check_eq "$desc: exit status 1" 1 "$RC"
	check_contains "$desc: the message says why" "$(cat fatal.err)" "$want"
}
fatal "unknown target" "unknown target 'sparc'" build mixed.json --target sparc --cache "$CACHE"
fatal "unknown level" "unknown level 'v9'" build mixed.json --target x86_64:v9 --cache "$CACHE"
fatal "no manifest file" "no-such.json" build no-such.json --cache "$CACHE"
fatal "export, unknown target" "unknown target 'sparc'" artifacts export mixed.json --out out --target sparc --cache "$CACHE"

manifest_error() { # manifest_error NAME JSON-PATH-IN-MESSAGE TEXT
	printf '%s\n' "$3" >"$1.json"
	fatal "malformed manifest ($1)" "$2" build "$1.json" --cache "$CACHE"
	check_contains "malformed manifest ($1): the message names the file" "$(cat fatal.err)" "$1.json"
}
manifest_error wrongtype "objects[0].build.sources" \
	'{"manifest": 1, "name": "x", "objects": [{"name": "a", "source": {"path": "src"}, "build": {"recipe": "c", "sources": "good.c"}}]}'
manifest_error unknownkey "objects[1].build.colour" \
	'{"manifest": 1, "name": "x", "objects": [{"name": "a", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["good.c"]}}, {"name": "b", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["good.c"], "colour": "red"}}]}'
manifest_error escape "objects[0].build.sources[0]" \
	'{"manifest": 1, "name": "x", "objects": [{"name": "a", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["../../etc/passwd"]}}]}'
manifest_error dupname "objects[1].name" \
	'{"manifest": 1, "name": "x", "objects": [{"name": "a", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["good.c"]}}, {"name": "a", "source": {"path": "src"}, "build": {"recipe": "c", "sources": ["good.c"]}}]}'
printf '{"manifest": 1, "name": "x",\n "objects": [\n  {"name": "a",}\n]}\n' >syntax.json
fatal "invalid JSON" "line 3" build syntax.json --cache "$CACHE"
printf '{"manifest": 1, "name": "x", "objects": [{"name": "a", "source": {"path": "src"}, "build": {"recipe": "c", "sources": "good.c"}}]}\n' >wrongtype.json
fatal "malformed manifest, export" "objects[0].build.sources" artifacts export wrongtype.json --out out --cache "$CACHE"
fatal "malformed manifest, --json" "objects[0].build.sources" build wrongtype.json --json --cache "$CACHE"

e2e_finish
