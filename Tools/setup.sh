#!/usr/bin/env bash
# Prepares a fresh machine: installs libelf-dev when missing and builds the firmware
# images with the Swift toolchain's clang. Idempotent; used by the README's commands.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pkg-config --exists libelf 2>/dev/null || [ ! -e /usr/include/gelf.h ]; then
    echo "setup: installing libelf-dev (the ELF library the image loader uses)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    if ! $SUDO apt-get install -y -q libelf-dev >/dev/null 2>&1; then
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q libelf-dev >/dev/null
    fi
fi
if ! command -v pkg-config >/dev/null; then
    echo "setup: pkg-config is missing; install it (apt-get install -y pkg-config)" >&2
    exit 1
fi

Tools/build-firmware.sh
