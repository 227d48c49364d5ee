#!/usr/bin/env bash
# SMMU speed benchmark (issue 3, item 13): TLB-hit translations per second and cold
# 4-level walks per second through the whole SMMUv3 model, plus the walker alone.
# Builds the test suite in release (in .build-bench) and runs only the benchmark suites,
# which print their figures (they never assert timings). Usage: Tools/bench-smmu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh >/dev/null
swift build -c release -Xswiftc -enable-testing --build-tests --scratch-path .build-bench --quiet
# One suite at a time, so that the benchmarks never share the machine's two cores with
# each other. Each line gives wall-clock and thread-CPU rates and the best 50,000-op lap
# (the least disturbed by other processes); see Sources/SMMU/SMMU.docc/Model.md.
for suite in ModelBenchTests WalkBenchTests; do
    swift test -c release -Xswiftc -enable-testing --skip-build --scratch-path .build-bench \
        --filter "$suite" 2>&1 | grep -E "^(SMMU|walker)" || {
        echo "bench-smmu: $suite printed nothing (did it fail?)" >&2
        exit 1
    }
done
