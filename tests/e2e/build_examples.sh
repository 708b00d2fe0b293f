#!/usr/bin/env bash
# build_examples.sh - the example manifest built for every available target,
# exported, and run: each executable reports the architecture, byte order and
# word size of its target, and every object computes the same result on every
# ISA. Then non-baseline levels of the native ISA (those this CPU runs) and
# of aarch64 (qemu emulates them all) build and give the same results.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_setup

manifest=$DISPATCH_SOURCE_DIR/manifests/examples/examples.json
[ -f "$manifest" ] || die "no example manifest at $manifest"

# What each ISA's executables must report: arch endian bits.
declare -A expect=(
	[x86_64]="x86_64 little 64"
	[aarch64]="aarch64 little 64"
	[armhf]="arm little 32"
	[s390x]="s390x big 64"
	[ppc64le]="ppc64le little 64"
	[riscv64]="riscv64 little 64"
)

# The objects and their arguments, from the manifest.
mapfile -t objects < <(jpy "$manifest" "[o['name'] for o in d['objects']]")
[ "${#objects[@]}" -gt 0 ] || die "the example manifest has no objects"
declare -A args
for o in "${objects[@]}"; do
	args[$o]=$(jpy "$manifest" "' '.join(next(x for x in d['objects'] if x['name'] == '$o').get('args', []))")
done

# The available targets, by dispatch's own account.
d "$WORK/tc" toolchains --json
check_eq "dispatch toolchains --json exits 0" 0 "$RC"
mapfile -t isas < <(jpy "$WORK/tc.out" "[t['isa'] for t in d if t['available']]")
[ "${#isas[@]}" -gt 0 ] || die "no toolchain is available: $(cat "$WORK/tc.out")"
log "available ISAs: ${isas[*]}"
for isa in "${isas[@]}"; do
	want=${expect[$isa]:-}
	if [ -z "$want" ]; then
		skip "no expected arch/endian/bits for ISA '$isa': its executables are run but not checked"
		continue
	fi
	read -r _ endian bits <<<"$want"
	check_eq "toolchain $isa describes endian/bits $endian/$bits" "$endian $bits" \
		"$(jpy "$WORK/tc.out" "[' '.join((t['endian'], str(t['bits']))) for t in d if t['isa'] == '$isa']")"
done
for isa in x86_64 aarch64; do
	if [[ " ${isas[*]} " != *" $isa "* ]]; then
		fail_ "the $isa toolchain is available (scripts/setup installs it)"
	fi
done
n=$((${#objects[@]} * ${#isas[@]}))

# runs_and_reports DIR TARGET ISA: runs every object exported to DIR/TARGET
# and checks its arch line; records the result lines in $WORK/results.
runs_and_reports() {
	local dir=$1 target=$2 isa=$3 o exe out want arch_line
	for o in "${objects[@]}"; do
		exe=$dir/$target/$o
		out=$WORK/run-$target-$o.txt
		if [ ! -x "$exe" ]; then
			fail_ "$o for $target was exported to $exe"
			continue
		fi
		# shellcheck disable=SC2086 # the manifest's args are words
		if ! run_exe "$out" "$exe" ${args[$o]}; then
			fail_ "$o for $target runs (${args[$o]})" "$(head -c 2000 "$out")"
			continue
		fi
		want=${expect[$isa]:-}
		arch_line=$(grep -m1 '^arch=' "$out" || true)
		if [ -n "$want" ]; then
			read -r a e b <<<"$want"
			check_eq "$o for $target reports its target's arch/endian/bits" \
				"arch=$a endian=$e bits=$b" "$arch_line"
		fi
		grep -m1 "^object=$o result=" "$out" | sed "s|^|$target |" >>"$WORK/results" ||
			fail_ "$o for $target prints 'object=$o result=...'" "$(head -c 2000 "$out")"
	done
}

# check_same_results WHAT: per object, one distinct result line across targets.
check_same_results() {
	local what=$1 o distinct count
	for o in "${objects[@]}"; do
		count=$(grep -c " object=$o result=" "$WORK/results" || true)
		distinct=$(grep " object=$o result=" "$WORK/results" | cut -d' ' -f2- | sort -u)
		if [ "$(grep -c . <<<"$distinct")" -eq 1 ]; then
			pass_ "$what: $o gives the same result on all $count targets ($distinct)"
		else
			fail_ "$what: $o gives the same result on every target" "$(grep " object=$o result=" "$WORK/results")"
		fi
	done
}

# 1. Build everything (the default: the baseline of every available ISA).
d "$WORK/build" build "$manifest" --json --cache "$CACHE"
check_eq "build of the example manifest exits 0" 0 "$RC"
log "cold build of $n artifacts: $SECS s"
check_json_results "build --json" "$WORK/build.out" "$n"
check_eq "every (object, ISA) pair is in the report, once" \
	"$(for o in "${objects[@]}"; do for i in "${isas[@]}"; do echo "$o $i"; done; done | sort)" \
	"$(jpy "$WORK/build.out" "sorted(r['object'] + ' ' + r['isa'] for r in d)")"
check_eq "every result is status ok" "" "$(jpy "$WORK/build.out" "[r['target'] + ' ' + r['object'] + ': ' + str(r.get('error')) for r in d if r['status'] != 'ok']")"
check_eq "nothing is cached in a new cache" "" "$(jpy "$WORK/build.out" "[r['target'] + ' ' + r['object'] for r in d if r['cached']]")"
check_eq "targets are the baselines (first level of each ISA)" \
	"$(jpy "$WORK/tc.out" "sorted(t['isa'] + ':' + t['levels'][0] for t in d if t['available'])")" \
	"$(jpy "$WORK/build.out" "sorted(set(r['target'] for r in d))")"
# The reported artifact is in the store, has the reported size and hashes to its digest.
bad=$(jpy "$WORK/build.out" "[r['object'] + ' ' + r['target'] for r in d if not (r['digest'] and re.fullmatch('[0-9a-f]{64}', r['digest']) and r['key'] and re.fullmatch('[0-9a-f]{64}', r['key']) and r['path'] and r['path'].endswith(r['digest']) and r['size'] > 0)]")
check_eq "every result has a digest, a key, a path named by the digest and a size" "" "$bad"
bad=""
while read -r path digest size; do
	if [ ! -f "$path" ]; then
		bad+="$path: missing; "
	elif [ "$(sha256sum <"$path" | cut -d' ' -f1)" != "$digest" ]; then
		bad+="$path: does not hash to $digest; "
	elif [ "$(stat -c %s "$path")" != "$size" ]; then
		bad+="$path: $(stat -c %s "$path") bytes, reported $size; "
	fi
done < <(jpy "$WORK/build.out" "[r['path'] + ' ' + r['digest'] + ' ' + str(r['size']) for r in d]")
check_eq "every artifact is in the store, hashes to its digest and has its size" "" "$bad"
check_eq "distinct (object, target) pairs have distinct keys" "$n" \
	"$(jpy "$WORK/build.out" "len(set(r['key'] for r in d))")"

# 2. Export: from the cache, nothing rebuilt.
out=$WORK/out
d "$WORK/export" artifacts export "$manifest" --out "$out" --cache "$CACHE" --json
check_eq "artifacts export exits 0" 0 "$RC"
check_json_results "artifacts export --json" "$WORK/export.out" "$n"
check_eq "export takes every artifact from the cache" "" \
	"$(jpy "$WORK/export.out" "[r['target'] + ' ' + r['object'] for r in d if not r['cached'] or r['status'] != 'ok']")"
check_eq "export reports DIR/<target>/<object> for each" "" \
	"$(jpy "$WORK/export.out" "[r['target'] + ' ' + r['object'] + ': ' + str(r.get('exported')) for r in d if r.get('exported') != '$out/' + r['target'] + '/' + r['object']]")"
check_eq "export writes exactly the executables of the report" \
	"$(jpy "$WORK/export.out" "sorted(r['target'] + '/' + r['object'] for r in d)")" \
	"$(cd "$out" && find . -type f | sed 's|^\./||' | sort)"
check_eq "the exported executables are the artifacts' entries (mode 755)" "" \
	"$(find "$out" -type f ! -perm 755)"

# 3. Run them: natives directly, foreign ones through qemu-user (binfmt_misc).
: >"$WORK/results"
for isa in "${isas[@]}"; do
	target=$(jpy "$WORK/build.out" "next(r['target'] for r in d if r['isa'] == '$isa')")
	runs_and_reports "$out" "$target" "$isa"
done
check_same_results "baselines"

# 4. Other levels: the native ISA's that this CPU runs, and aarch64's (qemu
# emulates every one of them).
level_targets=()
case $(uname -m) in
x86_64)
	mapfile -t lv < <(x86_levels_supported)
	for l in "${lv[@]}"; do [ "$l" = baseline ] || level_targets+=("x86_64:$l"); done
	for l in v2 v3 v4; do
		[[ " ${lv[*]} " == *" $l "* ]] || skip "this CPU cannot run x86_64:$l: not built"
	done
	;;
*) skip "native ISA $(uname -m): only x86_64 hosts check native levels" ;;
esac
level_targets+=("aarch64:armv8.2-a" "aarch64:armv9-a")
targs=()
for t in "${level_targets[@]}"; do targs+=(--target "$t"); done
log "levels: ${level_targets[*]}"
d "$WORK/levels" artifacts export "$manifest" --out "$WORK/out-levels" --cache "$CACHE" --json "${targs[@]}"
check_eq "export of non-baseline levels exits 0" 0 "$RC"
check_json_results "levels --json" "$WORK/levels.out" $((${#objects[@]} * ${#level_targets[@]}))
check_eq "the levels built are exactly the ones asked for" \
	"$(printf '%s\n' "${level_targets[@]}" | sort)" \
	"$(jpy "$WORK/levels.out" "sorted(set(r['target'] for r in d))")"
check_eq "every level result is status ok and newly built" "" \
	"$(jpy "$WORK/levels.out" "[r['target'] + ' ' + r['object'] + ': ' + str(r.get('error')) for r in d if r['status'] != 'ok' or r['cached']]")"
check_eq "a level's cache key differs from its baseline's" "" \
	"$(jpy "$WORK/levels.out" "[r['target'] + ' ' + r['object'] for r in d if r['key'] in set(b['key'] for b in json.load(open('$WORK/build.out')))]")"
for t in "${level_targets[@]}"; do
	runs_and_reports "$WORK/out-levels" "$t" "${t%%:*}"
done
check_same_results "baselines and levels"

e2e_finish
