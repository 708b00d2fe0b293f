# Cross-compiling for s390x (s390x-linux-gnu, Debian s390x) against the private sysroot made by
# scripts/sysroot s390x (cache variable DISPATCH_SYSROOT, default
# .cache/sysroot/s390x). Used by scripts/foreign:
#   cmake -S . -B build-s390x -G Ninja -DDISPATCH_AGENT_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-s390x.cmake
# Run the results with: env QEMU_LD_PREFIX=.cache/sysroot/s390x build-s390x/agent/dispatch-agent
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(DISPATCH_CROSS_TRIPLE s390x-linux-gnu)
set(DISPATCH_DEBIAN_ARCH s390x)
set(DISPATCH_QEMU qemu-s390x-static)
include("${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake")
