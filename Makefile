# provision: one non-recursive Makefile. Objects in build/ (build/san/ for a
# sanitizer build). Every library comes from pkg-config.
#
#   make                              ./provision
#   make SANITIZE=address,undefined   ./provision-san (objects in build/san)
#   make static                       ./provision-static: every library but the C
#                                     library linked in (objects in build/static)
#   make test                         all test tiers, ends with "N passed, N failed"
#   make lint                         luacheck, the Lua import rules, size limits (tests/lint.sh)
#   make man                          build/provision.1 (docs/provision.1.scd, scdoc)
#   make docs                         docs/modules/*.md's tables, from the resource definitions
#   make install PREFIX=/usr/local DESTDIR=   also the man page and completions

PKGS    := lua5.4 yaml-0.1 libcurl libarchive jansson libcrypto
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Wformat=2
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# libcurl, libarchive and libcrypto are opened at first use (core/lazylib.h): not linked.
# Lua, libyaml and jansson are linked in from Debian's static archives (their
# -dev packages ship them): the dynamic linker then has three libraries fewer
# to map and the Lua API's symbols fewer to look up, half of what a 10-step
# no-op cost beyond starting a process (issue 19). The Lua API stays
# exported (-rdynamic) for the C modules a recipe loads.
PKG_LIBS   := -Wl,-Bstatic $(shell pkg-config --libs lua5.4 yaml-0.1 jansson) -Wl,-Bdynamic

ifdef STATIC
# make static (a sub-make with STATIC=1): ./provision-static, for hosts that
# have only the C library (issue 15). Lua, libyaml, jansson, OpenSSL, zlib,
# bzip2, xz and zstd are Debian's static archives; libcurl (http and https
# with OpenSSL, nothing else) and libarchive (no xml2) are built from
# Debian's source packages by core/gen/static-deps.sh into build/static/deps,
# kept there until `make clean` (the first build: about 70 s on 2 cores; then
# seconds). -DPROVISION_STATIC: core/lazylib.c points at the linked
# functions instead of dlopen (still initialised at first use).
BUILD   := build/static
BIN     := provision-static
SANFLAGS :=
STACKFLAGS :=
STATIC_DEPS := build/static/deps
STATICFLAGS := -DPROVISION_STATIC -I$(STATIC_DEPS)/include
else ifdef SANITIZE
BUILD   := build/san
BIN     := provision-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# the Lua stack balance checks of core.h (STACK_ENTER / STACK_LEAVE)
STACKFLAGS := -DPROVISION_STACK_CHECK -DPROVISION_FREE_AT_EXIT
else
BUILD   := build
BIN     := provision
SANFLAGS :=
STACKFLAGS :=
endif

ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) $(STACKFLAGS) $(STATICFLAGS) $(PKG_CFLAGS) \
              -Icore -I$(BUILD) -DPROVISION_VERSION='"$(VERSION)"'
LDFLAGS_ALL := $(SANFLAGS) -rdynamic $(LDFLAGS)
LIBS    := $(PKG_LIBS) -ldl -lm
ifdef STATIC
# Only the Lua API is exported (for C modules a recipe loads), not the
# linked libraries: a library dlopen'ed later (libsystemd) keeps its own.
LDFLAGS_ALL := -Wl,--dynamic-list=$(BUILD)/exports.list -Wl,--as-needed $(LDFLAGS)
LIBS    := -L$(STATIC_DEPS)/lib -Wl,-Bstatic -lcurl -larchive -llua5.4 -lyaml -ljansson \
           -lssl -lcrypto -lzstd -llzma -lbz2 -lz -Wl,-Bdynamic -lm
endif

CORE_SRC := $(wildcard core/*.c)
# a module is modules/NAME.c, or a folder modules/NAME/ of files (one of
# them exports luaopen_provision_NAME)
MOD_SRC  := $(sort $(wildcard modules/*.c modules/*/*.c))
MOD_NAMES := $(sort $(basename $(notdir $(wildcard modules/*.c))) $(notdir $(patsubst %/,%,$(dir $(wildcard modules/*/*.c)))))
LUA_SRC  := $(sort $(shell find lua -name '*.lua'))
OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRC) $(MOD_SRC))
MAIN_OBJ := $(BUILD)/core/main.o
LIB_OBJS := $(filter-out $(MAIN_OBJ),$(OBJS))

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all test unit install install-docs man clean fuzz lint static
all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $(OBJS) $(LIBS)

$(BUILD)/%.o: %.c $(wildcard core/*.h modules/*/*.h) $(BUILD)/lua_embed.inc $(BUILD)/modules.inc
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The Lua half, embedded: build/lua_embed.inc holds every file under lua/.
$(BUILD)/embedgen: core/gen/embedgen.c
	@mkdir -p $(dir $@)
	$(CC) -O1 $(shell pkg-config --cflags lua5.4) -o $@ $< $(shell pkg-config --libs lua5.4)

$(BUILD)/lua_embed.inc: $(BUILD)/embedgen $(LUA_SRC)
	$(BUILD)/embedgen $(LUA_SRC) > $@.tmp && mv $@.tmp $@

# Built-in C modules: one line per module (modules/<name>.c or modules/<name>/),
# each exporting luaopen_provision_<name>.
$(BUILD)/modules.inc: $(MOD_SRC) Makefile
	@mkdir -p $(BUILD)
	@for n in $(MOD_NAMES); do echo "MODULE($$n)"; done > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $< $(LIB_OBJS) $(LIBS)

unit: $(UNIT_BIN)

ifdef STATIC
static: $(BIN)
$(BIN): $(BUILD)/exports.list
$(OBJS): $(STATIC_DEPS)/.done
$(BUILD)/exports.list:
	@mkdir -p $(dir $@)
	printf '{\n  lua_*;\n  luaL_*;\n  luaopen_*;\n};\n' > $@
$(STATIC_DEPS)/.done: core/gen/static-deps.sh
	sh core/gen/static-deps.sh $(STATIC_DEPS)
else
static:
	$(MAKE) STATIC=1 provision-static
endif

# tests/cli/static_binary.sh checks ./provision-static
test: $(BIN) $(UNIT_BIN) static
	PROVISION=$(CURDIR)/$(BIN) UNIT_DIR=$(CURDIR)/$(BUILD)/tests sh tests/run

lint:
	sh tests/lint.sh

# provision(1), from docs/provision.1.scd (scdoc: make deps installs it)
man: build/provision.1
build/provision.1: docs/provision.1.scd
	@mkdir -p build
	scdoc < $< > $@.tmp && mv $@.tmp $@

# docs/modules/*.md: their generated blocks (each resource's table of
# options) made anew from the resource definitions (docs/gen.lua);
# tests/cli/docs.sh fails when a page and the definitions differ
docs: $(BIN)
	./$(BIN) --script docs/gen.lua modules docs/modules docs/modules/*.md
.PHONY: docs

install: $(BIN) install-docs
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/provision
	@# what --host sends to other machines, when it is built (make static)
	if [ -x provision-static ]; then install -m 0755 provision-static $(DESTDIR)$(PREFIX)/bin/provision-static; fi
	install -d $(DESTDIR)$(PREFIX)/share/provision/recipes
	cp -R recipes/. $(DESTDIR)$(PREFIX)/share/provision/recipes/

# the man page and the bash and zsh completions (part of make install)
install-docs: build/provision.1
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	install -m 0644 build/provision.1 $(DESTDIR)$(PREFIX)/share/man/man1/provision.1
	install -m 0644 docs/completion/provision.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/provision
	install -m 0644 docs/completion/_provision $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_provision

clean:
	rm -rf build provision provision-san provision-static

# Everything a fresh Debian 12 machine needs to build, test and run (as root).
DEB_PKGS := build-essential pkg-config git liblua5.4-dev libyaml-dev \
            libcurl4-openssl-dev libarchive-dev libjansson-dev libssl-dev libxxhash-dev xxhash \
            docker.io docker-compose busybox-static python3 curl clang \
            libclang-rt-14-dev valgrind iproute2 procps time strace hyperfine \
            openssl util-linux lua5.4 lua-check openssh-server openssh-client sudo scdoc
# make static: zstd's static archive; zstd makes a .tar.zst for its test
DEB_PKGS_STATIC := libzstd-dev zstd
# ... and Compose v2 beside v1: Debian trixie's docker-compose package
# (2.26.1), fetched from Debian and put where the docker CLI finds plugins;
# and trixie's Docker Engine (26.1) for the tests to start beside the
# system's (never installed as the system's engine)
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PKGS) $(DEB_PKGS_STATIC)
	sh tests/deps/compose-v2.sh
	sh tests/deps/engine-next.sh
.PHONY: deps
