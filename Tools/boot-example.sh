#!/usr/bin/env bash
# The README's first command: set up, build a release smmusim and boot the example image.
# Extra arguments go to `smmusim boot` (e.g. --trace out.json); IMAGE=... boots another image.
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh
swift build -c release --product smmusim
exec .build/release/smmusim boot "${IMAGE:-Firmware/build/hello.elf}" "$@"
