#!/usr/bin/env bash
# Core speed benchmark (issue 2, item 10): boots Firmware/build/bench.elf with a release
# smmusim RUNS times (default 5) and reports host MIPS for each run and the median.
# Usage: Tools/bench.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
Tools/setup.sh >/dev/null
swift build -c release --product smmusim >/dev/null
results=()
for i in $(seq 1 "$RUNS"); do
    json=$(.build/release/smmusim boot Firmware/build/bench.elf --quiet --json)
    mips=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.1f %d %.3f" % (r["hostMIPS"], r["summary"]["instructions"], r["hostSeconds"]))' "$json")
    set -- $mips
    echo "run $i: $1 MIPS ($2 instructions in $3 s)"
    results+=("$1")
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] " MIPS over " NR " runs"}'
