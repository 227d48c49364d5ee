#!/usr/bin/env bash
# build-firmware.sh — builds the SMMUSim device images in Firmware/images into
# Firmware/build/*.elf with the Swift toolchain's own clang and ld.lld (no other
# toolchain). Always a full rebuild: it takes about a second.
#
#   Tools/build-firmware.sh            build everything
#   CLANG=/path/to/clang Tools/build-firmware.sh   use another clang (and the ld.lld
#                                      next to it)
#
# Images: hello.elf, selftest.elf, bench.elf (BENCH_ROUNDS_FULL rounds),
# bench-small.elf (BENCH_ROUNDS_SMALL rounds, for debug-mode tests), trap-loop.elf,
# idle.elf, and the DMA / queue images dma-copy.elf, dma-fault.elf, queue-service.elf. The round counts
# are also in Tests/DevicePlatformTests/BenchReference.swift; change both together.
set -euo pipefail

BENCH_ROUNDS_FULL=320
BENCH_ROUNDS_SMALL=2

if [[ $# -gt 0 ]]; then
    echo "usage: $0   (no arguments; set CLANG to choose a compiler)" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fw="$root/Firmware"
out="$fw/build"

if [[ -z "${CLANG:-}" ]]; then
    swift_bin="$(command -v swift || true)"
    if [[ -z "$swift_bin" ]]; then
        echo "build-firmware: swift is not on PATH; cannot find the toolchain's clang (or set CLANG)" >&2
        exit 1
    fi
    CLANG="$(dirname "$(readlink -f "$swift_bin")")/clang"
fi
toolbin="$(dirname "$(readlink -f "$CLANG")")"
LLD="$toolbin/ld.lld"
for tool in "$CLANG" "$LLD"; do
    if [[ ! -x "$tool" ]]; then
        echo "build-firmware: $tool not found or not executable" >&2
        exit 1
    fi
done

target=(--target=riscv64-unknown-elf -march=rv64imac_zicsr_zifencei -mabi=lp64 -mcmodel=medany)
# -ffreestanding -fno-builtin: no hosted library exists, and string.c must not be
# compiled into calls to itself. No unwind tables: nothing unwinds.
cflags=("${target[@]}" -O2 -std=c11 -ffreestanding -fno-builtin -nostdlib
        -fno-common -fno-asynchronous-unwind-tables -fno-unwind-tables
        -ffunction-sections -fdata-sections
        -Wall -Wextra -Werror -I "$fw/include")
ldflags=(-fuse-ld=lld "--ld-path=$LLD" -nostdlib -static -T "$fw/runtime/link.ld"
         -Wl,--gc-sections -Wl,--orphan-handling=error -Wl,--fatal-warnings)

# A clang built without the RISC-V backend fails here with a clear message.
probe_err="$(printf 'int x;\n' | "$CLANG" "${target[@]}" -x c -c - -o /dev/null 2>&1)" || {
    echo "build-firmware: $CLANG cannot compile for riscv64-unknown-elf:" >&2
    echo "$probe_err" | head -n 3 >&2
    exit 1
}

rm -rf "$out"
mkdir -p "$out/obj"

runtime_objs=()
for src in "$fw"/runtime/*.c "$fw"/runtime/*.S; do
    obj="$out/obj/runtime-$(basename "${src%.*}").o"
    "$CLANG" "${cflags[@]}" -c "$src" -o "$obj"
    runtime_objs+=("$obj")
done

# link NAME SOURCE [extra cflags...]
link() {
    local name="$1" src="$2"
    shift 2
    local obj="$out/obj/$name.o" elf="$out/$name.elf"
    "$CLANG" "${cflags[@]}" "$@" -c "$src" -o "$obj"
    "$CLANG" "${target[@]}" "${ldflags[@]}" -Wl,-Map="$out/$name.map" \
        "${runtime_objs[@]}" "$obj" -o "$elf"
    printf 'built %-40s %7d bytes\n' "${elf#"$root"/}" "$(wc -c < "$elf")"
}

link hello "$fw/images/hello.c"
link selftest "$fw/images/selftest.c"
link bench "$fw/images/bench.c" -DBENCH_ROUNDS="$BENCH_ROUNDS_FULL"
link bench-small "$fw/images/bench.c" -DBENCH_ROUNDS="$BENCH_ROUNDS_SMALL"
link trap-loop "$fw/images/trap-loop.c"
link idle "$fw/images/idle.c"
link dma-copy "$fw/images/dma-copy.c"
link dma-fault "$fw/images/dma-fault.c"
link queue-service "$fw/images/queue-service.c"
