# cohort — the front door. `make run` starts a local 3-replica cluster;
# `make test` runs every test under the release and the sanitizer builds.
# Both install missing Debian packages first (scripts/deps.sh).

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
SEEDS      ?= 1..1000
PROFILE    ?= default
MINUTES    ?= 5
CTEST_ARGS ?=
# The ASan build runs this percent of each simulator seed block (the
# release build runs them all): memory errors show in the first seeds as
# well, and the sanitizer is 4-10 times slower.
ASAN_SIM_SEEDS_SCALE ?= 50

.PHONY: all deps build asan tsan run test test-release test-asan test-tsan \
        sim soak fuzz bench format format-check tidy clean install

all: build

deps:
	@scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt | deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

$(ASAN_BUILD)/Makefile: CMakeLists.txt | deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOHORT_SANITIZE=ON \
	    -DCOHORT_SIM_SEEDS_SCALE=$(ASAN_SIM_SEEDS_SCALE) >/dev/null

$(TSAN_BUILD)/Makefile: CMakeLists.txt | deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOHORT_TSAN=ON >/dev/null

build: deps $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps $(ASAN_BUILD)/Makefile
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

tsan: deps $(TSAN_BUILD)/Makefile
	@cmake --build $(TSAN_BUILD) -j $(JOBS)

run: build
	$(BUILD)/cohort up

test: test-release test-asan test-tsan
	@echo "make test: release, ASan+UBSan and TSan builds passed"

test-release: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: asan
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS) -LE release-only $(CTEST_ARGS)

# ThreadSanitizer: the unit, fuzz-smoke, tidy and system tests (the
# simulator is single-threaded, so its seed blocks are left out). A report
# fails the test: halt_on_error stops the process with exitcode 66, and the
# system tests scan the replicas' logs for "WARNING: ThreadSanitizer".
test-tsan: tsan
	@cd $(TSAN_BUILD) && \
	    TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
	    ctest --output-on-failure -j $(JOBS) -LE 'sim|release-only' $(CTEST_ARGS)

# Install the command, the systemd unit template cohort@.service, a sample
# config, libcohort-client (shared and static, headers, cohort-client.pc)
# and the docs under PREFIX (staged under DESTDIR if set), from the
# release build. docs/OPERATIONS.md says what goes where.
PREFIX ?= /usr/local
install: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target cohort cohort_client \
	    cohort_client_static
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

sim: build
	$(BUILD)/cohort sim --seeds $(SEEDS) --profile $(PROFILE)

soak: build
	$(BUILD)/cohort sim --soak $(MINUTES) --profile $(PROFILE)

# libFuzzer runs of every fuzz target (tests/fuzz/README.md), one after
# another, FUZZ_SECONDS each, in build-fuzz/ (clang); crashes are kept in
# build-fuzz/crashes/<target>/ and make the target fail.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= resp message transport wal snapshot meta replica client kv \
                kvsnap http

$(FUZZ_BUILD)/Makefile: CMakeLists.txt | deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCOHORT_FUZZ=ON >/dev/null

fuzz: deps $(FUZZ_BUILD)/Makefile
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(FUZZ_TARGETS:%=%_fuzz)
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The side-by-side benchmark (bench/run.sh): installs etcd, ZooKeeper and
# Redis from Debian, runs every workload against each (about 20 minutes) and
# writes bench/RESULTS.md. BENCH_QUICK=1 make bench is a 7-minute smoke test.
bench: deps
	@bash bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# The core and common code must stay pure: no clocks, randomness, I/O,
# threads or allocation outside *_init (see STYLE.md §7).
tidy:
	@scripts/tidy.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
