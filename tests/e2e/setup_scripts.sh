#!/usr/bin/env bash
# setup_scripts.sh - the setup scripts' own checks: scripts/sysroot must find
# an enabled architecture in dpkg's list whatever the timing of the pipe (it
# runs under pipefail, where `dpkg ... | grep -q` used to fail when grep
# stopped reading before dpkg wrote its last line). A fake dpkg on PATH writes
# one line at a time with pauses, so that the old pipe failed every time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_setup

mkdir -p "$WORK/bin" "$WORK/lists" "$WORK/cache"
cat >"$WORK/bin/dpkg" <<'EOS'
#!/usr/bin/env bash
[ "${1:-}" = --print-foreign-architectures ] || exit 2
for a in arm64 armhf s390x ppc64el; do printf '%s\n' "$a"; sleep 0.2; done
EOS
chmod +x "$WORK/bin/dpkg"

# With no apt index (an empty lists directory) the script stops at the next
# check: that message means the architecture check passed.
out=$(PATH="$WORK/bin:$PATH" DISPATCH_APT_LISTS="$WORK/lists" DISPATCH_SYSROOT_CACHE="$WORK/cache" \
	bash "$DISPATCH_SOURCE_DIR/scripts/sysroot" armhf 2>&1 || true)
check_contains "armhf, listed second, is seen as enabled" "$out" "no apt index for armhf"
check_not_contains "and not reported missing" "$out" "is not enabled"
out=$(PATH="$WORK/bin:$PATH" DISPATCH_APT_LISTS="$WORK/lists" DISPATCH_SYSROOT_CACHE="$WORK/cache" \
	bash "$DISPATCH_SOURCE_DIR/scripts/sysroot" riscv64 2>&1 || true)
check_contains "an architecture Debian 12 lacks is refused by name" "$out" "riscv64"

e2e_finish
