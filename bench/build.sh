#!/usr/bin/env bash
# bench/build.sh - parallel cold build and warm rebuild of dispatch, measured
# against the same compiler commands run one by one (and with xargs -P).
#
# Run from the repository root after building the project:
#   bench/build.sh [--dispatch PATH] [--runs N] [--manifest FILE]
#
# What is measured (hyperfine, mean +- sigma over N runs after 1 warm-up run):
#   cold (new cache)   dispatch build into an empty cache dir: includes the
#                      one-time toolchain identities (hashing each cc and cc1)
#   cold (ids known)   empty cache except CACHE/toolchains.json: the CI case of
#                      a persistent toolchain-id cache and new sources
#   cold -j1           as "cold (ids known)" with --jobs 1: dispatch's own
#                      overhead against "sequential"
#   sequential         the exact compiler commands dispatch runs, one by one
#   xargs -P NPROC     the same commands, NPROC at a time
#   warm               dispatch build with a populated cache (nothing compiled)
# plus peak RSS (/usr/bin/time -v, and dispatch's own VmHWM) and the cost of
# one sandbox (unshare -n) against a plain fork+exec.
#
# Everything happens in a mktemp -d directory that is removed on exit; no
# network is used. Each hyperfine invocation is bounded by `timeout`.
set -euo pipefail

DISPATCH=build/cli/dispatch
RUNS=5
MANIFEST=manifests/examples/examples.json

die() { echo "bench/build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
	case "$1" in
	--dispatch) [[ $# -ge 2 ]] || die "--dispatch needs a path"; DISPATCH=$2; shift 2 ;;
	--runs) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"; RUNS=$2; shift 2 ;;
	--manifest) [[ $# -ge 2 ]] || die "--manifest needs a file"; MANIFEST=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

for t in hyperfine jq timeout; do
	command -v "$t" >/dev/null || die "'$t' is not installed"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is not installed (apt-get install time)"
[[ -x $DISPATCH ]] || die "'$DISPATCH' is not executable: build the project first"
[[ -f $MANIFEST ]] || die "no manifest '$MANIFEST'"
TC_DIR=${DISPATCH_TOOLCHAINS:-toolchains}
[[ -d $TC_DIR ]] || die "no toolchains directory '$TC_DIR' (run from the repository root)"

NPROC=$(nproc)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dispatch-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
# A private copy: a concurrent rebuild of build/ cannot swap the binary mid-run.
cp "$DISPATCH" "$WORK/dispatch"
D=$WORK/dispatch
M=$(realpath "$MANIFEST")
MDIR=$(dirname "$M")
LIMIT=$((300 * (RUNS + 1))) # seconds, per hyperfine invocation

# ---------------------------------------------------------------------------
# The compiler commands dispatch runs (builder/recipe.c, build_c):
#   CC LEVEL_CFLAGS -O2 -ffile-prefix-map=SRC=. CFLAGS -I.. -D.. SOURCES -o OUT
#   [-static] LDFLAGS -lLIBS
# for every object and every available ISA's first (baseline) level, in
# dispatch's order (objects as listed, ISAs sorted).
"$D" toolchains --json >"$WORK/toolchains.json"
jq -c '.[] | select(.available) | {isa, compiler, level: .levels[0]}' "$WORK/toolchains.json" >"$WORK/targets"
[[ -s $WORK/targets ]] || die "no toolchain is available ('$D toolchains')"

mkdir -p "$WORK/src" "$WORK/gen"
nobj=$(jq '.objects | length' "$M")
npairs=0
for ((i = 0; i < nobj; i++)); do
	obj=$(jq -c ".objects[$i]" "$M")
	name=$(jq -r '.name' <<<"$obj")
	[[ $(jq -r '.build.recipe' <<<"$obj") == c ]] || die "object '$name': only the c recipe is supported"
	spath=$(jq -r '.source.path // empty' <<<"$obj")
	[[ -n $spath ]] || die "object '$name': only path sources are supported"
	src=$WORK/src/$name
	cp -a "$MDIR/$spath" "$src"
	entry=$(jq -r '.entry // .name' <<<"$obj")
	mapfile -t cflags < <(jq -r '.build.cflags // [] | .[]' <<<"$obj")
	mapfile -t incs < <(jq -r '.build.include // [] | .[]' <<<"$obj")
	mapfile -t defs < <(jq -r '.build.defines // [] | .[]' <<<"$obj")
	mapfile -t ldflags < <(jq -r '.build.ldflags // [] | .[]' <<<"$obj")
	mapfile -t libs < <(jq -r '.build.libs // [] | .[]' <<<"$obj")
	mapfile -t pats < <(jq -r '.build.sources[]' <<<"$obj")
	mapfile -t tpats < <(jq -r '.targets // ["*"] | .[]' <<<"$obj")
	static=$(jq -r 'if .build.static == false then 0 else 1 end' <<<"$obj")
	sources=()
	for p in "${pats[@]}"; do
		mapfile -t hits < <(compgen -G "$src/$p" | sort)
		[[ ${#hits[@]} -gt 0 ]] || die "object '$name': no source matches '$p'"
		sources+=("${hits[@]}")
	done
	while read -r t; do
		isa=$(jq -r .isa <<<"$t")
		level=$(jq -r .level <<<"$t")
		match=0
		for p in "${tpats[@]}"; do
			[[ $p == "*" || $p == "$isa" || $p == "$isa:$level" ]] && match=1
		done
		[[ $match == 1 ]] || continue
		cc=$(command -v "$(jq -r .compiler <<<"$t")") || die "compiler for $isa not in PATH"
		tcf=$(grep -l "\"isa\": *\"$isa\"" "$TC_DIR"/*.json | head -1)
		[[ -n $tcf ]] || die "no toolchain file for $isa in $TC_DIR"
		[[ $(jq -r '.levels[0].name' "$tcf") == "$level" ]] || die "$tcf does not start with level $level"
		mapfile -t lflags < <(jq -r '.levels[0].cflags // [] | .[]' "$tcf")
		args=("$cc" "${lflags[@]}" -O2 "-ffile-prefix-map=$src=." "${cflags[@]}")
		for x in "${incs[@]}"; do args+=("-I$src/$x"); done
		for x in "${defs[@]}"; do args+=("-D$x"); done
		args+=("${sources[@]}" -o "@OUT@/$isa:$level/$entry")
		[[ $static == 1 ]] && args+=(-static)
		args+=("${ldflags[@]}")
		for x in "${libs[@]}"; do args+=("-l$x"); done
		printf '%q ' "${args[@]}" >>"$WORK/gen/cmds"
		echo >>"$WORK/gen/cmds"
		echo "$isa:$level/$entry $isa:$level/$name" >>"$WORK/gen/pairs"
		npairs=$((npairs + 1))
	done <"$WORK/targets"
done
[[ $npairs -gt 0 ]] || die "the manifest selects no (object, target) pair"

# Two copies of the command list, writing to separate output trees.
for v in seq par; do
	sed "s|@OUT@|$WORK/out-$v|g" "$WORK/gen/cmds" >"$WORK/$v.cmds"
	cut -d' ' -f1 "$WORK/gen/pairs" | sed "s|^|$WORK/out-$v/|; s|/[^/]*\$||" | sort -u >"$WORK/$v.dirs"
done
{
	echo 'export LC_ALL=C SOURCE_DATE_EPOCH=0'
	cat "$WORK/seq.cmds"
} >"$WORK/sequential.sh"
{
	echo 'export LC_ALL=C SOURCE_DATE_EPOCH=0'
	echo "xargs -d '\\n' -n 1 -P $NPROC bash -ec <'$WORK/par.cmds'"
} >"$WORK/xargs.sh"
prep_out() { echo "rm -rf '$WORK/out-$1' && xargs mkdir -p <'$WORK/$1.dirs'"; }

# ---------------------------------------------------------------------------
# Correctness gate (also warms the page cache): the sequential commands must
# produce exactly the executables dispatch builds. The cache filled here is
# the warm cache, and its toolchains.json seeds "cold (ids known)".
echo "== checking that the ${npairs} commands reproduce dispatch's artifacts"
eval "$(prep_out seq)"
bash -e "$WORK/sequential.sh" >"$WORK/seq.log" 2>&1 || { cat "$WORK/seq.log"; die "the sequential commands failed"; }
WARM=$WORK/cache-warm
"$D" build "$M" --cache "$WARM" -q >/dev/null || die "dispatch build failed"
"$D" artifacts export "$M" --out "$WORK/art" --cache "$WARM" -q >/dev/null || die "dispatch artifacts export failed"
same=0
while read -r mine theirs; do
	if cmp -s "$WORK/out-seq/$mine" "$WORK/art/$theirs"; then
		same=$((same + 1))
	else
		echo "  differs: $mine" >&2
	fi
done <"$WORK/gen/pairs"
[[ $same == "$npairs" ]] || die "$((npairs - same)) of $npairs executables differ from dispatch's"
echo "   ${same}/${npairs} executables byte-identical"
[[ -f $WARM/toolchains.json ]] || die "dispatch did not write $WARM/toolchains.json"
cp "$WARM/toolchains.json" "$WORK/ids.json"

C1=$WORK/cache-cold
C2=$WORK/cache-ids
C3=$WORK/cache-j1
DB="'$D' build '$M' -q"
CMD_COLD="$DB --cache '$C1'"
CMD_IDS="$DB --cache '$C2'"
CMD_J1="$DB --cache '$C3' --jobs 1"
CMD_SEQ="bash -e '$WORK/sequential.sh'"
CMD_PAR="bash -e '$WORK/xargs.sh'"
CMD_WARM="$DB --cache '$WARM'"
seed() { echo "rm -rf '$1' && mkdir -p '$1' && cp '$WORK/ids.json' '$1/toolchains.json'"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== cold builds: ${npairs} pairs, ${RUNS} runs each (+1 warm-up); load average ${load_before}"
timeout "$LIMIT" hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$WORK/cold.json" \
	-n "dispatch cold (new cache)" --prepare "rm -rf '$C1'" "$CMD_COLD" \
	-n "dispatch cold (ids known)" --prepare "$(seed "$C2")" "$CMD_IDS" \
	-n "dispatch cold (ids known) -j1" --prepare "$(seed "$C3")" "$CMD_J1" \
	-n "sequential gcc" --prepare "$(prep_out seq)" "$CMD_SEQ" \
	-n "xargs -P $NPROC gcc" --prepare "$(prep_out par)" "$CMD_PAR"

WRUNS=$((RUNS * 6 > 30 ? RUNS * 6 : 30))
echo "== warm rebuild: ${WRUNS} runs"
timeout "$LIMIT" hyperfine --style basic --warmup 3 --runs "$WRUNS" --export-json "$WORK/warm.json" \
	-n "dispatch warm (all cached)" "$CMD_WARM"

echo "== sandbox cost: fork+exec of true, with and without a new network namespace"
SRUNS=300
timeout "$LIMIT" hyperfine --style basic -N --warmup 20 --runs "$SRUNS" --export-json "$WORK/sandbox.json" \
	-n "true" "true" -n "unshare -n true" "unshare -n true"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak RSS. /usr/bin/time reports the largest of dispatch and its waited-for
# children (cc1, ld); dispatch's own peak is its VmHWM, sampled while it runs.
rss() { # cache-prepare-cmd, dispatch args... -> "time_kb hwm_kb"
	local prep=$1 tpid cpid v hwm=0
	shift
	eval "$prep"
	/usr/bin/time -v -o "$WORK/time.txt" "$D" "$@" >/dev/null 2>&1 &
	tpid=$!
	while kill -0 "$tpid" 2>/dev/null; do
		cpid=$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null | cut -d' ' -f1 || true)
		if [[ -n $cpid ]]; then
			v=$(awk '/^VmHWM:/ {print $2}' "/proc/$cpid/status" 2>/dev/null || true)
			[[ -n $v && $v -gt $hwm ]] && hwm=$v
		fi
		sleep 0.02
	done
	wait "$tpid" || die "dispatch $* failed under /usr/bin/time"
	echo "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt") $hwm"
}
rss "rm -rf '$C1'" build "$M" -q --cache "$C1" >"$WORK/rss.cold"
rss "$(seed "$C2")" build "$M" -q --cache "$C2" >"$WORK/rss.ids"
rss true build "$M" -q --cache "$WARM" >"$WORK/rss.warm"
read -r rss_cold hwm_cold <"$WORK/rss.cold"
read -r rss_ids hwm_ids <"$WORK/rss.ids"
read -r rss_warm hwm_warm <"$WORK/rss.warm"

# ---------------------------------------------------------------------------
jq -s '[.[].results[]]' "$WORK/cold.json" "$WORK/warm.json" "$WORK/sandbox.json" >"$WORK/all.json"
get() { jq -r --arg n "$1" --arg f "$2" '.[] | select(.command == $n) | .[$f]' "$WORK/all.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
verdict() { awk -v x="$1" -v g="$3" -v op="$2" 'BEGIN { ok = op == ">=" ? x >= g : x <= g; print ok ? "met" : "MISSED" }'; }

cold=$(get "dispatch cold (new cache)" mean)
ids=$(get "dispatch cold (ids known)" mean)
j1=$(get "dispatch cold (ids known) -j1" mean)
seq=$(get "sequential gcc" mean)
par=$(get "xargs -P $NPROC gcc" mean)
warm=$(get "dispatch warm (all cached)" mean)
t_true=$(get "true" mean)
t_unshare=$(get "unshare -n true" mean)

echo
echo "machine: $NPROC CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(gcc --version | head -1)"
echo "load average before/after: $load_before / $load_after"
echo "${npairs} (object, target) pairs of $MANIFEST; ${RUNS} runs (warm: ${WRUNS})"
echo
printf '%-32s %16s %9s %9s\n' "what" "wall mean ± σ" "user" "sys"
for n in "dispatch cold (new cache)" "dispatch cold (ids known)" "dispatch cold (ids known) -j1" \
	"sequential gcc" "xargs -P $NPROC gcc" "dispatch warm (all cached)"; do
	jq -r --arg n "$n" '.[] | select(.command == $n) |
		"\(.command)\t\(.mean)\t\(.stddev // 0)\t\(.user)\t\(.system)"' "$WORK/all.json" |
		awk -F'\t' '{ printf "%-32s %8.3f ± %5.3f %8.2fs %8.2fs\n", $1, $2, $3, $4, $5 }'
done
echo
printf '%-44s %8s  %s\n' "ratio" "value" "goal"
printf '%-44s %8s  %s\n' "sequential / dispatch cold (new cache)" "$(ratio "$seq" "$cold")x" \
	">= 1.8x: $(verdict "$(ratio "$seq" "$cold")" ">=" 1.8)"
printf '%-44s %8s  %s\n' "sequential / dispatch cold (ids known)" "$(ratio "$seq" "$ids")x" \
	">= 1.8x: $(verdict "$(ratio "$seq" "$ids")" ">=" 1.8)"
printf '%-44s %8s  %s\n' "xargs -P $NPROC / dispatch cold (ids known)" "$(ratio "$par" "$ids")x" "(context)"
printf '%-44s %8s  %s\n' "dispatch -j1 / sequential (overhead)" "$(ratio "$j1" "$seq")x" "(context)"
printf '%-44s %8s  %s\n' "warm / cold (new cache)" "$(pct "$warm" "$cold")" \
	"<= 2%: $(verdict "$(ratio "$warm" "$cold")" "<=" 0.02)"
printf '%-44s %8s  %s\n' "warm / cold (ids known)" "$(pct "$warm" "$ids")" \
	"<= 2%: $(verdict "$(ratio "$warm" "$ids")" "<=" 0.02)"
echo
printf 'toolchain identities (cold new cache - ids known): %.2f s\n' "$(awk -v a="$cold" -v b="$ids" 'BEGIN { print a - b }')"
printf 'sandbox: true %.2f ms, unshare -n true %.2f ms: +%.2f ms per build step (%d runs)\n' \
	"$(awk -v x="$t_true" 'BEGIN { print x * 1000 }')" "$(awk -v x="$t_unshare" 'BEGIN { print x * 1000 }')" \
	"$(awk -v a="$t_unshare" -v b="$t_true" 'BEGIN { print (a - b) * 1000 }')" "$SRUNS"
echo "peak RSS, /usr/bin/time -v (dispatch or its largest child) / dispatch alone (VmHWM):"
printf '  cold (new cache) %6d / %6d KiB\n  cold (ids known) %6d / %6d KiB\n  warm             %6d / %6d KiB\n' \
	"$rss_cold" "$hwm_cold" "$rss_ids" "$hwm_ids" "$rss_warm" "$hwm_warm"
echo
echo "commands (W=$WORK, removed on exit; dispatch = a copy of $DISPATCH):"
echo "  cold (new cache):  prepare: rm -rf CACHE;  run: dispatch build $MANIFEST -q --cache CACHE"
echo "  cold (ids known):  prepare: rm -rf CACHE; mkdir CACHE; cp <toolchains.json of an earlier run> CACHE/"
echo "                     run: dispatch build $MANIFEST -q --cache CACHE   (-j1 row adds --jobs 1)"
echo "  warm:              run: dispatch build $MANIFEST -q --cache <populated CACHE>"
echo "  xargs:             xargs -d '\\n' -n 1 -P $NPROC bash -ec < <the lines below>"
echo "  sequential:        LC_ALL=C SOURCE_DATE_EPOCH=0, then one by one:"
sed "s|$WORK/|\$W/|g; s|^|    |" "$WORK/seq.cmds"
