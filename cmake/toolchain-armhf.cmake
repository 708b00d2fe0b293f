# Cross-compiling for armhf (arm-linux-gnueabihf, Debian armhf) against the private sysroot made by
# scripts/sysroot armhf (cache variable DISPATCH_SYSROOT, default
# .cache/sysroot/armhf). Used by scripts/foreign:
#   cmake -S . -B build-armhf -G Ninja -DDISPATCH_AGENT_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-armhf.cmake
# Run the results with: env QEMU_LD_PREFIX=.cache/sysroot/armhf build-armhf/agent/dispatch-agent
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(DISPATCH_CROSS_TRIPLE arm-linux-gnueabihf)
set(DISPATCH_DEBIAN_ARCH armhf)
set(DISPATCH_QEMU qemu-arm-static)
# 64-bit off_t/ino_t (large file support, the usual flag for 32-bit builds):
# without it readdir() fails with EOVERFLOW under qemu-user on a 64-bit host
# (ext4 hands out 64-bit directory cookies), and files over 2 GiB fail anyway.
# time_t stays 32-bit: -D_TIME_BITS=64 would break the ABI of libarchive's
# and libcurl's time_t functions in Debian 12's armhf libraries.
set(CMAKE_C_FLAGS_INIT "-D_FILE_OFFSET_BITS=64")
include("${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake")
