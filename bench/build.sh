#!/usr/bin/env bash
# bench/build.sh - parallel cold build and warm rebuild of dispatch, measured
# against the same compiler commands run one by one (and with xargs -P).
#
# Run from the repository root after building the project:
#   bench/build.sh [--dispatch PATH] [--runs N] [--manifest FILE] [--json FILE]
#                  [--wait-idle S]
# --json FILE also writes the figures as JSON. --wait-idle S waits up to S
# seconds for the CPUs to be >= 90% idle over 5 s before measuring (for
# shared machines; other programs' CPU use is reported either way).
#
# What is measured (hyperfine; the cold commands in N interleaved rounds after
# a warm-up round, mean +- sigma and min over the rounds):
#   cold (new cache)   dispatch build into an empty cache dir: includes the
#                      one-time toolchain identities (hashing each cc and cc1)
#   cold (ids known)   empty cache except CACHE/toolchains.json: the CI case of
#                      a persistent toolchain-id cache and new sources
#   cold -j1           as "cold (ids known)" with --jobs 1: dispatch's own
#                      overhead against "sequential"
#   sequential         the exact compiler commands dispatch runs, one by one
#   xargs -P NPROC     the same commands, NPROC at a time
#   warm               dispatch build with a populated cache (nothing compiled)
# plus peak RSS (/usr/bin/time -v, and dispatch's own VmHWM), dispatch's own
# CPU, its start-up time and the cost of one network namespace (unshare -n).
#
# Everything happens in a mktemp -d directory that is removed on exit; no
# network is used. Each hyperfine invocation is bounded by `timeout`.
set -euo pipefail

DISPATCH=build/cli/dispatch
RUNS=5
MANIFEST=manifests/examples/examples.json
JSON_OUT=
WAIT_IDLE=0

die() { echo "bench/build.sh: $*" >&2; exit 1; }
bad_usage() { echo "bench/build.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
	case "$1" in
	--dispatch) [[ $# -ge 2 ]] || bad_usage "--dispatch needs a path"; DISPATCH=$2; shift 2 ;;
	--runs) [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || bad_usage "--runs needs a positive number"; RUNS=$2; shift 2 ;;
	--manifest) [[ $# -ge 2 ]] || bad_usage "--manifest needs a file"; MANIFEST=$2; shift 2 ;;
	--json) [[ $# -ge 2 ]] || bad_usage "--json needs a file"; JSON_OUT=$(realpath -m "$2"); shift 2 ;;
	--wait-idle) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || bad_usage "--wait-idle needs seconds"; WAIT_IDLE=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) bad_usage "unknown argument '$1' (see --help)" ;;
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
	[[ $(jq -r '.sdk // false' <<<"$obj") == false ]] || die "object '$name': objects with \"sdk\" are not supported"
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
		tcf=$(grep -l "\"isa\": *\"$isa\"" "$TC_DIR"/*.json || true)
		tcf=${tcf%%$'\n'*} # the first (no "| head" under pipefail: SIGPIPE)
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
timeout "$LIMIT" bash -e "$WORK/sequential.sh" >"$WORK/seq.log" 2>&1 || { cat "$WORK/seq.log"; die "the sequential commands failed"; }
WARM=$WORK/cache-warm
timeout "$LIMIT" "$D" build "$M" --cache "$WARM" -q >/dev/null || die "dispatch build failed"
timeout "$LIMIT" "$D" artifacts export "$M" --out "$WORK/art" --cache "$WARM" -q >/dev/null || die "dispatch artifacts export failed"
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

# Waits, at most WAIT_IDLE seconds, for 5 s in which the CPUs are >= 90% idle.
idle_pct() { # over 5 s
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	sleep 5
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); print int(100 * (y[2] - x[2]) / (y[1] - x[1] + 1e-9)) }'
}
if [[ $WAIT_IDLE -gt 0 ]]; then
	deadline=$((SECONDS + WAIT_IDLE))
	while :; do
		idle=$(idle_pct)
		[[ $idle -ge 90 ]] && break
		[[ $SECONDS -ge $deadline ]] && { echo "   the CPUs are still busy (${idle}% idle): measuring anyway"; break; }
		echo "   waiting for an idle machine (${idle}% idle)"
	done
fi

# CPU time used on the whole machine and by this script's descendants, in
# clock ticks: their difference is what other programs took meanwhile.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
own_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat"; }
HZ=$(getconf CLK_TCK)
busy0=$(busy_ticks)
own0=$(own_ticks)
t0=$(date +%s.%N)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# The cold commands run interleaved, one round of each after the other, so
# that load from other programs is spread over all of them rather than
# falling on one. Round 0 is a warm-up and is not counted.
NAMES=("dispatch cold (new cache)" "dispatch cold (ids known)" "dispatch cold (ids known) -j1"
	"sequential gcc" "xargs -P $NPROC gcc")
HF_ARGS=(
	-n "${NAMES[0]}" --prepare "rm -rf '$C1'" "$CMD_COLD"
	-n "${NAMES[1]}" --prepare "$(seed "$C2")" "$CMD_IDS"
	-n "${NAMES[2]}" --prepare "$(seed "$C3")" "$CMD_J1"
	-n "${NAMES[3]}" --prepare "$(prep_out seq)" "$CMD_SEQ"
	-n "${NAMES[4]}" --prepare "$(prep_out par)" "$CMD_PAR"
)
echo "== cold builds: ${npairs} pairs, 1 warm-up round + ${RUNS} rounds of ${#NAMES[@]} commands; load average ${load_before}"
for ((r = 0; r <= RUNS; r++)); do
	timeout "$LIMIT" hyperfine --style none --runs 1 --export-json "$WORK/round$r.json" "${HF_ARGS[@]}"
	jq -r --arg r "$r" '"   round \($r)" + ([.results[] | " \(.mean * 100 | round / 100)"] | join(""))' "$WORK/round$r.json"
done
# One hyperfine-like entry per command over the counted rounds.
jq -s '[.[].results[]] | group_by(.command) | map({
	command: .[0].command, times: map(.times[0]),
	mean: (map(.mean) | add / length),
	stddev: (if length > 1 then (map(.mean) | (add / length) as $m | map(pow(. - $m; 2)) | add / (length - 1) | sqrt) else 0 end),
	min: (map(.mean) | min), user: (map(.user) | add / length), system: (map(.system) | add / length)})' \
	"$WORK"/round[1-9]*.json >"$WORK/cold.json"

WRUNS=$((RUNS * 6 > 30 ? RUNS * 6 : 30))
echo "== warm rebuild: ${WRUNS} runs"
timeout "$LIMIT" hyperfine --style basic --warmup 3 --runs "$WRUNS" --export-json "$WORK/warm.json" \
	-n "dispatch warm (all cached)" "$CMD_WARM"

echo "== start-up and sandbox cost: dispatch --version; a network namespace (unshare -n true - unshare true)"
SRUNS=200
timeout "$LIMIT" hyperfine --style basic -N --warmup 20 --runs "$SRUNS" --export-json "$WORK/sandbox.json" \
	-n "true" "true" -n "dispatch --version" "$D --version" \
	-n "unshare true" "unshare true" -n "unshare -n true" "unshare -n true"
t1=$(date +%s.%N)
other_cpu=$(awk -v b="$(($(busy_ticks) - busy0))" -v o="$(($(own_ticks) - own0))" -v hz="$HZ" \
	'BEGIN { x = (b - o) / hz; print x < 0 ? 0 : x }')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak RSS and CPU. /usr/bin/time reports the largest RSS of dispatch and its
# waited-for children (cc1, ld) and their total CPU; dispatch's own peak
# (VmHWM) and CPU (utime+stime of its threads, without the compilers) are
# sampled from /proc while it runs.
rss() { # cache-prepare-cmd, dispatch args... -> "maxrss_kb hwm_kb total_cpu_s own_cpu_s"
	local prep=$1 tpid cpid v hwm=0 own=0
	shift
	eval "$prep"
	timeout "$LIMIT" /usr/bin/time -v -o "$WORK/time.txt" "$D" "$@" >/dev/null 2>&1 &
	tpid=$!
	while kill -0 "$tpid" 2>/dev/null; do
		# timeout -> /usr/bin/time -> dispatch
		cpid=$(cut -d' ' -f1 "/proc/$tpid/task/$tpid/children" 2>/dev/null || true)
		[[ -n $cpid ]] && cpid=$(cut -d' ' -f1 "/proc/$cpid/task/$cpid/children" 2>/dev/null || true)
		if [[ -n $cpid ]]; then
			v=$(awk '/^VmHWM:/ {print $2}' "/proc/$cpid/status" 2>/dev/null || true)
			[[ -n $v && $v -gt $hwm ]] && hwm=$v
			v=$(awk '{print $14 + $15}' "/proc/$cpid/stat" 2>/dev/null || true)
			[[ -n $v && $v -gt $own ]] && own=$v
		fi
		sleep 0.02
	done
	wait "$tpid" || die "dispatch $* failed under /usr/bin/time"
	awk -F': ' -v hwm="$hwm" -v own="$own" -v hz="$HZ" '
		/Maximum resident set size/ { rss = $2 } /User time/ { cpu += $2 } /System time/ { cpu += $2 }
		END { print rss, hwm, cpu, own / hz }' "$WORK/time.txt"
}
rss "rm -rf '$C1'" build "$M" -q --cache "$C1" >"$WORK/rss.cold"
rss "$(seed "$C2")" build "$M" -q --cache "$C2" >"$WORK/rss.ids"
rss "$(seed "$C3")" build "$M" -q --cache "$C3" --jobs 1 >"$WORK/rss.j1"
rss true build "$M" -q --cache "$WARM" >"$WORK/rss.warm"
read -r rss_cold hwm_cold cpu_cold own_cold <"$WORK/rss.cold"
read -r rss_ids hwm_ids cpu_ids own_ids <"$WORK/rss.ids"
read -r _ _ cpu_j1 own_j1 <"$WORK/rss.j1"
read -r rss_warm hwm_warm cpu_warm own_warm <"$WORK/rss.warm"

# ---------------------------------------------------------------------------
jq -s '.[0] + [.[1:][].results[] | .min = (.times | min)]' "$WORK/cold.json" "$WORK/warm.json" "$WORK/sandbox.json" >"$WORK/all.json"
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
t_version=$(get "dispatch --version" mean)
t_unshare0=$(get "unshare true" mean)
t_unshare=$(get "unshare -n true" mean)

c_mean() { get "$1" mean; }
c_min() { get "$1" min; }
cold_min=$(c_min "${NAMES[0]}")
ids_min=$(c_min "${NAMES[1]}")
seq_min=$(c_min "${NAMES[3]}")
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

echo
echo "machine: $NPROC CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(gcc --version | head -1)"
printf 'other programs used %.1f CPU-s of the %.1f available during the %.0f s of measurements (load average before %s, after %s)\n' \
	"$other_cpu" "$(awk -v e="$elapsed" -v n="$NPROC" 'BEGIN { print e * n }')" "$elapsed" "$load_before" "$load_after"
echo "${npairs} (object, target) pairs of $MANIFEST; ${RUNS} interleaved rounds (warm: ${WRUNS} runs)"
echo
printf '%-32s %17s %8s %8s %8s\n' "what" "wall mean ± σ, s" "min, s" "user, s" "sys, s"
for n in "${NAMES[@]}" "dispatch warm (all cached)"; do
	jq -r --arg n "$n" '.[] | select(.command == $n) |
		"\(.command)\t\(.mean)\t\(.stddev // 0)\t\(.min)\t\(.user)\t\(.system)"' "$WORK/all.json" |
		awk -F'\t' '{ printf "%-32s %9.3f ± %5.3f %8.3f %8.2f %8.2f\n", $1, $2, $3, $4, $5, $6 }'
done
echo
printf '%-44s %8s %8s  %s\n' "ratio" "of means" "of mins" "goal"
printf '%-44s %7sx %7sx  %s\n' "sequential / dispatch cold (new cache)" "$(ratio "$seq" "$cold")" \
	"$(ratio "$seq_min" "$cold_min")" ">= 1.8x: $(verdict "$(ratio "$seq" "$cold")" ">=" 1.8)"
printf '%-44s %7sx %7sx  %s\n' "sequential / dispatch cold (ids known)" "$(ratio "$seq" "$ids")" \
	"$(ratio "$seq_min" "$ids_min")" ">= 1.8x: $(verdict "$(ratio "$seq" "$ids")" ">=" 1.8)"
printf '%-44s %7sx %7sx  %s\n' "sequential / xargs -P $NPROC" "$(ratio "$seq" "$par")" \
	"$(ratio "$seq_min" "$(c_min "${NAMES[4]}")")" "(context: the same commands, $NPROC at a time)"
printf '%-44s %7sx %7sx  %s\n' "dispatch -j1 / sequential" "$(ratio "$j1" "$seq")" \
	"$(ratio "$(c_min "${NAMES[2]}")" "$seq_min")" "(context: dispatch's own cost, one job)"
printf '%-44s %8s %8s  %s\n' "warm / cold (new cache)" "$(pct "$warm" "$cold")" "" \
	"<= 2%: $(verdict "$(ratio "$warm" "$cold")" "<=" 0.02)"
printf '%-44s %8s %8s  %s\n' "warm / cold (ids known)" "$(pct "$warm" "$ids")" "" \
	"<= 2%: $(verdict "$(ratio "$warm" "$ids")" "<=" 0.02)"
echo
printf 'toolchain identities (cold new cache - ids known): %.2f s\n' "$(awk -v a="$cold" -v b="$ids" 'BEGIN { print a - b }')"
ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x * 1000 }'; }
printf 'start-up: dispatch --version %s ms (true: %s ms; %d shared libraries)\n' "$(ms "$t_version")" "$(ms "$t_true")" \
	"$(ldd "$D" 2>/dev/null | grep -c '=>' || true)"
printf 'sandbox: true %s ms, unshare true %s ms, unshare -n true %s ms: a network namespace costs %s ms per build step (%d runs each)\n' \
	"$(ms "$t_true")" "$(ms "$t_unshare0")" "$(ms "$t_unshare")" \
	"$(awk -v a="$t_unshare" -v b="$t_unshare0" 'BEGIN { printf "%.2f", (a - b) * 1000 }')" "$SRUNS"
echo "peak RSS, /usr/bin/time -v (dispatch or its largest child) / dispatch alone (VmHWM):"
printf '  cold (new cache) %6d / %6d KiB\n  cold (ids known) %6d / %6d KiB\n  warm             %6d / %6d KiB\n' \
	"$rss_cold" "$hwm_cold" "$rss_ids" "$hwm_ids" "$rss_warm" "$hwm_warm"
echo "CPU, one run each: all processes (/usr/bin/time) / dispatch's own threads, without compilers:"
printf '  cold (new cache) %6.2f / %5.2f s\n  cold (ids known) %6.2f / %5.2f s\n  cold -j1         %6.2f / %5.2f s\n  warm             %6.2f / %5.2f s\n' \
	"$cpu_cold" "$own_cold" "$cpu_ids" "$own_ids" "$cpu_j1" "$own_j1" "$cpu_warm" "$own_warm"
if [[ -n $JSON_OUT ]]; then
	jq --argjson rss "[$rss_cold, $hwm_cold, $rss_ids, $hwm_ids, $rss_warm, $hwm_warm]" \
		--argjson cpu "[$cpu_cold, $own_cold, $cpu_ids, $own_ids, $cpu_j1, $own_j1, $cpu_warm, $own_warm]" \
		--arg other "$other_cpu" --arg elapsed "$elapsed" \
		'{results: ., rss_kib: {cold: $rss[0:2], ids_known: $rss[2:4], warm: $rss[4:6]},
		  cpu_s_total_own: {cold: $cpu[0:2], ids_known: $cpu[2:4], j1: $cpu[4:6], warm: $cpu[6:8]},
		  other_cpu_s: ($other | tonumber), elapsed_s: ($elapsed | tonumber)}' "$WORK/all.json" >"$JSON_OUT"
fi
echo
echo "commands (W=$WORK, removed on exit; dispatch = a copy of $DISPATCH):"
echo "  cold (new cache):  prepare: rm -rf CACHE;  run: dispatch build $MANIFEST -q --cache CACHE"
echo "  cold (ids known):  prepare: rm -rf CACHE; mkdir CACHE; cp <toolchains.json of an earlier run> CACHE/"
echo "                     run: dispatch build $MANIFEST -q --cache CACHE   (-j1 row adds --jobs 1)"
echo "  warm:              run: dispatch build $MANIFEST -q --cache <populated CACHE>"
echo "  xargs:             xargs -d '\\n' -n 1 -P $NPROC bash -ec < <the lines below>"
echo "  sequential:        LC_ALL=C SOURCE_DATE_EPOCH=0, then one by one:"
sed "s|$WORK/|\$W/|g; s|^|    |" "$WORK/seq.cmds"
