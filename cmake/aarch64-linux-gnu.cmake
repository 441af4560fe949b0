# Cross-compiles ms2vllm for 64-bit Arm Linux (AArch64) on an x86-64 Debian 12 host.
#
#   .ci/cross-arm64                                   # installs everything, builds, runs ctest
#   .ci/cross-arm64 --deps-only && cmake --preset arm64 && cmake --build --preset arm64 && ctest --preset arm64
#
# Compiler: Debian's g++-aarch64-linux-gnu (GCC 12.2, as the native g++). It brings its own glibc
# and libstdc++ headers and link stubs (libc6-dev-arm64-cross, libstdc++-12-dev-arm64-cross under
# /usr/aarch64-linux-gnu), which it searches before any --sysroot.
# Every other target library comes from a private sysroot of Debian 12's own arm64 packages,
# unpacked (not installed) by .ci/cross-arm64: TBB, simdjson, Boost, CLI11, nlohmann-json,
# GoogleTest, Google Benchmark, and the run-time libc6/libstdc++6 that qemu loads. Nothing goes
# into the host's dpkg database: Debian 12's libsimdjson-dev is not "Multi-Arch: same", so its
# amd64 and arm64 builds cannot be installed side by side, and a multiarch install would tie the
# host's library versions to the target's. With CMAKE_SYSROOT and the ONLY modes below,
# find_package() sees only the arm64 tree, never the host's amd64 packages.
#
# Tests: qemu-user runs the arm64 binaries; -L maps the target's absolute paths
# (/lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu/libtbb.so.12, ...) into the sysroot.
# CMAKE_CROSSCOMPILING_EMULATOR makes ctest, gtest_discover_tests() and add_test(COMMAND <target>)
# use it. A test that starts an arm64 program by path itself must put the emulator in front:
# there is no binfmt_misc here to do it.
#
# The sysroot is <source>/build/arm64-sysroot; set MS2VLLM_ARM64_SYSROOT (-D or environment) to use
# another.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT MS2VLLM_ARM64_SYSROOT)
  if(DEFINED ENV{MS2VLLM_ARM64_SYSROOT})
    set(MS2VLLM_ARM64_SYSROOT "$ENV{MS2VLLM_ARM64_SYSROOT}")
  else()
    get_filename_component(MS2VLLM_ARM64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build/arm64-sysroot" ABSOLUTE)
  endif()
endif()
set(MS2VLLM_ARM64_SYSROOT "${MS2VLLM_ARM64_SYSROOT}" CACHE PATH "Unpacked Debian 12 arm64 packages")
# try_compile() projects read this file again without our cache: hand the sysroot on to them.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MS2VLLM_ARM64_SYSROOT)

if(NOT EXISTS "${MS2VLLM_ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1")
  message(FATAL_ERROR "No arm64 sysroot at ${MS2VLLM_ARM64_SYSROOT}: "
                      "run .ci/cross-arm64 --deps-only to create it.")
endif()

set(CMAKE_SYSROOT "${MS2VLLM_ARM64_SYSROOT}")
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs (the emulator, code generators) come from the host; everything else from the sysroot.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(MS2VLLM_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(MS2VLLM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${MS2VLLM_QEMU_AARCH64};-L;${MS2VLLM_ARM64_SYSROOT}")
else()
  message(WARNING "qemu-aarch64 not found (Debian package qemu-user): arm64 tests cannot run here.")
endif()
