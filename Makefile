# Verge build. `make` builds build/verge; `make test` runs unit and end-to-end tests.
CC       ?= cc
OPT      ?= -O2 -g
LLHTTP_DIR     ?= /usr/share/llhttp
LLHTTP_INCLUDE ?= /usr/share/include/llhttp

CFLAGS   += $(OPT) -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -D_GNU_SOURCE -pthread -Isrc -I$(LLHTTP_INCLUDE) -MMD -MP
LDLIBS   += -pthread -lyaml -lcares

SRC      := $(sort $(wildcard src/core/*.c src/http/*.c src/edge/*.c src/admin/*.c))
OBJ      := $(SRC:%.c=build/%.o)
LLHTTP_OBJ := build/llhttp/llhttp.o build/llhttp/api.o build/llhttp/http.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests/%)

PYTHON   ?= /usr/bin/python3

.PHONY: all test unit e2e run run-demo clean format
all: build/verge

build/verge: build/src/main.o $(OBJ) $(LLHTTP_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# llhttp is Node's parser; Debian ships its C sources. Built as is, with its own flags.
build/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -std=c11 -I$(LLHTTP_INCLUDE) -c -o $@ $<

build/tests/%: tests/unit/%.c $(OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)
	@fail=0; pass=0; for t in $(UNIT_BIN); do \
	    if ./$$t; then pass=$$((pass+1)); else fail=$$((fail+1)); fi; done; \
	    echo "unit: $$pass passed, $$fail failed"; test $$fail -eq 0

e2e: build/verge
	$(PYTHON) -m pytest -q tests/e2e

test: unit e2e

# Zero-config demo: a small origin on 127.0.0.1:8000 and Verge on 127.0.0.1:8080.
run run-demo: build/verge
	@demo/run

clean:
	rm -rf build

format:
	clang-format -i $(SRC) src/main.c src/*/*.h tests/unit/*.c

-include $(OBJ:.o=.d) build/src/main.d
