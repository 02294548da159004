# parley: one entry point. Sources are picked up by wildcard, so adding a unit needs no edit here:
#   reactor/*.cpp protocol/*.cpp chat/*.cpp chat/store/*.cpp chat/cluster/*.cpp chat/parleyd/*.cpp -> build/libparley.a (*_main.cpp are programs)
#   chat/parleyd_main.cpp                    -> build/parleyd
#   tools/<name>_main.cpp                    -> build/parley-<name>
#   tests/*_test.cpp                         -> build/parley_tests (one GoogleTest binary)
#   bench/*_bench.cpp                        -> build/parley_bench (one Google Benchmark binary)
#   tests/fuzz/<name>_fuzz.cpp               -> build/fuzz/<name> (libFuzzer, clang)
#
# make            install missing Debian packages, build everything optimised into build/
# make run        build and start parleyd on 127.0.0.1:8080
# make test       build and run the GoogleTest suite (SAN=1: under ASan+UBSan, in build/asan/)
# make asan       same as make test SAN=1
# make bench      run the micro-benchmarks
# make fuzz       build the fuzz targets and run each for FUZZ_SECONDS (default 60)
# make install    binaries, man page, systemd unit and config into $(DESTDIR)$(PREFIX) (see below)
# make certs      a self-signed pair for local TLS: build/certs/cert.pem and build/certs/key.pem

SHELL := /bin/bash
# Build in parallel on every core unless the caller chose a -j.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc)
endif

# Debian packages we build against; `make deps` installs whichever are missing.
DEB_PACKAGES := g++ clang libclang-rt-14-dev make libssl-dev openssl libxxhash-dev libgtest-dev \
                libgmock-dev libbenchmark-dev zlib1g-dev libsimdjson-dev python3-websockets \
                python3-autobahn libsqlite3-dev libtomlplusplus-dev libhiredis-dev redis-server \
                liburing-dev

SAN ?= 0
ifeq ($(SAN),1)
  BUILD    := build/asan
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  OPTFLAGS := -O1 -g
else
  BUILD    := build
  SANFLAGS :=
  OPTFLAGS := -O2 -g
endif

CXX      ?= g++
CXXFLAGS := -std=c++20 $(OPTFLAGS) $(SANFLAGS) -Wall -Wextra -Werror -pthread -I. -MMD -MP $(EXTRA_CXXFLAGS)
LDFLAGS  := $(SANFLAGS) -pthread $(EXTRA_LDFLAGS)
LIBS     := -lssl -lcrypto -lxxhash -lsimdjson -lz -lsqlite3 -lhiredis -luring

# tools/backoff.cpp is shared: parley-cli's reconnects and the Redis link's (chat/cluster/).
LIB_SRCS   := $(filter-out %_main.cpp,$(wildcard reactor/*.cpp protocol/*.cpp chat/*.cpp chat/store/*.cpp chat/cluster/*.cpp chat/parleyd/*.cpp)) tools/backoff.cpp
TOOL_MAINS := $(wildcard tools/*_main.cpp)
TOOL_SRCS  := $(filter-out %_main.cpp tools/backoff.cpp,$(wildcard tools/*.cpp))
TEST_SRCS  := $(wildcard tests/*_test.cpp) $(filter-out %_test.cpp,$(wildcard tests/support/*.cpp))
BENCH_SRCS := $(wildcard bench/*_bench.cpp)
FUZZ_SRCS  := $(wildcard tests/fuzz/*_fuzz.cpp)
EXAMPLE_SRCS := $(wildcard chat/examples/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

# The browser page (chat/web/*) is compiled into the library by tools/embed_web_assets.sh,
# which writes a .cpp defining what chat/web_assets.h declares.
WEB_FILES := $(sort $(wildcard chat/web/*.html chat/web/*.css chat/web/*.js chat/web/*.svg chat/web/*.ico))
WEB_ASSETS_CPP := $(BUILD)/gen/web_assets.cpp
WEB_ASSETS_OBJ := $(if $(WEB_FILES),$(BUILD)/obj/gen/web_assets.o)

LIB      := $(BUILD)/libparley.a
PARLEYD  := $(BUILD)/parleyd
TOOLS    := $(patsubst tools/%_main.cpp,$(BUILD)/parley-%,$(TOOL_MAINS))
TESTS    := $(BUILD)/parley_tests
BENCH    := $(BUILD)/parley_bench
EXAMPLES := $(patsubst chat/examples/%.cpp,$(BUILD)/examples/%,$(EXAMPLE_SRCS))

.PHONY: all deps run test asan bench fuzz clean certs install
.DEFAULT_GOAL := all
# Objects are never intermediate: keep them for incremental builds.
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory binaries

binaries: $(PARLEYD) $(TOOLS) $(TESTS) $(BENCH) $(EXAMPLES)

# Installs only what dpkg says is missing; apt-get update runs first, and only then.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# The commit parleyd reports in parley_build_info (-DPARLEY_GIT_COMMIT on chat/parleyd/operations.o
# only). The stamp is rewritten only when the commit changes, so a new commit rebuilds one object.
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
$(BUILD)/gen/git_commit: git-commit-stamp
	@mkdir -p $(dir $@)
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
.PHONY: git-commit-stamp
git-commit-stamp:
$(BUILD)/obj/chat/parleyd/operations.o: $(BUILD)/gen/git_commit
$(BUILD)/obj/chat/parleyd/operations.o: CXXFLAGS += -DPARLEY_GIT_COMMIT='"$(GIT_COMMIT)"'

$(WEB_ASSETS_CPP): $(WEB_FILES) tools/embed_web_assets.sh
	@mkdir -p $(dir $@)
	bash tools/embed_web_assets.sh $@ $(WEB_FILES)

$(BUILD)/obj/gen/web_assets.o: $(WEB_ASSETS_CPP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(LIB): $(call obj,$(LIB_SRCS)) $(WEB_ASSETS_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(PARLEYD): $(call obj,chat/parleyd_main.cpp) $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/parley-%: $(BUILD)/obj/tools/%_main.o $(call obj,$(TOOL_SRCS)) $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/examples/%: $(BUILD)/obj/chat/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(TESTS): $(call obj,$(TEST_SRCS)) $(call obj,$(TOOL_SRCS)) $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lgmock -lgtest -lgtest_main

$(BENCH): $(call obj,$(BENCH_SRCS)) $(call obj,$(TOOL_SRCS)) $(LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lbenchmark -lbenchmark_main

run: all
	$(BUILD)/parleyd --listen 127.0.0.1:8080

# Integration tests find the binaries through PARLEY_BUILD_DIR.
test: deps
	@$(MAKE) --no-print-directory $(TESTS) $(PARLEYD) $(TOOLS) $(EXAMPLES)
	PARLEY_BUILD_DIR=$(BUILD) tests/run_tests.sh $(TESTS)

asan:
	@$(MAKE) --no-print-directory test SAN=1

bench: all
	$(BENCH) $(BENCH_ARGS)

FUZZ_SECONDS ?= 60
FUZZ_COMMON := -std=c++20 -O1 -g -I. -Wall -Wextra -Werror
# UBSan findings abort the run (a crash libFuzzer keeps), rather than scrolling past.
FUZZ_CXXFLAGS := $(FUZZ_COMMON) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJFLAGS := $(FUZZ_COMMON) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_SRCS := $(filter protocol/%,$(LIB_SRCS)) $(filter reactor/%,$(LIB_SRCS)) $(filter chat/%,$(LIB_SRCS)) tools/backoff.cpp
FUZZERS := $(patsubst tests/fuzz/%_fuzz.cpp,build/fuzz/%,$(FUZZ_SRCS))

FUZZ_WEB := $(if $(WEB_FILES),build/fuzz/gen/web_assets.cpp)
build/fuzz/gen/web_assets.cpp: $(WEB_FILES) tools/embed_web_assets.sh
	@mkdir -p $(dir $@)
	bash tools/embed_web_assets.sh $@ $(WEB_FILES)

# The library is compiled once for all targets (instrumented, without libFuzzer's main); each
# target links its own entry point against those objects.
FUZZ_LIB_OBJS := $(patsubst %.cpp,build/fuzz/obj/%.o,$(FUZZ_LIB_SRCS) $(FUZZ_WEB))
build/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	clang++ $(FUZZ_OBJFLAGS) -MMD -MP -c $< -o $@

build/fuzz/%: tests/fuzz/%_fuzz.cpp $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	clang++ $(FUZZ_CXXFLAGS) -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS)

fuzz: deps $(FUZZERS)
	@for f in $(FUZZERS); do \
	  name=$$(basename $$f); corpus=build/fuzz/corpus/$$name; mkdir -p $$corpus; \
	  seeds=tests/fuzz/seeds/$$name; [ -d $$seeds ] || seeds=""; \
	  echo "== fuzzing $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus $$seeds || exit 1; \
	done

# ECDSA P-256 (cheap handshakes), CN and subjectAltName localhost/127.0.0.1, valid a year. For
# local use only: browsers and clients must be told to trust it (or skip verification).
certs: build/certs/cert.pem
build/certs/cert.pem:
	@mkdir -p $(dir $@)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
	  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	  -keyout build/certs/key.pem -out $@
	@echo "run: build/parleyd --tls-cert build/certs/cert.pem --tls-key build/certs/key.pem"

# make install: parleyd and the tools into $(DESTDIR)$(BINDIR), parleyd(8) generated from
# `parleyd --help` (tools/help_to_man.sh), parleyd.service (chat/parleyd/parleyd.service.in)
# into $(DESTDIR)$(SYSTEMD_UNIT_DIR), and the example configuration docs/parley.toml into
# $(DESTDIR)$(DOCDIR) and, unless one is there already, $(DESTDIR)$(SYSCONFDIR)/parley/ (the
# file the unit reads). DESTDIR stages a tree for packaging; the installed files
# name the final paths (no DESTDIR in them). The binaries are those of $(BUILD) (SAN=1 or
# BUILD=... picks another build); NO_BUILD=1 installs them as they are, without looking at the
# sources, and fails if one is missing (tests, packaging from a finished build). Each generated
# file is made in one shell with a temporary named by its pid, so concurrent installs from one
# build directory do not mix their files.
PREFIX           ?= /usr/local
BINDIR           ?= $(PREFIX)/bin
MANDIR           ?= $(PREFIX)/share/man
SYSCONFDIR       ?= /etc
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
DOCDIR           ?= $(PREFIX)/share/doc/parley
INSTALL_BINS     := $(PARLEYD) $(filter $(addprefix $(BUILD)/parley-,load idle cli token),$(TOOLS))
install: $(if $(filter 1,$(NO_BUILD)),,$(INSTALL_BINS))
	@for f in $(INSTALL_BINS); do [ -x $$f ] || { echo "make install: $$f is missing (build it, or drop NO_BUILD=1)" >&2; exit 1; }; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	install -m 0755 $(INSTALL_BINS) $(DESTDIR)$(BINDIR)/
	@mkdir -p $(BUILD)/install
	man=$(BUILD)/install/parleyd.8.$$$$ && \
	  tools/help_to_man.sh $(PARLEYD) 8 "the parley WebSocket chat server" > $$man && \
	  sed -e 's|@UNITDIR@|$(SYSTEMD_UNIT_DIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' chat/parleyd/parleyd.8.in >> $$man && \
	  install -m 0644 $$man $(DESTDIR)$(MANDIR)/man8/parleyd.8; rc=$$?; rm -f $$man; exit $$rc
	unit=$(BUILD)/install/parleyd.service.$$$$ && \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' chat/parleyd/parleyd.service.in > $$unit && \
	  install -m 0644 $$unit $(DESTDIR)$(SYSTEMD_UNIT_DIR)/parleyd.service; rc=$$?; rm -f $$unit; exit $$rc
	install -d $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/parley
	install -m 0644 docs/parley.toml $(DESTDIR)$(DOCDIR)/parley.toml
	@# The service's configuration is the operator's: installed once, never overwritten (a
	@# reinstall or upgrade keeps their edits; the current example is always in $(DOCDIR)).
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/parley/parley.toml ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/parley/parley.toml (the new example is $(DESTDIR)$(DOCDIR)/parley.toml)"; \
	else install -m 0644 docs/parley.toml $(DESTDIR)$(SYSCONFDIR)/parley/parley.toml; fi

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
