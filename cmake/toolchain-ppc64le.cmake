# Cross-compiling for ppc64le (powerpc64le-linux-gnu, Debian ppc64el) against the private sysroot made by
# scripts/sysroot ppc64el (cache variable DISPATCH_SYSROOT, default
# .cache/sysroot/ppc64el). Used by scripts/foreign:
#   cmake -S . -B build-ppc64le -G Ninja -DDISPATCH_AGENT_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-ppc64le.cmake
# Run the results with: env QEMU_LD_PREFIX=.cache/sysroot/ppc64el build-ppc64le/agent/dispatch-agent
set(CMAKE_SYSTEM_PROCESSOR ppc64le)
set(DISPATCH_CROSS_TRIPLE powerpc64le-linux-gnu)
set(DISPATCH_DEBIAN_ARCH ppc64el)
set(DISPATCH_QEMU qemu-ppc64le-static)
include("${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake")
