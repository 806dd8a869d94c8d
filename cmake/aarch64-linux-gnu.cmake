# SPDX-License-Identifier: MIT
# CMake toolchain file: cross-build leash for aarch64 Linux with Debian's
# gcc-aarch64-linux-gnu, and run its tests under qemu-user.
#
#   bash scripts/deps-aarch64.sh       # once, as root (make test-aarch64 does it)
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# Where the target's files come from (see scripts/deps-aarch64.sh):
#   - the C library and start files: libc6-dev-arm64-cross
#     (/usr/aarch64-linux-gnu, the compiler's default sysroot);
#   - zlib, libdw and the C library qemu loads: Debian multiarch arm64
#     packages (/usr/lib/aarch64-linux-gnu, /usr/include);
#   - Criterion and nanomsg: unpacked into LEASH_AARCH64_PREFIX (default
#     /opt/leash-aarch64), because their arm64 packages would displace the
#     amd64 ones.
# Test executables carry that prefix as an RPATH (not RUNPATH, so that it
# also finds libcriterion's own dependency, libnanomsg), so they run the
# same under CMAKE_CROSSCOMPILING_EMULATOR and when started directly
# through binfmt_misc (as tests start helper programs).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(_triple aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${_triple}-gcc)
set(CMAKE_ASM_COMPILER ${_triple}-gcc)

if(DEFINED ENV{LEASH_AARCH64_PREFIX})
  set(LEASH_AARCH64_PREFIX "$ENV{LEASH_AARCH64_PREFIX}")
elseif(NOT LEASH_AARCH64_PREFIX)
  set(LEASH_AARCH64_PREFIX /opt/leash-aarch64)
endif()
# try_compile projects re-read this file: hand them the prefix.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES LEASH_AARCH64_PREFIX)
set(_libdir "${LEASH_AARCH64_PREFIX}/usr/lib/${_triple}")

# Libraries and headers: the target's only; programs: the host's.
set(CMAKE_FIND_ROOT_PATH / "${LEASH_AARCH64_PREFIX}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/${_triple}/pkgconfig:/usr/share/pkgconfig:${_libdir}/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${_libdir} -Wl,-rpath,${_libdir} -Wl,--disable-new-dtags")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_libdir}")

find_program(LEASH_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(LEASH_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${LEASH_QEMU_AARCH64}")
endif()
