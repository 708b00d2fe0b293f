# Shared part of cmake/toolchain-<isa>.cmake (not a toolchain file itself).
# Cross-compiles with Debian's <triple>-gcc against a private sysroot made by
# scripts/sysroot: the foreign libraries' headers in usr/include[/<triple>],
# libraries in usr/lib/<triple> and lib/<triple>, .pc files in
# usr/lib/<triple>/pkgconfig. (gcc still finds its own cross libc in
# /usr/<triple> first; both are glibc 2.36.)
#
# The including file sets DISPATCH_CROSS_TRIPLE, DISPATCH_DEBIAN_ARCH,
# DISPATCH_QEMU and CMAKE_SYSTEM_PROCESSOR.

set(CMAKE_SYSTEM_NAME Linux)

get_filename_component(_dispatch_top "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(DISPATCH_SYSROOT "${_dispatch_top}/.cache/sysroot/${DISPATCH_DEBIAN_ARCH}"
	CACHE PATH "sysroot with the ${DISPATCH_DEBIAN_ARCH} libraries (scripts/sysroot ${DISPATCH_DEBIAN_ARCH})")
# try_compile() projects read this file again: hand them the cache value.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DISPATCH_SYSROOT)

if(NOT EXISTS "${DISPATCH_SYSROOT}/usr/lib/${DISPATCH_CROSS_TRIPLE}/pkgconfig")
	message(FATAL_ERROR "no ${DISPATCH_DEBIAN_ARCH} sysroot at ${DISPATCH_SYSROOT}: "
		"run scripts/sysroot ${DISPATCH_DEBIAN_ARCH} (or set DISPATCH_SYSROOT)")
endif()

set(CMAKE_C_COMPILER "${DISPATCH_CROSS_TRIPLE}-gcc")
set(CMAKE_SYSROOT "${DISPATCH_SYSROOT}")

# Libraries, headers and CMake packages from the sysroot only; programs (e.g.
# pkg-config) from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg_check_modules: the host pkg-config, reading only the sysroot's .pc files
# and prefixing their -I/-L paths with the sysroot.
set(ENV{PKG_CONFIG_LIBDIR}
	"${DISPATCH_SYSROOT}/usr/lib/${DISPATCH_CROSS_TRIPLE}/pkgconfig:${DISPATCH_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${DISPATCH_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")

# Transitive shared-library dependencies (libcurl -> libnghttp2, ...) are
# looked up by the linker, not linked directly.
set(_dispatch_rpath_link
	"-Wl,-rpath-link,${DISPATCH_SYSROOT}/lib/${DISPATCH_CROSS_TRIPLE}:${DISPATCH_SYSROOT}/usr/lib/${DISPATCH_CROSS_TRIPLE}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_dispatch_rpath_link}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_dispatch_rpath_link}")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_dispatch_rpath_link}")

# add_test()/ctest run foreign executables through qemu-user with the
# sysroot's dynamic loader and libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR "${DISPATCH_QEMU};-L;${DISPATCH_SYSROOT}")
