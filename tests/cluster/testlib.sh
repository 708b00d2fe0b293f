# testlib.sh - what the cluster tests share: the cluster (lib.sh, cluster.sh),
# PASS/FAIL checks and small API helpers. Sourced by tests/cluster/*.sh:
#
#   . "$(dirname "$0")/testlib.sh"      # needs root; stops the cluster on exit
#   cluster_start x86_64 aarch64
#   check "what is promised" "$(actual)" "expected"
#   checks_done NAME                    # the summary line; fails if a check did
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/cluster.sh"
net_require_root
trap cluster_stop EXIT

pass=0 fail=0
check() {
	if [ "$2" = "$3" ]; then
		echo "PASS: $1"
		pass=$((pass + 1))
	else
		echo "FAIL: $1: expected '$3', got '$2'"
		fail=$((fail + 1))
	fi
}
checks_done() {
	echo "$1: $pass passed, $fail failed"
	if [ $fail -ne 0 ] && [ -n "${CW:-}" ]; then
		# The work dir goes with the cluster: what the daemons warned about, for the failure above.
		echo "--- warnings in the logs:"
		grep -h -i "warning\|error" "$CW"/agent-*.log "$CW/dispatchd.log" 2>/dev/null | tail -40 || true
	fi
	[ $fail -eq 0 ]
}

api() { python3 "$here/api.py" "$@"; }
# jq_ EXPR: EXPR (Python) of the JSON document d read from stdin.
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# node_of ISA: the id of the (first) node of that ISA; node_state ID: its state.
node_of() { cluster_cli nodes --json | jq_ "[n['id'] for n in d['nodes'] if n['isa'] == '$1'][0]"; }
node_state() { cluster_cli nodes --json | jq_ "[n['state'] for n in d['nodes'] if n['id'] == '$1'][0]"; }

# wait_for INSTANCE CONDITION [SECONDS]: until CONDITION (Python, on the
# instance's JSON d) holds; fails the test after SECONDS (120).
wait_for() {
	local t
	for t in $(seq $((${3:-120} * 4))); do
		[ "$(api GET "/v1/instances/$1" | jq_ "$2")" = True ] && return 0
		sleep 0.25
	done
	api GET "/v1/instances/$1" >&2
	cluster_fail "instance $1 never got to: $2"
}

# walk_result INSTANCE: the walk's result values that must be bit-identical.
walk_result() {
	local out
	out=$(cluster_cli result "$1" --json 2>&1) &&
		jq_ 'json.dumps([d["state"]["values"]["x"], d["state"]["values"]["acc"]])' <<<"$out" 2>/dev/null && return 0
	# Say why, for the failure that follows.
	echo "walk_result $1: $out" >&2
	api GET "/v1/instances/$1" >&2
	grep -h "'$1'" "$CW"/agent-*.log "$CW/dispatchd.log" >&2 || true
}
