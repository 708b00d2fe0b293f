#!/usr/bin/env bash
# cache.sh - the artifact cache: a warm build compiles nothing (counted by
# compiler wrappers), and exactly what a change touches is rebuilt: a source
# file, a manifest flag, the compiler, a toolchain description. A corrupt or
# deleted artifact is detected and rebuilt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_setup

# A private copy of the example manifest and its sources, free to edit.
src=$DISPATCH_SOURCE_DIR/manifests/examples
m=$WORK/m
mkdir -p "$m"
cp "$src/examples.json" "$m/"
for o in montecarlo mandelbrot primes; do cp -r "$src/$o" "$m/"; done
manifest=$m/examples.json
chmod -R a+rX "$m"

# A private toolchains dir whose compilers are wrappers that count their runs.
tc=$WORK/toolchains
cp -r "$DISPATCH_SOURCE_DIR/toolchains" "$tc"
mkdir -p "$WORK/bin" "$WORK/count"
chmod 777 "$WORK/count" # the compilers run as "nobody" when we are root
for isa in x86_64 aarch64; do
	real=$(jpy "$tc/$isa.json" "d['cc']")
	real=$(command -v "$real") || die "the $isa compiler is not installed"
	cat >"$WORK/bin/cc-$isa" <<EOF
#!/bin/sh
# e2e compiler wrapper: one line per run, then the real compiler.
printf '%s\n' "\$*" >>"$WORK/count/$isa"
exec "$real" "\$@"
EOF
	chmod 755 "$WORK/bin/cc-$isa"
	: >"$WORK/count/$isa"
	chmod 666 "$WORK/count/$isa"
	"$PY" - "$tc/$isa.json" "$WORK/bin/cc-$isa" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["cc"] = sys.argv[2]
json.dump(d, open(sys.argv[1], "w"), indent=2)
EOF
done

targets=(--target x86_64 --target aarch64)
objects=(montecarlo mandelbrot primes)
declare -A small_args=([montecarlo]="1000" [mandelbrot]="20 10 50" [primes]="0 1000")
n=6

runs() { wc -l <"$WORK/count/$1" | tr -d ' '; }
# Compiler runs that compiled something (not -dumpversion and the like).
compiles() { grep -c -- ' -o ' "$WORK/count/$1" || true; }

# build NAME: one build of the manifest, JSON in $WORK/NAME.out.
build() {
	d "$WORK/$1" build "$manifest" --json --cache "$CACHE" --toolchains "$tc" "${targets[@]}"
	log "$1: build took $SECS s"
	check_eq "$1: build exits 0" 0 "$RC"
	check_json_results "$1" "$WORK/$1.out" "$n"
	check_eq "$1: every result is status ok" "" \
		"$(jpy "$WORK/$1.out" "[r['target'] + ' ' + r['object'] + ': ' + str(r.get('error')) for r in d if r['status'] != 'ok']")"
}

# expect_rebuilt NAME "object@isa ...": exactly those were compiled, the rest cached.
expect_rebuilt() {
	local name=$1 want=$2 o isa exp=""
	for o in "${objects[@]}"; do
		for isa in x86_64 aarch64; do
			if [[ " $want " == *" $o@$isa "* ]]; then
				exp+="$o $isa built"$'\n'
			else
				exp+="$o $isa cached"$'\n'
			fi
		done
	done
	check_eq "$name: rebuilt exactly: ${want:-nothing}" "$(sort <<<"${exp%$'\n'}")" \
		"$(jpy "$WORK/$name.out" "sorted('%s %s %s' % (r['object'], r['isa'], 'cached' if r['cached'] else 'built') for r in d)")"
}

# compiled_delta NAME ISA BEFORE EXPECTED: the wrapper of ISA compiled EXPECTED times.
compiled_delta() {
	check_eq "$1: the $2 compiler compiled $4 time(s)" "$4" $(($(compiles "$2") - $3))
}

key_of() { field "$WORK/$1.out" "$2" "$3" key; }

# (a) cold, then warm: nothing compiled, no compiler even run.
build cold
expect_rebuilt cold "montecarlo@x86_64 montecarlo@aarch64 mandelbrot@x86_64 mandelbrot@aarch64 primes@x86_64 primes@aarch64"
check_eq "cold: the x86_64 wrapper compiled 3 objects" 3 "$(compiles x86_64)"
check_eq "cold: the aarch64 wrapper compiled 3 objects" 3 "$(compiles aarch64)"
check_eq "cold: the toolchain flags ride with the compiler (-march=x86-64)" 3 \
	"$(grep -c -- '-march=x86-64 ' "$WORK/count/x86_64" || true)"
check_eq "cold: the manifest's cflags reach the compiler" 3 \
	"$(grep -c -- '-ffp-contract=off' "$WORK/count/aarch64" || true)"

x0=$(runs x86_64) a0=$(runs aarch64)
build warm
log "warm build: $SECS s"
expect_rebuilt warm ""
check_eq "warm: no x86_64 compiler run at all (not even a probe)" "$x0" "$(runs x86_64)"
check_eq "warm: no aarch64 compiler run at all (not even a probe)" "$a0" "$(runs aarch64)"
check_lt "warm: the build takes no time" "$SECS" 5
check_eq "warm: same digests as the cold build" \
	"$(jpy "$WORK/cold.out" "sorted(r['object'] + r['target'] + r['digest'] + r['key'] for r in d)")" \
	"$(jpy "$WORK/warm.out" "sorted(r['object'] + r['target'] + r['digest'] + r['key'] for r in d)")"
# A warm build makes no build directory (a file system operation on the way to every start): it
# works with a TMPDIR that does not exist.
TMPDIR=$WORK/no-such-dir d "$WORK/warm-notmp" build "$manifest" --cache "$CACHE" --toolchains "$tc" "${targets[@]}"
check_eq "warm: no build directory is made (TMPDIR missing)" 0 "$RC"
d "$WORK/warm-plain" build "$manifest" --cache "$CACHE" --toolchains "$tc" "${targets[@]}"
check_eq "warm: the plain build exits 0" 0 "$RC"
check_contains "warm: the plain summary says 0 built, 6 cached" "$(cat "$WORK/warm-plain.out")" "6 artifacts: 0 built, 6 cached, 0 failed"
check_eq "warm: the progress counts 1..6 of 6 (cache hits are counted against the whole matrix)" \
	"$(printf '[%d/6] cached\n' 1 2 3 4 5 6)" "$(grep -o '^\[[0-9]*/[0-9]*\] [a-z]*' "$WORK/warm-plain.err")"

# (b) One source file changes: that object only.
x0=$(compiles x86_64) a0=$(compiles aarch64)
printf '\n/* e2e: a change */\n' >>"$m/primes/primes.c"
build source
expect_rebuilt source "primes@x86_64 primes@aarch64"
compiled_delta source x86_64 "$x0" 1
compiled_delta source aarch64 "$a0" 1
check_ne "source: primes has a new key" "$(key_of warm primes x86_64)" "$(key_of source primes x86_64)"
check_eq "source: montecarlo keeps its key" "$(key_of warm montecarlo x86_64)" "$(key_of source montecarlo x86_64)"

# A new file in the source tree changes the tree too.
echo "notes" >"$m/montecarlo/NOTES.txt"
x0=$(compiles x86_64) a0=$(compiles aarch64)
build newfile
expect_rebuilt newfile "montecarlo@x86_64 montecarlo@aarch64"
compiled_delta newfile x86_64 "$x0" 1

# (c) A flag in the manifest: that object only.
set_manifest() { # set_manifest OBJECT PYTHON-STATEMENT (o = the object)
	"$PY" - "$manifest" "$1" "$2" <<'EOF'
import json, sys
path, name, stmt = sys.argv[1:]
d = json.load(open(path))
o = next(x for x in d["objects"] if x["name"] == name)
exec(stmt)
json.dump(d, open(path, "w"), indent=2)
EOF
}
set_manifest mandelbrot 'o["build"]["cflags"].append("-DE2E_FLAG=1")'
x0=$(compiles x86_64) a0=$(compiles aarch64)
build cflags
expect_rebuilt cflags "mandelbrot@x86_64 mandelbrot@aarch64"
compiled_delta cflags x86_64 "$x0" 1
compiled_delta cflags aarch64 "$a0" 1
check_eq "cflags: the new flag reached the compiler" 1 "$(grep -c -- '-DE2E_FLAG=1' "$WORK/count/x86_64" || true)"

# What does not determine the build (args, instances) rebuilds nothing.
set_manifest mandelbrot 'o["args"] = ["10", "10", "10"]; o["instances"] = 3'
x0=$(runs x86_64) a0=$(runs aarch64)
build args
expect_rebuilt args ""
check_eq "args: no compiler ran" "$x0 $a0" "$(runs x86_64) $(runs aarch64)"

# (d) The compiler changes (the wrapper's content): what it built, and only that.
echo "# e2e: the compiler changed" >>"$WORK/bin/cc-x86_64"
x0=$(compiles x86_64) a0=$(runs aarch64)
build compiler
expect_rebuilt compiler "montecarlo@x86_64 mandelbrot@x86_64 primes@x86_64"
compiled_delta compiler x86_64 "$x0" 3
check_eq "compiler: the aarch64 compiler did not run" "$a0" "$(runs aarch64)"

# A level's cflags in the toolchain description: that ISA is rebuilt, with them.
"$PY" - "$tc/aarch64.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["levels"][0]["cflags"].append("-fno-plt")
json.dump(d, open(sys.argv[1], "w"), indent=2)
EOF
x0=$(runs x86_64) a0=$(compiles aarch64)
build toolchain
expect_rebuilt toolchain "montecarlo@aarch64 mandelbrot@aarch64 primes@aarch64"
compiled_delta toolchain aarch64 "$a0" 3
check_eq "toolchain: the level's new flag reached the compiler" 3 "$(grep -c -- '-fno-plt' "$WORK/count/aarch64" || true)"
check_eq "toolchain: the x86_64 compiler did not run" "$x0" "$(runs x86_64)"

# (e) A corrupt artifact: detected, rebuilt, exported fine.
path=$(field "$WORK/toolchain.out" montecarlo x86_64 path)
digest=$(field "$WORK/toolchain.out" montecarlo x86_64 digest)
[ -f "$path" ] || die "corrupt: the reported artifact path '$path' is not a file"
chmod u+w "$path"
printf 'CORRUPT!' | dd of="$path" bs=1 seek=200 conv=notrunc status=none
x0=$(compiles x86_64) a0=$(runs aarch64)
build corrupt
expect_rebuilt corrupt "montecarlo@x86_64"
compiled_delta corrupt x86_64 "$x0" 1
check_eq "corrupt: the aarch64 compiler did not run" "$a0" "$(runs aarch64)"
check_contains "corrupt: the note says the entry was corrupt" \
	"$(field "$WORK/corrupt.out" montecarlo x86_64 note)" "corrupt"
newpath=$(field "$WORK/corrupt.out" montecarlo x86_64 path)
newdigest=$(field "$WORK/corrupt.out" montecarlo x86_64 digest)
check_eq "corrupt: the new artifact hashes to its digest" "$newdigest" "$(sha256sum <"$newpath" | cut -d' ' -f1)"
log "corrupt: digest before $digest, after $newdigest"
d "$WORK/corrupt-plain" build "$manifest" --cache "$CACHE" --toolchains "$tc" "${targets[@]}"
check_eq "corrupt: the next build has it cached" 0 "$RC"
check_contains "corrupt: the plain summary then shows 6 cached" "$(cat "$WORK/corrupt-plain.out")" "0 built, 6 cached, 0 failed"

# (f) A deleted artifact: rebuilt.
path=$(field "$WORK/corrupt.out" primes aarch64 path)
rm -f "$path"
x0=$(runs x86_64) a0=$(compiles aarch64)
build deleted
expect_rebuilt deleted "primes@aarch64"
compiled_delta deleted aarch64 "$a0" 1
check_eq "deleted: the x86_64 compiler did not run" "$x0" "$(runs x86_64)"
check_contains "deleted: the note says it was missing" "$(field "$WORK/deleted.out" primes aarch64 note)" "missing"
check "deleted: the artifact is back in the store" test -f "$(field "$WORK/deleted.out" primes aarch64 path)"

# (g) A corrupt source archive in the store is taken again from its origin.
mkdir -p "$WORK/arc/hello-1.0"
cat >"$WORK/arc/hello-1.0/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { printf("object=hello result=%d\n", V); return 0; }
EOF
tar -czf "$WORK/hello.tar.gz" -C "$WORK/arc" hello-1.0
sha=$(sha256sum <"$WORK/hello.tar.gz" | cut -d' ' -f1)
arc_manifest() { # arc_manifest V
	cat >"$WORK/arc.json" <<EOF
{
  "manifest": 1,
  "name": "arc",
  "objects": [
    {"name": "hello", "source": {"archive": "$WORK/hello.tar.gz", "sha256": "$sha", "strip": 1},
     "build": {"recipe": "c", "sources": ["hello.c"], "defines": ["V=$1"]}}
  ]
}
EOF
}
arc_manifest 1
d "$WORK/arc1" build "$WORK/arc.json" --json --cache "$CACHE" --toolchains "$tc" --target x86_64
check_eq "archive: build exits 0" 0 "$RC"
check_json_results "archive" "$WORK/arc1.out" 1
blob=$CACHE/cas/sha256/${sha:0:2}/$sha
check "archive: the archive is kept in the store under its sha256" test -f "$blob"
chmod u+w "$blob"
printf 'CORRUPT!' | dd of="$blob" bs=1 seek=100 conv=notrunc status=none
arc_manifest 2 # something to build again, from the archive
d "$WORK/arc2" build "$WORK/arc.json" --json --cache "$CACHE" --toolchains "$tc" --target x86_64
check_eq "archive corrupt in the store: build exits 0" 0 "$RC"
check_json_results "archive corrupt in the store" "$WORK/arc2.out" 1
check_eq "archive corrupt in the store: taken again from its origin, built" "ok:" \
	"$(field "$WORK/arc2.out" hello x86_64 status):$(field "$WORK/arc2.out" hello x86_64 error)"
check_eq "archive corrupt in the store: the store holds it intact again" "$sha" \
	"$(if [ -f "$blob" ]; then sha256sum <"$blob" | cut -d' ' -f1; else echo "no $blob"; fi)"

# The export works after all this, from the cache alone, and the executables run.
out=$WORK/out
x0=$(runs x86_64) a0=$(runs aarch64)
d "$WORK/export" artifacts export "$manifest" --out "$out" --cache "$CACHE" --toolchains "$tc" --json "${targets[@]}"
check_eq "export exits 0" 0 "$RC"
check_json_results "export" "$WORK/export.out" "$n"
check_eq "export: everything came from the cache" "" "$(jpy "$WORK/export.out" "[r['target'] + ' ' + r['object'] for r in d if not r['cached']]")"
check_eq "export: no compiler ran" "$x0 $a0" "$(runs x86_64) $(runs aarch64)"
for t in $(jpy "$WORK/export.out" "sorted(set(r['target'] for r in d))"); do
	for o in "${objects[@]}"; do
		# shellcheck disable=SC2086 # small arguments, as words
		if run_exe "$WORK/run.txt" "$out/$t/$o" ${small_args[$o]}; then
			check_contains "export: $o for $t runs" "$(cat "$WORK/run.txt")" "object=$o result="
		else
			fail_ "export: $o for $t runs" "$(head -c 2000 "$WORK/run.txt")"
		fi
	done
done

e2e_finish
