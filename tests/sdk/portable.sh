#!/usr/bin/env bash
# State written by the SDK on every ISA is read back bit for bit on every other
# ISA: little- and big-endian, 32- and 64-bit, each binary on its own
# (emulated) CPU. The binaries link the SDK through the builder ("sdk": true).
set -euo pipefail

dispatch=${DISPATCH:?set DISPATCH to the dispatch binary}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sdk-portable.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$dispatch" artifacts export "$here/portable.json" --cache "$work/cache" --out "$work/bin" -q
targets=$(ls "$work/bin")
[ "$(echo "$targets" | wc -l)" -ge 4 ] || { echo "FAIL: fewer than 4 targets built: $targets"; exit 1; }

isa_of() { echo "${1%%:*}"; }
fail=0 pairs=0
for w in $targets; do
	state="$work/state-$(isa_of "$w")"
	mkdir -p "$state"
	set +e
	DISPATCH_STATE_OUT=$state DISPATCH_ISA=$(isa_of "$w") "$work/bin/$w/portable" write
	rc=$?
	set -e
	[ $rc -eq 85 ] || { echo "FAIL: writer on $w exited $rc, expected 85 (checkpointed)"; fail=1; continue; }
	for r in $targets; do
		pairs=$((pairs + 1))
		if ! out=$(DISPATCH_STATE=$state DISPATCH_ISA=$(isa_of "$r") "$work/bin/$r/portable" check); then
			echo "FAIL: $out"
			fail=1
		fi
	done
done
echo "$pairs writer/reader pairs across: $(echo $targets)"
[ $fail -eq 0 ] && echo "PASS: SDK state is bit-identical across every pair of ISAs"
exit $fail
