import GuestKernel
import SimKernel

/// Mutable state shared between guest closures; only touched inside `Simulator.run`, which
/// runs one thing at a time.
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// A fresh simulator and kernel.
func makeKernel(seed: UInt64 = 1, strategy: SchedulingStrategy = .fifo, cpus: Int = 4,
                trace: Bool = false, configure: (inout KernelConfig) -> Void = { _ in }) -> Kernel {
    let sim = Simulator(seed: seed, strategy: strategy)
    if trace { sim.trace = TraceSink() }
    var config = KernelConfig()
    config.cpuCount = cpus
    configure(&config)
    return Kernel(sim: sim, config: config)
}

/// The strategies the many-seed tests sweep.
let exploringStrategies: [SchedulingStrategy] = [.random, .pct(depth: 3, expectedSteps: 200)]

extension Kernel {
    /// Kinds of the diagnostics reported so far, in order.
    var diagnosticKinds: [DiagnosticKind] { diagnostics.map(\.kind) }
}
