# Verge build. `make` builds build/verge; `make test` runs unit and end-to-end tests, both
# again against a build with AddressSanitizer and UBSan (build-asan/), a short scenario
# under Valgrind, and a short pass of every fuzz target (build-fuzz/).
CC       ?= cc
# Link-time optimisation: the hit path crosses client.c, cached.c, store.c and parser.c,
# and inlining across them cut its instructions by a tenth (make profile: 4,505 to 4,051
# Ir per hit). Fat objects: the unit tests link the same objects without it (-fno-lto),
# which keeps each of their links short.
OPT      ?= -O2 -g -flto=auto -ffat-lto-objects
B        ?= build
LLHTTP_DIR     ?= /usr/share/llhttp
LLHTTP_INCLUDE ?= /usr/share/include/llhttp

CFLAGS   += $(OPT) -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -D_GNU_SOURCE -pthread -Isrc -I$(LLHTTP_INCLUDE) -MMD -MP
LDLIBS   += -pthread -lyaml -lcares -lssl -lcrypto -luring

SRC      := $(sort $(wildcard src/core/*.c src/http/*.c src/dns/*.c src/cache/*.c src/edge/*.c src/diag/*.c src/admin/*.c))
OBJ      := $(SRC:%.c=$(B)/%.o)
LLHTTP_OBJ := $(B)/llhttp/llhttp.o $(B)/llhttp/api.o $(B)/llhttp/http.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

PYTHON   ?= /usr/bin/python3

.PHONY: all test unit unit-asan e2e e2e-epoll e2e-asan e2e-valgrind fuzz fuzz-short fuzz-build fuzz-coverage run run-demo bench bench-errors bench-cache profile clean format
all: $(B)/verge

$(B)/verge: $(B)/src/main.o $(OBJ) $(LLHTTP_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# llhttp is Node's parser; Debian ships its C sources. Built as is, with its own flags.
# Built with SSE4.2 it scans header names and values 16 bytes at a time (its own
# #ifdef __SSE4_2__): on when this machine's CPU has it, since what is built here runs
# here; such a binary needs a CPU with SSE4.2 (x86-64 since 2008). LLHTTP_SIMD= builds
# the byte-at-a-time parser.
LLHTTP_SIMD ?= $(shell grep -qw sse4_2 /proc/cpuinfo 2>/dev/null && echo -msse4.2)
$(B)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(LLHTTP_SIMD) -std=c11 -I$(LLHTTP_INCLUDE) -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fno-lto -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)
	@fail=0; pass=0; for t in $(UNIT_BIN); do \
	    if ./$$t; then pass=$$((pass+1)); else fail=$$((fail+1)); fi; done; \
	    echo "unit: $$pass passed, $$fail failed"; test $$fail -eq 0

e2e: $(B)/verge
	VERGE_BIN=$(CURDIR)/$(B)/verge $(PYTHON) -m pytest -q tests/e2e

# The same tests with io_uring: false: the loop waits in epoll and visitors are read and
# written with read() and writev(), the path of kernels and containers that refuse io_uring.
e2e-epoll: $(B)/verge
	VERGE_TEST_IO_URING=0 VERGE_BIN=$(CURDIR)/$(B)/verge $(PYTHON) -m pytest -q tests/e2e

# Memory errors, leaks at exit and undefined behaviour fail the run: the sanitizers log to
# build-asan/sanitizer.log.* and any such file is a failure.
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer
e2e-asan:
	rm -f build-asan/sanitizer.log.*
	$(MAKE) --no-print-directory B=build-asan OPT="-O1 -g $(SAN)" \
	    LDLIBS="$(SAN) $(LDLIBS)" build-asan/verge
	ASAN_OPTIONS=log_path=$(CURDIR)/build-asan/sanitizer.log:detect_leaks=1 \
	UBSAN_OPTIONS=log_path=$(CURDIR)/build-asan/sanitizer.log:print_stacktrace=1 \
	    VERGE_BIN=$(CURDIR)/build-asan/verge $(PYTHON) -m pytest -q tests/e2e
	@if ls build-asan/sanitizer.log.* >/dev/null 2>&1; then \
	    cat build-asan/sanitizer.log.*; echo "e2e-asan: sanitizer reports above"; exit 1; fi

# The unit tests against the same sanitizer build: a report stops the test and fails it.
unit-asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(MAKE) --no-print-directory B=build-asan OPT="-O1 -g $(SAN)" \
	    LDLIBS="$(SAN) $(LDLIBS)" unit

# A short scenario (tests/e2e/memcheck_scenario.py) with verge under Valgrind memcheck:
# any memory error or leak is its exit status, and fails the run.
VALGRIND := valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
            --num-callers=30 --log-file={dir}/valgrind.log
# With io_uring: false: memcheck cannot see what the kernel writes through a ring (the
# receives' bytes would look uninitialised) and its 3.19 does not run Verge's ring wait;
# the sanitizer run (e2e-asan) covers the ring's path.
e2e-valgrind: $(B)/verge
	VERGE_TEST_IO_URING=0 VERGE_PREFIX="$(VALGRIND)" VERGE_TIMEOUT_SCALE=6 VERGE_BIN=$(CURDIR)/$(B)/verge \
	    $(PYTHON) -m pytest -q tests/e2e/memcheck_scenario.py

# Fuzzing: libFuzzer targets (tests/fuzz/fuzz_*.c) built with clang, ASan and UBSan into
# build-fuzz/. `make fuzz` runs each for FUZZ_SECONDS, `make fuzz-short` for
# FUZZ_SHORT_SECONDS with the fixed seed FUZZ_SHORT_SEED (part of `make test`: the same
# pass everywhere, not a lottery; `make fuzz` explores with a new seed each run); a crash, leak, hang or UB report fails the run
# and names the reproducer. See docs/hardening.md.
FUZZ_CC            ?= clang
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                      -fno-omit-frame-pointer
FUZZ_TARGETS       ?= $(sort $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SECONDS       ?= 60
FUZZ_SHORT_SECONDS ?= 10
FUZZ_SHORT_SEED    ?= 1

.SECONDARY: $(B)/tests/fuzz/http_feed.o
$(B)/fuzz_%: tests/fuzz/fuzz_%.c $(B)/tests/fuzz/http_feed.o $(OBJ) $(LLHTTP_OBJ)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

fuzz-build:
	$(MAKE) --no-print-directory B=build-fuzz CC=$(FUZZ_CC) \
	    OPT="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_TARGETS:%=build-fuzz/%)

fuzz: fuzz-build
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: fuzz-build
	FUZZ_SEED=$(FUZZ_SHORT_SEED) tests/fuzz/run $(FUZZ_SHORT_SECONDS) $(FUZZ_TARGETS)

# Line coverage of what each target is for, replaying its corpus (build-fuzz-cov/).
fuzz-coverage:
	$(MAKE) --no-print-directory B=build-fuzz-cov CC=$(FUZZ_CC) \
	    OPT="-O1 -g -fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping" \
	    $(FUZZ_TARGETS:%=build-fuzz-cov/%)
	tests/fuzz/coverage $(FUZZ_TARGETS)

test: unit unit-asan e2e e2e-epoll e2e-asan e2e-valgrind fuzz-short

# Benchmark (not part of test): the eviction policies' hit ratios on a Zipf(0.9) trace
# through the real store, and the hit path's lookups per second from 1 and 2 threads.
$(B)/bench/cache_policy: bench/cache_policy.c $(OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lm

bench-cache: $(B)/bench/cache_policy
	./$(B)/bench/cache_policy

# Zero-config demo: a small origin on 127.0.0.1:8000 and Verge on 127.0.0.1:8080.
run run-demo: $(B)/verge
	@demo/run

# Benchmarks (not tests; see bench/README.md). bench/setup installs the peers when missing.
# BENCH_QUICK=1 make bench: a ~2-minute smoke run of the same harness.
$(B)/bench/fixed: bench/fixed.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -o $@ $<

$(B)/bench/pace: bench/pace.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<

$(B)/bench/relay: bench/relay.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -o $@ $< -luring

bench: $(B)/verge $(B)/bench/fixed $(B)/bench/pace $(B)/bench/relay
	@bench/setup
	$(PYTHON) bench/bench.py

profile: $(B)/verge
	@bench/setup
	$(PYTHON) bench/costs.py

bench-errors: $(B)/verge
	bench/error_path.sh

clean:
	rm -rf build build-asan build-fuzz build-fuzz-cov

format:
	clang-format -i $(SRC) src/main.c src/*/*.h tests/unit/*.c tests/fuzz/*.[ch]

-include $(OBJ:.o=.d) $(B)/src/main.d $(wildcard $(B)/fuzz_*.d $(B)/tests/fuzz/*.d)
