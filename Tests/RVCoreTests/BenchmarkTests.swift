import Testing
import Foundation
import Memory
import RVCore
#if canImport(Glibc)
import Glibc
#endif

// Interpreter speed, measured ad hoc (see RVCore.docc/Interpreter.md):
//
//   RVCORE_BENCH_INSTRUCTIONS=300000000 swift test -c release \
//       --scratch-path .build-core-rel --filter InterpreterBenchmark
//
// The test checks the program's result, never the time, so it passes on any machine;
// by default it runs a couple of million instructions so the debug suite stays fast.

@Suite struct InterpreterBenchmark {
    static let words = 256

    /// A loop over a 2 KiB array: per element a load, a store, five ALU operations (two of
    /// them compressed) and a taken branch; an outer loop repeats it `passes` times.
    static func program(passes: Int) -> [Inst] {
        A.li(R.a0, UInt64(passes)) + [
            // outer:
            A.mv(R.s1, R.s0),
            A.addi(R.a2, R.zero, words),
            // inner:
            A.ld(R.t0, 0, R.s1),
            A.add(R.t1, R.t1, R.t0),
            A.xor(R.t2, R.t2, R.t1),
            A.slli(R.t3, R.t1, 3),
            A.sd(R.t3, 0, R.s1),
            A.cAddi(R.s1, 8),
            A.cAddi(R.a2, -1),
            A.bne(R.a2, R.zero, -24),
            A.addi(R.a0, R.a0, -1),
            A.bne(R.a0, R.zero, -40),
        ]
    }

    /// The same computation in Swift.
    static func expected(passes: Int) -> (t1: UInt64, t2: UInt64, array: [UInt64]) {
        var array = (0..<words).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        var t1: UInt64 = 0, t2: UInt64 = 0
        for _ in 0..<passes {
            for i in 0..<words {
                t1 &+= array[i]
                t2 ^= t1
                array[i] = t1 << 3
            }
        }
        return (t1, t2, array)
    }

    @Test func mixedLoopRunsCorrectlyAndReportsMIPS() {
        let requested = ProcessInfo.processInfo.environment["RVCORE_BENCH_INSTRUCTIONS"].flatMap { UInt64($0) } ?? 2_000_000
        let perPass = UInt64(8 * InterpreterBenchmark.words + 4)
        let passes = Int(max(1, requested / perPass))

        let m = Machine()
        for i in 0..<InterpreterBenchmark.words {
            m.memory.store(UInt64(i) &* 0x9E37_79B9_7F4A_7C15, at: Machine.data + UInt64(8 * i))
        }
        m.core.setRegister(R.s0, Machine.data)
        let clock = ContinuousClock()
        let start = clock.now
        let cpuStart = InterpreterBenchmark.threadCPUSeconds()
        let stop = m.run(InterpreterBenchmark.program(passes: passes), budget: .max)
        let cpu = InterpreterBenchmark.threadCPUSeconds() - cpuStart
        let elapsed = clock.now - start

        #expect(stop == .exited(code: 0))
        let e = InterpreterBenchmark.expected(passes: passes)
        #expect(m.core.register(R.t1) == e.t1)
        #expect(m.core.register(R.t2) == e.t2)
        #expect(m.memory.read(Machine.data, length: 8 * InterpreterBenchmark.words)
                == e.array.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } })

        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let n = Double(m.core.instret)
        // Wall time counts time the OS gave to other processes; thread CPU time does not.
        print("RVCore benchmark: \(m.core.instret) instructions, \(m.core.cycles) cycles, "
              + "wall \(String(format: "%.3f", seconds)) s = \(String(format: "%.1f", n / seconds / 1e6)) MIPS, "
              + "cpu \(String(format: "%.3f", cpu)) s = \(String(format: "%.1f", n / cpu / 1e6)) MIPS")
    }

    /// CPU time of the calling thread (0 where the platform has no such clock).
    static func threadCPUSeconds() -> Double {
        #if canImport(Glibc)
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        #else
        return 0
        #endif
    }
}
