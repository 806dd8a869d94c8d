# SPDX-License-Identifier: MIT
# Thin wrapper around CMake/CTest. See README.md.
#
#   make [build]          configure build/ and build everything (tests,
#                         benchmarks and fuzz targets included; the
#                         sanitizer variants of the library only for install)
#   make deps [DEPS=sets] install missing Debian packages (scripts/deps.sh;
#                         sets: build demo test bench, default test)
#   make demo [SCENARIO=name]   demo deps + library, examples and CLI + run
#                         build/example_$(SCENARIO)
#   make test             test deps + build + all tests, then stress tests under
#                         ASan+UBSan (build-asan/) and TSan (build-tsan/),
#                         then unit and stress tests built by clang
#                         (build-clang/: compiler-dependent bugs); the TSan
#                         and clang builds check the lock order at run time
#                         (LEASH_LOCKRANK, src/lockrank.h)
#   make test-fast | test-asan | test-tsan | test-clang | test-core
#   make test-core        the core alone (build-core/: -DLEASH_DIAGNOSTICS=OFF,
#                         src/diag/ replaced by the no-op observer): the
#                         core's unit and stress tests and the layering
#                         check; part of `make test`
#   make test-aarch64     cross-build build-aarch64/ for aarch64 (Debian's
#                         gcc-aarch64-linux-gnu) and run the unit and stress
#                         tests under qemu-user; not part of `make test`
#   make bench [BENCH_MODE=quick|full]
#   make scale [SCALE_PROCS="1 2 4 8 16"] [SCALE_QUICK=1]   bench/scale.sh:
#                         multi-core scaling of leash and Go (fan-out,
#                         ping-pong pairs, a 16x16 buffered channel) at
#                         1..nproc procs; table in build/bench/SCALE.md
#   make install [PREFIX=/usr/local]   needs build dependencies only: builds
#                         what it installs (a fresh build/ has no tests)
#   make clean
#
# Variables: CMAKE_ARGS (extra -D options for every configure), CTEST_ARGS,
# BUILD_DIR / ASAN_DIR / TSAN_DIR, CC (only read when a build dir is first
# configured; use another BUILD_DIR or `make clean` to switch compilers).

BUILD_DIR  ?= build
ASAN_DIR   ?= build-asan
TSAN_DIR   ?= build-tsan
CLANG_DIR  ?= build-clang
CORE_DIR   ?= build-core
AARCH64_DIR ?= build-aarch64
SCENARIO   ?= demo
BENCH_MODE ?= quick
PREFIX     ?= /usr/local
CMAKE_ARGS ?=
CTEST_ARGS ?=
DEPS       ?= test

# What `make build` and the test builds turn on (all OFF in a plain
# configure: the library, examples and CLI need build dependencies only).
# The development builds leave out the sanitizer variants of the library
# (libleash-asan.a, libleash-tsan.a): the install tests build and check
# them in a tree of their own, and `make install` turns them back on.
DEV_OPTS := -DLEASH_BUILD_TESTS=ON -DLEASH_BUILD_BENCH=ON -DLEASH_BUILD_FUZZ=ON \
            -DLEASH_SANITIZER_VARIANTS=OFF

NPROC     := $(shell nproc 2>/dev/null || echo 2)
# Tests at once: one more than the CPUs where most tests are unit tests
# (many wait on child processes, sockets or timers: at nproc a third of
# the CPU time went idle), as many as the CPUs for the sanitizer stages,
# whose stress tests keep every CPU busy.
TEST_JOBS   ?= $(shell echo $$(($(NPROC) + 1)))
STRESS_JOBS ?= $(NPROC)
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo Unix Makefiles)
ARCH      := $(shell uname -m)

# The TSan runtime of gcc 12 / clang 14 cannot cope with the high-entropy
# mmap randomisation of recent kernels (vm.mmap_rnd_bits > 28 on x86_64 can
# give "FATAL: ThreadSanitizer: unexpected memory mapping"). Running with
# ASLR off (setarch -R, inherited by every child) avoids it.
NOASLR := $(shell setarch $(ARCH) -R true >/dev/null 2>&1 && echo setarch $(ARCH) -R)

export ASAN_OPTIONS ?= detect_leaks=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1

# configure(dir, extra cmake args): the generator is chosen only on the first
# configure of a directory (CMake refuses to change it later).
define configure
	@if [ -f "$(1)/CMakeCache.txt" ]; then \
	  cmake -S . -B "$(1)" $(2) $(CMAKE_ARGS); \
	else \
	  cmake -S . -B "$(1)" -G "$(GENERATOR)" $(2) $(CMAKE_ARGS); \
	fi
endef

.NOTPARALLEL:
.DEFAULT_GOAL := build
.PHONY: all build deps demo test test-fast test-asan test-tsan \
        build-asan build-tsan build-clang test-clang build-core test-core \
        bench scale install clean help \
        build-aarch64 test-aarch64

all: build

help:
	@awk '/SPDX-License-Identifier/ { next } !/^#/ { exit } seen++ { sub(/^# ?/, ""); print }' Makefile

deps:
	@bash scripts/deps.sh $(DEPS)

build:
	$(call configure,$(BUILD_DIR),$(DEV_OPTS))
	cmake --build "$(BUILD_DIR)" -j $(NPROC)

# A fresh build/ is configured without tests (demo dependencies suffice);
# one that `make build` configured keeps its options.
demo:
	@bash scripts/deps.sh demo
	$(call configure,$(BUILD_DIR),)
	cmake --build "$(BUILD_DIR)" -j $(NPROC)
	@exe="$(BUILD_DIR)/example_$(SCENARIO)"; \
	if [ ! -x "$$exe" ]; then \
	  echo "no example named '$(SCENARIO)' ($$exe does not exist); available:" >&2; \
	  for f in $(BUILD_DIR)/example_*; do \
	    [ -x "$$f" ] && echo "  $$(basename $$f | sed 's/^example_//')" >&2; \
	  done; \
	  exit 1; \
	fi; \
	echo "== $$exe"; \
	"$$exe"

test:
	@bash scripts/deps.sh test
	$(MAKE) --no-print-directory test-fast
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-tsan
	$(MAKE) --no-print-directory test-clang
	$(MAKE) --no-print-directory test-core

test-fast: build
	ctest --test-dir "$(BUILD_DIR)" --output-on-failure -j $(TEST_JOBS) $(CTEST_ARGS)

ASAN_OPTS := $(DEV_OPTS) -DLEASH_SANITIZE=address -DLEASH_WERROR=OFF
TSAN_OPTS := $(DEV_OPTS) -DLEASH_SANITIZE=thread -DLEASH_WERROR=OFF -DLEASH_LOCKRANK=ON

# build-asan and build-tsan build everything; the test stages build only
# what the stress tests run (the `stress_tests` target), which halves the
# time `make test` spends compiling.
build-asan:
	$(call configure,$(ASAN_DIR),$(ASAN_OPTS))
	cmake --build "$(ASAN_DIR)" -j $(NPROC)

build-tsan:
	$(call configure,$(TSAN_DIR),$(TSAN_OPTS))
	cmake --build "$(TSAN_DIR)" -j $(NPROC)

test-asan:
	$(call configure,$(ASAN_DIR),$(ASAN_OPTS))
	cmake --build "$(ASAN_DIR)" -j $(NPROC) --target stress_tests
	ctest --test-dir "$(ASAN_DIR)" --output-on-failure -j $(STRESS_JOBS) -L stress $(CTEST_ARGS)

# stress_observer runs 30 s per LEASH_PROCS value here (issue 13's bar:
# every diagnostic under full traffic, lock ranks checked, TSan on).
test-tsan:
	$(call configure,$(TSAN_DIR),$(TSAN_OPTS))
	cmake --build "$(TSAN_DIR)" -j $(NPROC) --target stress_tests
	STRESS_OBSERVER_SECONDS=30 $(NOASLR) ctest --test-dir "$(TSAN_DIR)" --output-on-failure -j $(STRESS_JOBS) -L stress $(CTEST_ARGS)

# The library, tests and examples built by clang (the fuzz targets are
# clang's already): clang optimises differently (it reuses errno's address
# across calls, folds identical calls), which has found bugs gcc hid.
build-clang:
	$(call configure,$(CLANG_DIR),$(DEV_OPTS) -DCMAKE_C_COMPILER=clang -DLEASH_LOCKRANK=ON)
	cmake --build "$(CLANG_DIR)" -j $(NPROC)

# Install, fuzz and repo checks are the same whatever compiled the code
# (test-fast runs them), and so is the page a headless browser renders.
test-clang: build-clang
	LEASH_TEST_NO_BROWSER=1 ctest --test-dir "$(CLANG_DIR)" --output-on-failure -j $(TEST_JOBS) -L 'unit|stress' $(CTEST_ARGS)

# The core without src/diag/ (docs/DESIGN-NOTES.md, "Layering"): it must
# build, and its own tests pass, with the no-op observer.
build-core:
	$(call configure,$(CORE_DIR),-DLEASH_BUILD_TESTS=ON -DLEASH_DIAGNOSTICS=OFF -DLEASH_SANITIZER_VARIANTS=OFF)
	cmake --build "$(CORE_DIR)" -j $(NPROC)

# test_doc_samples runs the documented dumps: diagnostics, not the core.
test-core: build-core
	ctest --test-dir "$(CORE_DIR)" --output-on-failure -j $(TEST_JOBS) -L 'unit|stress' -E '^test_doc_samples$$' $(CTEST_ARGS)

# aarch64 under qemu-user (scripts/deps-aarch64.sh installs the cross
# compiler, qemu, binfmt_misc and the arm64 libraries; cmake/aarch64-linux-gnu.cmake
# sets qemu as CMAKE_CROSSCOMPILING_EMULATOR; timeouts are scaled by
# LEASH_EMULATOR_TIMEOUT_SCALE). Left out, and why:
#   - the fuzz targets are not built in a cross build (host clang);
#   - AARCH64_SKIP: the Criterion tests that expect the deadlock detector
#     to fire. It never does under qemu-user, whose own thread shows in
#     /proc/self/task: the detector counts the process's threads and stays
#     silent while one is unknown to it (as it must for a user's thread).
#     The tests that expect it to stay silent still run.
AARCH64_TEST_EXCLUDE ?=
AARCH64_SKIP ?= nilchan/main_on_null_is_gos_deadlock|$\
  deadlock/main_on_a_nil_channel|$\
  deadlock/main_waits_for_a_sender_that_never_comes|$\
  deadlock/mutexes_in_opposite_orders|$\
  deadlock/plain_thread_parked_in_leash_cannot_wake_anyone|$\
  deadlock/a_ticker_nobody_reads_does_not_hide_it|$\
  deadlock/a_pending_after_nobody_reads_does_not_hide_it|$\
  deadlock/a_deadline_nobody_waits_for_does_not_hide_it|$\
  deadlock/the_debug_endpoint_does_not_hide_it
AARCH64_CRITERION_ARGS := -j1;--verbose;--filter=!($(AARCH64_SKIP))

build-aarch64:
	@bash scripts/deps-aarch64.sh
	$(call configure,$(AARCH64_DIR),$(DEV_OPTS) -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake \
	  "-DLEASH_TEST_EXCLUDE=$(AARCH64_TEST_EXCLUDE)" "-DLEASH_CRITERION_ARGS=$(AARCH64_CRITERION_ARGS)")
	cmake --build "$(AARCH64_DIR)" -j $(NPROC)

test-aarch64: build-aarch64
	ctest --test-dir "$(AARCH64_DIR)" --output-on-failure -j $(TEST_JOBS) -L 'unit|stress' $(CTEST_ARGS)

bench:
	@bash scripts/deps.sh bench
	$(call configure,$(BUILD_DIR),-DLEASH_BUILD_BENCH=ON)
	cmake --build "$(BUILD_DIR)" -j $(NPROC)
	BUILD_DIR="$(BUILD_DIR)" bash bench/run.sh $(BENCH_MODE)

# The script configures and builds the three programs it runs itself.
scale:
	@bash scripts/deps.sh bench
	BUILD_DIR="$(BUILD_DIR)" bash bench/scale.sh

# -U: the variants back to their default (on where the compiler has both
# sanitizers), whatever a development build left in the cache.
install:
	@bash scripts/deps.sh build
	$(call configure,$(BUILD_DIR),-ULEASH_SANITIZER_VARIANTS)
	cmake --build "$(BUILD_DIR)" -j $(NPROC) --target leash_installed
	cmake --install "$(BUILD_DIR)" --prefix "$(PREFIX)"

clean:
	rm -rf "$(BUILD_DIR)" "$(ASAN_DIR)" "$(TSAN_DIR)" "$(CLANG_DIR)" "$(AARCH64_DIR)" "$(CORE_DIR)"
