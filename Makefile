# Coffer: convenience targets over meson. Every target installs missing Debian packages first.
#   make demo    build, start cofferd on a temporary data dir, run an unmodified program
#   make check   build and run every test (unit, fuzz corpus replay, integration)
#   make asan    the same suites under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench   benchmarks against baselines measured in the same run (release build)
#   make fuzz    build the libFuzzer targets (clang) and fuzz each for FUZZ_SECONDS
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

.PHONY: all deps build check asan demo bench fuzz clean

all: build

deps:
	@scripts/install-deps

build/build.ninja:
	meson setup build

build: deps build/build.ninja
	@ninja -C build

build-asan/build.ninja:
	meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all

build-rel/build.ninja:
	meson setup build-rel --buildtype=release -Dtests=false

check: build
	@$(PYTHON) tests/run-suites --build build

asan: deps build-asan/build.ninja
	@ninja -C build-asan
	@$(PYTHON) tests/run-suites --build build-asan --suites unit,integration

demo: build
	@scripts/demo

bench: deps build-rel/build.ninja
	@ninja -C build-rel
	@bench/run build-rel

fuzz: deps
	@test -f build-fuzz/build.ninja || CC=clang meson setup build-fuzz -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false
	@ninja -C build-fuzz
	@scripts/fuzz-all build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-rel build-fuzz
