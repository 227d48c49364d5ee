#!/usr/bin/env bash
# Memory-management speed and size benchmark (issue 5, item 6): host time of an
# mmap / touch 64 pages / munmap cycle with two MMU notifier subscribers, and the resident
# set of 1,000 processes with 1,000 touched pages each. Builds the test suite in release
# (in .build-bench) and runs only the MM benchmark suite, which prints its figures (it
# never asserts timings). Usage: Tools/bench-mm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh >/dev/null
swift build -c release -Xswiftc -enable-testing --build-tests --scratch-path .build-bench --quiet
MM_BENCH=1 swift test -c release -Xswiftc -enable-testing --skip-build --scratch-path .build-bench \
    --filter "MMBenchTests" 2>&1 | grep -E "^MM_BENCH" || {
    echo "bench-mm: the benchmark suite printed nothing (did it fail?)" >&2
    exit 1
}
