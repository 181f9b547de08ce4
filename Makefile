# Makefile: the quick start (`make run`, `make test`) and the work around it.
# CMake does the building; this file sets up, configures and runs.
JOBS   := $(shell nproc)
CONFIGURE := cmake -Wno-dev
PYTHON := /usr/bin/python3
PORT_ARGS ?=

.PHONY: all setup build build-asan build-tsan build-fuzz run test test-asan test-tsan fuzz bench \
        format clean

all: build

setup:
	@scripts/setup

build: setup
	@$(CONFIGURE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
	@cmake --build build -j$(JOBS)

build-asan: setup
	@$(CONFIGURE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DINFERD_SANITIZE=ON > /dev/null
	@cmake --build build-asan -j$(JOBS)

build-tsan: setup
	@$(CONFIGURE) -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFERD_TSAN=ON > /dev/null
	@cmake --build build-tsan -j$(JOBS)

build-fuzz: setup
	@CC=clang $(CONFIGURE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINFERD_FUZZ=ON > /dev/null
	@cmake --build build-fuzz -j$(JOBS)

# Serves the example models: HTTP on :8000, metrics on :8002.
run: build
	./build/inferd --model-repository examples/models $(PORT_ARGS)

# Every suite: the fuzz targets briefly, the C unit tests, the end-to-end tests.
test: build build-fuzz
	@scripts/test build --fuzz-seconds 30

# The same suites (fuzzing aside) on the ASan+UBSan build.
test-asan: build-asan
	@scripts/test build-asan

# The concurrency tests on the ThreadSanitizer build: the scheduler's unit
# tests and the end-to-end scheduling and gRPC suites.
test-tsan: build-tsan
	@scripts/test build-tsan --only "test_server_sched" "tests/e2e/test_scheduler.py tests/e2e/test_grpc.py"

fuzz: build-fuzz
	@scripts/fuzz $(or $(SECONDS),60)

bench: build
	@bench/run
	@bench/grpc-run
	@bench/onnx/run
	@bench/sched-run

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-fuzz
