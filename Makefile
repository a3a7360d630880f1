# allot — build, run, test.  GNU make.
#
#   make            build bin/allotd and bin/allot
#   make run        set up (packages, model, var/) and start allotd
#   make test       set up, build, run every unit and end-to-end test
#   make asan       the whole suite under -fsanitize=address,undefined
#   make tsan       the whole suite under -fsanitize=thread (clang)
#   make fuzz       build the libFuzzer targets (clang) and run each briefly
#   make check-layers  includes point down the layer order (docs/ARCHITECTURE.md)
#   make bench      build and run the benchmarks under bench/
#   make install PREFIX=/usr/local [DESTDIR=]  binaries, man pages, systemd unit
#   make clean
#
# Sources are found by wildcard: every service/*/*.c except service/main/
# goes into one static library; tests/unit/test_NAME.c becomes a cmocka
# binary; tests/fuzz/fuzz_NAME.c a libFuzzer target; bench/NAME/*.c or
# bench/NAME.c a benchmark (with bench/common/*.c, the benchmarks' helpers).  Optional per-concern fragments live in mk/*.mk.

comma    := ,
PKGS     := sqlite3 libmicrohttpd libcrypto yaml-0.1 jansson libcurl libpq
TESTPKGS := cmocka

CC       ?= cc
# V=1 shows every command; otherwise one short line per file.
ifeq ($(V),1)
Q :=
else
Q := @
endif
BUILD    ?= build
SAN      ?=
OPT      ?= -O2

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TESTPKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)
# a test's own link flags: LDFLAGS_test_NAME
LDFLAGS_test_revwin := -Wl,--wrap=realloc

ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1
endif

CFLAGS   ?=
CFLAGS   += -std=c17 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror \
            -Wshadow -Wmissing-prototypes -Wno-missing-field-initializers -pthread \
            -Iservice $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
LDFLAGS  += -pthread $(SANFLAGS)
LDLIBS   += $(PKG_LIBS) -lm

LIB_SRC  := $(sort $(filter-out service/main/%,$(wildcard service/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/migrations_sqlite.o \
            $(BUILD)/obj/gen/migrations_postgres.o
MIGRATIONS := $(wildcard migrations/*/*.sql)
LIB      := $(BUILD)/liballot.a

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TESTLIB_SRC := $(sort $(wildcard tests/unit/support/*.c))
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/obj/%.o)

BENCH_DIRS := $(filter-out common,$(sort $(patsubst bench/%/,%,$(dir $(wildcard bench/*/*.c)))))
BENCH_ONE  := $(sort $(patsubst bench/%.c,%,$(wildcard bench/*.c)))
BENCH_BIN  := $(addprefix $(BUILD)/bench/,$(BENCH_DIRS) $(BENCH_ONE))

BINDIR   ?= bin
BIN      := $(BINDIR)/allotd $(BINDIR)/allot

.SECONDARY:
.PHONY: FORCE all run test unit e2e e2e-pg bench-smoke soak asan tsan fuzz bench clean setup deps model check-deps check-layers
all: $(BIN)

-include mk/*.mk

$(BINDIR)/%: $(BUILD)/obj/service/main/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(EXTRA_LIBS)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(CFLAGS_$(notdir $(basename $<))) -c -o $@ $<

$(BUILD)/gen/migrations_%.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	$(Q)sh scripts/embed-migrations.sh $* $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) $(LDFLAGS_$*) -o $@ $< $(TESTLIB_OBJ) $(LIB) $(TEST_LIBS) $(LDLIBS) $(EXTRA_LIBS)

$(BUILD)/bench/%: $(LIB) FORCE
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $(wildcard bench/$*/*.c bench/$*.c bench/common/*.c) $(LIB) $(LDLIBS) $(EXTRA_LIBS)
FORCE:

# ---- set-up ---------------------------------------------------------------
setup:
	@sh scripts/setup.sh

run: setup all
	@sh scripts/run.sh

# ---- tests ----------------------------------------------------------------
# The unit tests run with a throwaway PostgreSQL cluster for the PostgreSQL
# store's tests (scripts/with-pg.sh; they skip, saying so, without one).
unit: $(UNIT_BIN)
	@sh scripts/with-pg.sh sh scripts/run-unit.sh $(BUILD)/tests

e2e: all
	@sh scripts/run-e2e.sh sqlite

# The end-to-end suite again on PostgreSQL (a throwaway cluster,
# scripts/with-pg.sh; docs/POSTGRES.md, "Testing on PostgreSQL").
e2e-pg: all
	@sh scripts/with-pg.sh sh scripts/run-e2e.sh pg

# Includes point down the layer order (docs/ARCHITECTURE.md, "Layers");
# the self-test shows the check can fail.
check-layers:
	@sh scripts/check-layers.sh
	@sh tests/layers/test_check_layers.sh

test: setup
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory all unit $(BENCH_BIN)
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory e2e-pg
	@$(MAKE) --no-print-directory bench-smoke
	@$(MAKE) --no-print-directory fuzz-smoke

# The model-based test of the ledger at length (not in CI): 10,000 seeded
# histories against the real allotd (docs/TESTING.md); ALLOT_MODEL_SEED moves
# the window of seeds.
# Also: 1,000 JSON-constrained generations with random seeds (200 in make
# test), each parsed and checked against its schema (test_infer_gen).
# Also: three nodes on one PostgreSQL database, 20 rounds of racing clients
# (5 in make test) and 100 concurrent pairs of provider batches (20).
soak: setup all $(BUILD)/tests/test_infer_gen
	@ALLOT_MODEL_HISTORIES=$${ALLOT_MODEL_HISTORIES:-10000} bash tests/e2e/test_model.sh
	@ALLOT_JSON_SAMPLES=$${ALLOT_JSON_SAMPLES:-1000} $(BUILD)/tests/test_infer_gen
	@ALLOT_MULTINODE_ROUNDS=$${ALLOT_MULTINODE_ROUNDS:-20} \
	  ALLOT_MULTINODE_INGEST_ROUNDS=$${ALLOT_MULTINODE_INGEST_ROUNDS:-100} \
	  sh scripts/with-pg.sh env ALLOT_TEST_DB=pg sh -c \
	  'bash tests/e2e/test_multinode_rounds_pg.sh && bash tests/e2e/test_multinode_ingest_pg.sh'

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 unit
	@$(MAKE) --no-print-directory BUILD=build/asan BINDIR=build/asan/bin SAN=1 all
	@ALLOT_BIN_DIR=build/asan/bin sh scripts/run-e2e.sh

# The suite under ThreadSanitizer (clang): the unit tests (a race report
# fails the program: TSan exits 66), then the end-to-end tests against an
# allotd built with it, which stops at the first race (halt_on_error), so
# the script talking to it fails.
TSAN_MAKE = $(MAKE) --no-print-directory CC=clang BUILD=build/tsan OPT=-O1 \
	    SANFLAGS="-fsanitize=thread -fno-omit-frame-pointer"
tsan:
	@if command -v clang >/dev/null 2>&1; then \
	  ALLOT_TEST_SCALE=$${ALLOT_TEST_SCALE:-10000} $(TSAN_MAKE) unit && \
	  $(TSAN_MAKE) BINDIR=build/tsan/bin all && \
	  TSAN_OPTIONS="halt_on_error=1 $${TSAN_OPTIONS:-}" ALLOT_BIN_DIR=build/tsan/bin \
	    sh scripts/run-e2e.sh; \
	else echo "tsan: clang not found, skipped"; fi

# ---- fuzzing (clang + libFuzzer) -------------------------------------------
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Iservice $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined
FUZZ_GEN := build/gen/migrations_sqlite.c build/gen/migrations_postgres.c \
            build/gen/web_assets.c
build/gen/migrations_%.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-migrations.sh $* $@
# The library is compiled once with -fsanitize=fuzzer-no-link and shared by
# every target.
FUZZ_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC) $(FUZZ_GEN))
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	$(Q)clang $(subst -fsanitize=fuzzer$(comma),-fsanitize=fuzzer-no-link$(comma),$(FUZZ_CFLAGS)) -MMD -MP \
		$(CFLAGS_$(notdir $(basename $<))) -c -o $@ $<
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJ) $(PKG_LIBS) -lm -pthread $(EXTRA_LIBS)

fuzz: $(FUZZ_BIN)
	@sh scripts/run-fuzz.sh 60

fuzz-smoke:
	@if command -v clang >/dev/null 2>&1 && [ -n "$(FUZZ_SRC)" ]; then \
	  $(MAKE) --no-print-directory $(FUZZ_BIN) && sh scripts/run-fuzz.sh 10; \
	else echo "fuzz: clang not found, fuzz smoke skipped"; fi

# ---- benchmarks -------------------------------------------------------------
bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

# The benchmarks with PostgreSQL parts, once each in a short form (figures
# printed, not checked): one that no longer runs fails make test.
bench-smoke: all $(BENCH_BIN)
	@sh scripts/with-pg.sh sh scripts/bench-smoke.sh

clean:
	rm -rf build bin

# ---- install (docs/OPERATIONS.md, "Installing") ----------------------------
# Binaries from BINDIR (built first when missing), allot(1) and allotd(8),
# the hardened systemd unit with PREFIX filled in, its sysusers.d user and
# the default charter as an example.  DESTDIR stages a package.
PREFIX  ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system
.PHONY: install
install: $(if $(wildcard $(BINDIR)/allotd),,$(BINDIR)/allotd) $(if $(wildcard $(BINDIR)/allot),,$(BINDIR)/allot)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/share/allot
	install -m 0755 $(BINDIR)/allotd $(BINDIR)/allot $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 man/allot.1 $(DESTDIR)$(PREFIX)/share/man/man1/allot.1
	install -m 0644 man/allotd.8 $(DESTDIR)$(PREFIX)/share/man/man8/allotd.8
	sed 's|@BINDIR@|$(PREFIX)/bin|g' dist/allotd.service.in >$(DESTDIR)$(UNITDIR)/allotd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/allotd.service
	install -m 0644 dist/allot.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/allot.conf
	install -m 0644 policies/default.yaml $(DESTDIR)$(PREFIX)/share/allot/charter.example.yaml

%.d: ;
-include $(shell find $(BUILD)/obj build/fuzz/obj -name "*.d" 2>/dev/null)
