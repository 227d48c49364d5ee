// An independent model of Firmware/images/bench.c, so tests can check the console line
// the firmware prints. The definition lives in bench.c's header comment: xorshift32
// data, CRC-32 (IEEE 802.3, reflected 0xEDB88320) over each round's buffer, ascending
// sort, and an FNV-style fold of a position-weighted sum. Written from that definition,
// not translated from the C: the sort here is the standard library's.

/// What `bench.elf` / `bench-small.elf` print, computed on the host.
enum BenchReference {
    /// Rounds in `bench.elf` (Tools/build-firmware.sh, BENCH_ROUNDS_FULL): about 494
    /// million instructions.
    static let fullRounds = 320
    /// Rounds in `bench-small.elf` (BENCH_ROUNDS_SMALL): about 3 million instructions.
    static let smallRounds = 2
    /// 32-bit words sorted per round.
    static let words = 4096

    /// The line the image prints for `rounds`, without its trailing newline, e.g.
    /// `bench: rounds=2 crc=0xa5c1938d sortsum=0x167d2145f8a5130d`.
    static func expectedLine(rounds: Int) -> String {
        precondition(rounds >= 0, "rounds must not be negative")
        let table = crcTable()
        var rng: UInt32 = 0x2545_F491
        var crc: UInt32 = 0xFFFF_FFFF
        var sortsum: UInt64 = 0xCBF2_9CE4_8422_2325
        var buffer = [UInt32](repeating: 0, count: words)
        for _ in 0..<rounds {
            for i in 0..<words {
                rng ^= rng << 13
                rng ^= rng >> 17
                rng ^= rng << 5
                buffer[i] = rng
            }
            for word in buffer {
                // Little-endian byte order, as the RV64 core stores the buffer.
                crc = table[Int((crc ^ word) & 0xFF)] ^ (crc >> 8)
                crc = table[Int((crc ^ (word >> 8)) & 0xFF)] ^ (crc >> 8)
                crc = table[Int((crc ^ (word >> 16)) & 0xFF)] ^ (crc >> 8)
                crc = table[Int((crc ^ (word >> 24)) & 0xFF)] ^ (crc >> 8)
            }
            buffer.sort()
            var weighted: UInt64 = 0
            for (i, value) in buffer.enumerated() {
                weighted &+= UInt64(value) &* UInt64(i + 1)
            }
            sortsum = (sortsum ^ weighted) &* 0x0000_0100_0000_01B3
        }
        return "bench: rounds=\(rounds) crc=0x\(hex(~crc, digits: 8)) sortsum=0x\(hex(sortsum, digits: 16))"
    }

    /// The image's whole console output: the line and its newline.
    static func expectedOutput(rounds: Int) -> String {
        expectedLine(rounds: rounds) + "\n"
    }

    private static func crcTable() -> [UInt32] {
        (0..<256).map { (n: UInt32) -> UInt32 in
            var c = n
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            return c
        }
    }

    private static func hex<T: BinaryInteger>(_ value: T, digits: Int) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }
}
