# mpc — plain Makefile.  Everything is built under $(B)/ (build/ by default).
#   make            library, mpc-run, tests
#   make test       install deps, build, run every test (unit + e2e)
#   make demo       install deps, build, run the demo
#   make asan       unit tests under ASan+UBSan (in build-asan/)
#   make bench      benchmarks against the competitors
#   make install PREFIX=/usr/local

PREFIX  ?= /usr/local
B       ?= build
CC      := gcc
MPICC   ?= mpicc
VERSION := 0.1.0

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT     ?= -O2 -g
SAN     ?=
CPPFLAGS:= -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS  := -std=gnu11 $(OPT) $(WARN) -fPIC -MMD -MP $(SAN)
LDFLAGS := $(SAN)

HDF5_CFLAGS := $(shell pkg-config --cflags hdf5-openmpi 2>/dev/null)
HDF5_LIBS   := $(shell pkg-config --libs hdf5-openmpi 2>/dev/null)
RUN_LIBS    := -lpng -ljpeg -lz -lm
JOB_LIBS    := $(HDF5_LIBS) $(RUN_LIBS)

# Library: local primitives and the pool.  No MPI in here.
LIB_SRCS := $(sort $(wildcard src/core/*.c src/pool/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
# mpc-run: MPI runtime, CLI and built-in jobs (built with mpicc).
RUN_SRCS := $(sort $(wildcard src/mpi/*.c src/cli/*.c))
JOB_SRCS := $(sort $(wildcard jobs/*/*.c))
RUN_OBJS := $(RUN_SRCS:%.c=$(B)/obj/%.o)
JOB_OBJS := $(JOB_SRCS:%.c=$(B)/obj/%.o)
# stats' HDF5 output is a plugin, loaded for --out only: mpc-run itself does
# not link HDF5 and the ~30 libraries it brings (13 ms of every start).
H5PLUG   := $(B)/lib/mpcrun/stats-hdf5.so
H5PLUG_OBJ := $(B)/obj/jobs/stats/h5out.o
RUNJOB_OBJS := $(filter-out $(H5PLUG_OBJ),$(JOB_OBJS))
# Unit tests: one CUnit suite per tests/unit/test_<name>.c.
UT_SRCS  := $(sort $(wildcard tests/unit/*.c))
UT_OBJS  := $(UT_SRCS:%.c=$(B)/obj/%.o)
UT_SUITES:= $(patsubst tests/unit/test_%.c,%,$(filter tests/unit/test_%.c,$(UT_SRCS)))
# Small helper programs used by tests and benchmarks: tests/helpers/<name>.c.
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))
HELPERS  := $(patsubst tests/helpers/%.c,$(B)/bin/%,$(HELPER_SRCS))

LIBA  := $(B)/lib/libmpcrun.a
LIBSO := $(B)/lib/libmpcrun.so
RUN   := $(B)/bin/mpc-run
UT    := $(B)/bin/unit_tests
PC    := $(B)/lib/pkgconfig/mpcrun.pc

ALL := $(LIBA) $(LIBSO) $(PC) $(UT) $(HELPERS)
ifneq ($(RUN_SRCS),)
ALL += $(RUN) $(H5PLUG)
endif

.PHONY: all deps test unit e2e demo asan bench install clean format
all: $(ALL)

deps:
	@bash scripts/install-deps.sh

$(B)/obj/src/core/%.o $(B)/obj/src/pool/%.o: CCX = $(CC)
$(B)/obj/src/mpi/%.o $(B)/obj/src/cli/%.o $(B)/obj/jobs/%.o $(B)/obj/tests/%.o: CCX = $(MPICC)
$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CCX) $(CPPFLAGS) $(HDF5_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSO): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libmpcrun.so.0 $(LDFLAGS) -o $@ $^ -lpthread -lrt -lm
	ln -sf libmpcrun.so $(B)/lib/libmpcrun.so.0

# pkg-config file; the build tree's copy points at the build tree.
define write_pc
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=%s\n\nName: mpcrun\nDescription: mpc parallel task toolkit (local pool, MPI task farm)\nVersion: %s\nCflags: -I$${includedir}\nLibs: -L$${libdir} -Wl,-rpath,$${libdir} -lmpcrun\nLibs.private: -lpthread -lrt -lm\n' '$(1)' '$(2)' '$(VERSION)' > $(3)
endef

$(PC): Makefile
	@mkdir -p $(dir $@)
	$(call write_pc,$(abspath $(B)),$(abspath include),$@)

# mpc-run links the shared library so that user jobs loaded with dlopen share
# one copy of libmpcrun with it.
$(RUN): $(RUN_OBJS) $(RUNJOB_OBJS) $(LIBSO)
	@mkdir -p $(dir $@)
	$(MPICC) $(LDFLAGS) -rdynamic -o $@ $(RUN_OBJS) $(RUNJOB_OBJS) -L$(B)/lib -Wl,-rpath,'$$ORIGIN/../lib' -lmpcrun $(RUN_LIBS) -ldl -lpthread -lrt

$(H5PLUG): $(H5PLUG_OBJ)
	@mkdir -p $(dir $@)
	$(MPICC) -shared $(LDFLAGS) -o $@ $< $(HDF5_LIBS)

$(B)/gen/suites.h: Makefile $(UT_SRCS)
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach s,$(UT_SUITES),'MPC_SUITE($(s))') > $@.tmp && mv $@.tmp $@

$(B)/obj/tests/unit/runner.o: $(B)/gen/suites.h
$(B)/obj/tests/unit/runner.o: CPPFLAGS += -I$(B)/gen

# The unit tests also link mpc-run's objects (not its main) to test their pure parts.
UT_RUN_OBJS := $(filter-out $(B)/obj/src/cli/main.o,$(RUN_OBJS))
# (They load the HDF5 plugin as mpc-run does, from ../lib; they link HDF5
# themselves to read files back.)
$(UT): $(UT_OBJS) $(UT_RUN_OBJS) $(RUNJOB_OBJS) $(LIBA) $(H5PLUG)
	@mkdir -p $(dir $@)
	$(MPICC) $(LDFLAGS) -o $@ $(UT_OBJS) $(UT_RUN_OBJS) $(RUNJOB_OBJS) $(LIBA) -lcunit $(JOB_LIBS) -ldl -lpthread -lrt

$(B)/bin/%: tests/helpers/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) $(HDF5_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBA) $(JOB_LIBS) -lpthread -lrt

test: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run-tests.sh $(B)

unit: all
	@bash scripts/run-tests.sh $(B) --unit-only

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh $(B)

ASAN_B ?= $(B)-asan
asan:
	@$(MAKE) --no-print-directory B=$(ASAN_B) OPT='-O1 -g -fno-omit-frame-pointer' \
	  SAN='-fsanitize=address,undefined -fno-sanitize-recover=undefined' \
	  $(ASAN_B)/bin/unit_tests
	@ASAN_OPTIONS=handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:quarantine_size_mb=16 \
	  bash scripts/run-tests.sh $(ASAN_B) --unit-only

bench: all
	@bash scripts/bench/run-all.sh $(B)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/mpc $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/libmpcrun.so
	ln -sf libmpcrun.so $(DESTDIR)$(PREFIX)/lib/libmpcrun.so.0
	install -m 644 include/mpc/*.h $(DESTDIR)$(PREFIX)/include/mpc/
	$(call write_pc,$(PREFIX),$(PREFIX)/include,$(DESTDIR)$(PREFIX)/lib/pkgconfig/mpcrun.pc)
	if [ -f $(RUN) ]; then install -m 755 $(RUN) $(DESTDIR)$(PREFIX)/bin/; fi
	if [ -f $(H5PLUG) ]; then install -d $(DESTDIR)$(PREFIX)/lib/mpcrun && \
	  install -m 755 $(H5PLUG) $(DESTDIR)$(PREFIX)/lib/mpcrun/; fi

clean:
	rm -rf $(B) $(B)-asan

format:
	clang-format -i $(LIB_SRCS) $(RUN_SRCS) $(JOB_SRCS) $(UT_SRCS) include/mpc/*.h

-include $(shell find $(B)/obj $(B)/bin -name '*.d' 2>/dev/null)
