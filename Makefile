# cryo: non-recursive build. Each folder's module.mk only lists sources;
# every rule and flag lives here. Objects go to build/.
#
#   make            build/bin/* and build/lib/libcryo.so
#   make check      unit tests, then integration tests (see test/run-all.sh)
#   make bench      benchmarks (test/bench/run.sh)
#   make install PREFIX=/usr/local DESTDIR=

CC      ?= cc
PREFIX  ?= /usr/local
CFLAGS  ?= -O2 -g
VERSION := 0.1.0

BASE   := -std=c11 -D_GNU_SOURCE -I. -Wall -Wextra -Wno-unused-parameter -MMD -MP \
          -fvisibility=hidden -DCRYO_VERSION='"$(VERSION)"'
NOLIBC := -ffreestanding -fno-stack-protector -fPIE -fno-asynchronous-unwind-tables \
          -fno-tree-loop-distribute-patterns -fno-builtin -U_FORTIFY_SOURCE \
          -DCRYO_FREESTANDING=1 -mgeneral-regs-only
NOLIBC_USER := $(filter-out -fsanitize=% -pg --coverage -fstack-protector%,$(CFLAGS))
LIBS    := -lzstd -lcrypto -lpthread

# module.mk files may add prerequisites to objects; none of them is the goal.
.DEFAULT_GOAL := all

# Each module.mk appends to these.
common_SRCS :=
libcryo_SRCS :=
restorer_SRCS :=
restart_SRCS :=
coordinator_SRCS :=
command_SRCS :=
launch_SRCS :=
image_tool_SRCS :=
codec_SRCS :=
UNIT_TESTS :=
TEST_APPS :=

include mtcp/module.mk plugin/module.mk restart/module.mk coordinator/module.mk \
        launch/module.mk test/module.mk

objs = $(patsubst %.c,build/%.o,$(filter %.c,$(1))) $(patsubst %.S,build/%.o,$(filter %.S,$(1)))

common_OBJS      := $(call objs,$(common_SRCS))
libcryo_OBJS     := $(call objs,$(libcryo_SRCS))
restorer_OBJS    := $(patsubst %.c,build/free/%.o,$(restorer_SRCS))
restart_OBJS     := $(call objs,$(restart_SRCS))
coordinator_OBJS := $(call objs,$(coordinator_SRCS))
command_OBJS     := $(call objs,$(command_SRCS))
launch_OBJS      := $(call objs,$(launch_SRCS))
image_tool_OBJS  := $(call objs,$(image_tool_SRCS))
codec_OBJS       := $(call objs,$(codec_SRCS))

BINS := build/bin/cryo_launch build/bin/cryo_coordinator build/bin/cryo_command \
        build/bin/cryo_restart build/bin/cryo_image
LIB  := build/lib/libcryo.so build/lib/libcryo-image.so

all: $(BINS) $(LIB) test-apps

build/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE) $(CFLAGS) -fPIC -c -o $@ $<

build/%.o: %.S
	@mkdir -p $(@D)
	$(CC) $(BASE) $(CFLAGS) -fPIC -c -o $@ $<

# Freestanding code: everything the restorer links (restorer_SRCS) is built
# a second time under build/free/ with the nolibc flags.
build/free/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASE) $(NOLIBC) $(NOLIBC_USER) -c -o $@ $<

build/restorer.elf: $(restorer_OBJS)
	$(CC) -nostdlib -static-pie -Wl,-e,rst_entry -Wl,-z,noexecstack -Wl,--no-dynamic-linker \
		-Wl,-z,norelro -Wl,--hash-style=gnu -o $@ $^
	@if nm -u $@ | grep -q . || readelf -r $@ | grep -q R_X86_64; then \
		echo "$@: needs libc or relocations" >&2; nm -u $@ >&2; readelf -r $@ >&2; rm -f $@; exit 1; fi

# The restorer as one flat blob (loaded anywhere: it is position independent),
# plus a header with the entry offset and the size including .bss.
build/restorer.bin: build/restorer.elf
	objcopy -O binary --only-section=.text --only-section=.rodata* --only-section=.data* \
		--only-section=.bss $< $@.tmp --set-section-flags .bss=alloc,load,contents
	mv $@.tmp $@

build/gen/restorer_blob.h: build/restorer.elf build/restorer.bin
	@mkdir -p $(@D)
	sh scripts/gen-blob-header.sh $< build/restorer.bin > $@.tmp && mv $@.tmp $@

build/restart/blob.o: build/restorer.bin build/gen/restorer_blob.h

build/libcryo-common.a: $(common_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# libcryo.so needs neither zstd nor OpenSSL: the codec is a library of its
# own, loaded at the first checkpoint (mtcp/codec.h).
build/lib/libcryo.so: $(libcryo_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-z,noexecstack -Wl,--build-id -Wl,-z,nodelete -o $@ $(libcryo_OBJS) \
		build/libcryo-common.a -lpthread -ldl
	@if readelf -d $@ | grep -qE 'NEEDED.*(zstd|crypto)'; then \
		echo "$@ must not need zstd or libcrypto (see mtcp/codec.h)" >&2; rm -f $@; exit 1; fi

build/lib/libcryo-image.so: $(codec_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-z,noexecstack -Wl,--build-id -Wl,-z,nodelete -o $@ $(codec_OBJS) \
		build/libcryo-common.a $(LIBS)

build/bin/cryo_restart: $(restart_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(LIBS)

build/bin/cryo_coordinator: $(coordinator_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(LIBS)

build/bin/cryo_command: $(command_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(LIBS)

build/bin/cryo_launch: $(launch_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(LIBS)

build/bin/cryo_image: $(image_tool_OBJS) build/libcryo-common.a
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(LIBS) -lelf

# Unit tests: test/unit/<dir>/test_<stem>.c, listed in test/module.mk as
# UNIT_TESTS += <dir>/<stem>; optional unit_<dir>_<stem>_OBJS (extra objects)
# and unit_<dir>_<stem>_WRAP (functions faked with -Wl,--wrap).
unit_var = unit_$(subst /,_,$(1))
define unit_rule
build/test/unit/$(1): build/test/unit/$(dir $(1))test_$(notdir $(1)).o $$($(call unit_var,$(1))_OBJS) build/libcryo-common.a
	@mkdir -p $$(@D)
	$$(CC) -o $$@ $$^ $$(foreach f,$$($(call unit_var,$(1))_WRAP),-Wl,--wrap=$$(f)) -lcmocka $$(LIBS) -lelf
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))
UNIT_BINS := $(addprefix build/test/unit/,$(UNIT_TESTS))

# Test programs (test/apps/<name>.c -> build/test/apps/<name>), plain hosted C.
TEST_APP_BINS := $(addprefix build/test/apps/,$(TEST_APPS))
build/test/apps/%: test/apps/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g -Wall -pthread -o $@ $< -lrt -lm

test-apps: $(TEST_APP_BINS)
unit: $(UNIT_BINS)

# The README's two commands: each installs missing Debian packages first.
check:
	sh scripts/deps.sh
	$(MAKE) all unit
	sh test/run-all.sh

demo:
	sh scripts/deps.sh
	sh scripts/demo.sh

deps:
	sh scripts/deps.sh

check-unit: all unit
	sh test/run-all.sh --unit-only

check-integration: all
	sh test/run-all.sh --integration-only

bench: all
	sh test/bench/run.sh

headers:
	@for h in $$(git ls-files '*.h'); do \
		echo "#include \"$$h\"" | $(CC) $(BASE) -x c -fsyntax-only - || exit 1; done; echo "headers ok"

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(LIB) $(DESTDIR)$(PREFIX)/lib/

clean:
	rm -rf build

.PHONY: all check demo deps check-unit check-integration bench headers install clean test-apps unit
.DELETE_ON_ERROR:

-include $(shell find build -name '*.d' 2>/dev/null)
