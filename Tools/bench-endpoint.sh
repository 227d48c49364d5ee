#!/usr/bin/env bash
# Endpoint speed benchmark (issue 4, item 11): simulated 64-byte DMA reads with a warm ATC
# (target ≥ 5 M transactions per second of host time), the same with ATS off (the SMMU's
# micro-TLB translates), and the simulated time of a 1 MiB SVA copy with ATS on and off.
# Builds the test suite in release (in .build-bench) and runs only the benchmark suite,
# which prints its figures (it never asserts timings). Usage: Tools/bench-endpoint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh >/dev/null
swift build -c release -Xswiftc -enable-testing --build-tests --scratch-path .build-bench --quiet
swift test -c release -Xswiftc -enable-testing --skip-build --scratch-path .build-bench \
    --filter "EndpointBenchTests" 2>&1 | grep -E "^endpoint" || {
    echo "bench-endpoint: the benchmark suite printed nothing (did it fail?)" >&2
    exit 1
}
