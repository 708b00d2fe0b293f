#!/usr/bin/env bash
# thirdparty.sh - real code nobody wrote for dispatch: lz4 from a git
# repository and Lua from a release tarball (prepared by scripts/thirdparty
# from Debian's source packages), built with their own Makefiles for x86_64,
# aarch64 and s390x, exported and run: lz4 round-trips data (and reads what
# the other ISAs wrote), Lua reports its version and the byte order it runs
# on. A wrong archive digest and an unknown git revision fail clearly.
#
# scripts/thirdparty downloads through apt the first time (then keeps its
# files in $E2E_THIRDPARTY_DIR, under the build tree). When it cannot
# (offline, no deb-src), this test fails, or prints SKIP when
# DISPATCH_ALLOW_SKIP=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_setup

tp_dir=${E2E_THIRDPARTY_DIR:-${TMPDIR:-/tmp}/thirdparty}
script=$DISPATCH_SOURCE_DIR/scripts/thirdparty
[ -f "$script" ] || die "no $script"

# 1. The sources.
t0=$(now)
rc=0
timeout -k 10 300 bash "$script" "$tp_dir" >"$WORK/tp.out" 2>"$WORK/tp.err" || rc=$?
log "scripts/thirdparty $tp_dir: exit $rc in $(elapsed "$t0") s"
if [ "$rc" -ne 0 ]; then
	cat "$WORK/tp.err" >&2
	if [ "$rc" -eq 124 ] || grep -Eqi "apt-get source|deb-src|apt-get update|Temporary failure|Could not resolve|Unable to fetch" "$WORK/tp.err"; then
		if [ "${DISPATCH_ALLOW_SKIP:-}" = 1 ]; then
			skip "scripts/thirdparty cannot get the sources through apt (offline or no deb-src): nothing tested"
			exit 0
		fi
		die "scripts/thirdparty cannot get the sources through apt (exit $rc; set DISPATCH_ALLOW_SKIP=1 to skip this test where that is expected)"
	fi
	die "scripts/thirdparty failed (exit $rc)"
fi
kv() { sed -n "s/^$1=//p" "$WORK/tp.out"; }
for k in lua_archive lua_sha256 lz4_git lz4_tag lz4_commit lz4_version; do
	[ -n "$(kv "$k")" ] || die "scripts/thirdparty printed no $k= line: $(cat "$WORK/tp.out")"
done
lua_archive=$(kv lua_archive)
lz4_git=$(kv lz4_git)
check "scripts/thirdparty: the Lua archive exists" test -f "$lua_archive"
check_eq "scripts/thirdparty: lua_sha256 is the archive's" "$(kv lua_sha256)" "$(sha256sum <"$lua_archive" | cut -d' ' -f1)"
check "scripts/thirdparty: lz4.git is a repository with the tag" \
	git --git-dir="$lz4_git" rev-parse -q --verify "refs/tags/$(kv lz4_tag)^{commit}"
rc=0
timeout -k 10 120 bash "$script" "$tp_dir" >"$WORK/tp2.out" 2>"$WORK/tp2.err" || rc=$?
check_eq "scripts/thirdparty: a second run exits 0" 0 "$rc"
check_eq "scripts/thirdparty: a second run keeps what it made" "$(cat "$WORK/tp.out")" "$(cat "$WORK/tp2.out")"

# 2. The shipped manifests, their source paths pointed at $tp_dir.
src_manifests=$DISPATCH_SOURCE_DIR/manifests/examples
mkdir -p "$WORK/m"
"$PY" - "$src_manifests" "$WORK/m" "$lua_archive" "$lz4_git" <<'EOF'
import json, sys
src, dst, archive, git = sys.argv[1:]
for name in ("thirdparty-git", "thirdparty-archive"):
    d = json.load(open("%s/%s.json" % (src, name)))
    for o in d["objects"]:
        s = o["source"]
        if "git" in s:
            s["git"] = git
        if "archive" in s:
            s["archive"] = archive
    json.dump(d, open("%s/%s.json" % (dst, name), "w"), indent=2)
EOF
git_m=$WORK/m/thirdparty-git.json
arc_m=$WORK/m/thirdparty-archive.json
check_eq "the git manifest pins the tag scripts/thirdparty makes" "$(kv lz4_tag)" \
	"$(jpy "$git_m" "d['objects'][0]['source']['rev']")"
check_eq "the archive manifest pins the digest of the archive scripts/thirdparty makes" "$(kv lua_sha256)" \
	"$(jpy "$arc_m" "d['objects'][0]['source']['sha256']")"

# 3. Build and export for three ISAs (two byte orders).
targets=(--target x86_64 --target aarch64 --target s390x)
out=$WORK/out
for mf in "$git_m" "$arc_m"; do
	name=$(basename "$mf" .json)
	d "$WORK/$name" artifacts export "$mf" --out "$out" --cache "$CACHE" --json "${targets[@]}"
	log "$name: exported in $SECS s"
	check_eq "$name: export exits 0" 0 "$RC"
	check_json_results "$name" "$WORK/$name.out" 3
	check_eq "$name: built for x86_64, aarch64 and s390x" "ok:aarch64 ok:s390x ok:x86_64" \
		"$(jpy "$WORK/$name.out" "' '.join(sorted(r['status'] + ':' + r['isa'] for r in d))")"
	bad=$(jpy "$WORK/$name.out" "[r['isa'] + ': ' + r['error'] for r in d if r['status'] != 'ok']")
	[ -z "$bad" ] || fail_ "$name: failures" "$bad"
done

# 4. Run them.
head -c 300000 "$DISPATCH" >"$WORK/data"
seq 1 20000 >>"$WORK/data"
for t in $(jpy "$WORK/thirdparty-git.out" "sorted(r['target'] for r in d)"); do
	isa=${t%%:*}
	lz4=$out/$t/lz4
	lua=$out/$t/lua
	if run_exe "$WORK/lz4-V-$isa.txt" "$lz4" -V; then
		check_contains "lz4 -V on $isa: the version" "$(cat "$WORK/lz4-V-$isa.txt")" "v$(kv lz4_version)"
		check_contains "lz4 -V on $isa: a 64-bit build" "$(cat "$WORK/lz4-V-$isa.txt")" "64-bits"
	else
		fail_ "lz4 -V runs on $isa" "$(head -c 2000 "$WORK/lz4-V-$isa.txt")"
	fi
	if timeout 120 "$lz4" -c "$WORK/data" >"$WORK/data.$isa.lz4" 2>"$WORK/lz4-c-$isa.err" &&
		timeout 120 "$lz4" -dc "$WORK/data.$isa.lz4" >"$WORK/data.$isa.back" 2>>"$WORK/lz4-c-$isa.err"; then
		check "lz4 on $isa: compress | decompress gives the original" cmp "$WORK/data" "$WORK/data.$isa.back"
		check_lt "lz4 on $isa: it compressed" "$(stat -c %s "$WORK/data.$isa.lz4")" "$(stat -c %s "$WORK/data")"
	else
		fail_ "lz4 on $isa: compress and decompress" "$(head -c 2000 "$WORK/lz4-c-$isa.err")"
	fi
	if run_exe "$WORK/lua-$isa.txt" "$lua" -e 'print(_VERSION, string.pack(">I4",1):byte(4))'; then
		check_eq "lua on $isa: version and big-endian packing" "$(printf 'Lua 5.4\t1')" "$(cat "$WORK/lua-$isa.txt")"
	else
		fail_ "lua runs on $isa" "$(head -c 2000 "$WORK/lua-$isa.txt")"
	fi
	want=little
	[ "$isa" = s390x ] && want=big
	if run_exe "$WORK/lua-n-$isa.txt" "$lua" -e 'print(string.pack("=I4",1):byte(1) == 1 and "little" or "big")'; then
		check_eq "lua on $isa: runs $want-endian" "$want" "$(cat "$WORK/lua-n-$isa.txt")"
	else
		fail_ "lua runs on $isa" "$(head -c 2000 "$WORK/lua-n-$isa.txt")"
	fi
done
# The frame format does not depend on the ISA: big-endian s390x reads x86_64's and back.
for pair in "x86_64 s390x" "s390x x86_64" "aarch64 s390x"; do
	read -r from to <<<"$pair"
	dec=$(jpy "$WORK/thirdparty-git.out" "next(r['target'] for r in d if r['isa'] == '$to')")
	if [ -f "$WORK/data.$from.lz4" ] && timeout 120 "$out/$dec/lz4" -dc "$WORK/data.$from.lz4" >"$WORK/cross" 2>&1; then
		check "lz4: what $from compressed, $to decompresses" cmp "$WORK/data" "$WORK/cross"
	else
		fail_ "lz4: what $from compressed, $to decompresses" "$(head -c 2000 "$WORK/cross")"
	fi
done

# 5. Warm: both rebuilt from the cache alone.
d "$WORK/warm" build "$git_m" --json --cache "$CACHE" "${targets[@]}"
check_eq "git source, warm: everything cached" "true true true" \
	"$(jpy "$WORK/warm.out" "' '.join('true' if r['cached'] else 'false' for r in d)")"
d "$WORK/warm" build "$arc_m" --json --cache "$CACHE" "${targets[@]}"
check_eq "archive source, warm: everything cached" "true true true" \
	"$(jpy "$WORK/warm.out" "' '.join('true' if r['cached'] else 'false' for r in d)")"

# 6. Sources that are not what the manifest says.
wrong=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"$PY" - "$arc_m" "$WORK/m/wrong-sha.json" "$wrong" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["objects"][0]["source"]["sha256"] = sys.argv[3]
json.dump(d, open(sys.argv[2], "w"), indent=2)
EOF
d "$WORK/wrongsha" build "$WORK/m/wrong-sha.json" --json --cache "$WORK/cache-wrongsha" --target x86_64
check_eq "wrong sha256: exit status 1" 1 "$RC"
check_json_results "wrong sha256" "$WORK/wrongsha.out" 1
err=$(field "$WORK/wrongsha.out" lua x86_64 error)
check_eq "wrong sha256: the build failed" "failed" "$(field "$WORK/wrongsha.out" lua x86_64 status)"
check_contains "wrong sha256: the error names the expected digest" "$err" "$wrong"
check_contains "wrong sha256: the error names the actual digest" "$err" "$(kv lua_sha256)"

"$PY" - "$git_m" "$WORK/m/bad-rev.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["objects"][0]["source"]["rev"] = "v0.0.0-no-such-tag"
json.dump(d, open(sys.argv[2], "w"), indent=2)
EOF
d "$WORK/badrev" build "$WORK/m/bad-rev.json" --json --cache "$CACHE" --target x86_64
check_eq "unknown git rev: exit status 1" 1 "$RC"
check_json_results "unknown git rev" "$WORK/badrev.out" 1
err=$(field "$WORK/badrev.out" lz4 x86_64 error)
check_eq "unknown git rev: the build failed" "failed" "$(field "$WORK/badrev.out" lz4 x86_64 status)"
check_contains "unknown git rev: the error says not found" "$err" "not found"
check_contains "unknown git rev: the error names the revision" "$err" "v0.0.0-no-such-tag"

e2e_finish
