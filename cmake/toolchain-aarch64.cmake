# Cross-compiling for aarch64 (aarch64-linux-gnu, Debian arm64) against the private sysroot made by
# scripts/sysroot arm64 (cache variable DISPATCH_SYSROOT, default
# .cache/sysroot/arm64). Used by scripts/foreign:
#   cmake -S . -B build-aarch64 -G Ninja -DDISPATCH_AGENT_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
# Run the results with: env QEMU_LD_PREFIX=.cache/sysroot/arm64 build-aarch64/agent/dispatch-agent
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(DISPATCH_CROSS_TRIPLE aarch64-linux-gnu)
set(DISPATCH_DEBIAN_ARCH arm64)
set(DISPATCH_QEMU qemu-aarch64-static)
include("${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake")
