import Testing
import SMMUArch
import SimKernel
@testable import SMMU

/// A register file on a fresh simulator, with shorthands for MMIO by register name.
final class RegisterRig {
    let sim: Simulator
    let regs: SMMURegisterFile

    init(config: SMMUConfig = SMMUConfig(), parameters: RegisterFileParameters = .init()) {
        sim = Simulator(seed: 1)
        regs = SMMURegisterFile(config: config, simulator: sim, parameters: parameters)
    }

    convenience init(_ change: (inout SMMUConfig) -> Void) {
        var c = SMMUConfig()
        change(&c)
        self.init(config: c)
    }

    func write32(_ r: RegisterName, _ v: UInt64) { regs.write(offset: r.offset, size: 4, value: v) }
    func write64(_ r: RegisterName, _ v: UInt64) { regs.write(offset: r.offset, size: 8, value: v) }
    func read32(_ r: RegisterName) -> UInt64 { regs.read(offset: r.offset, size: 4) }
    func read64(_ r: RegisterName) -> UInt64 { regs.read(offset: r.offset, size: 8) }

    /// Runs events up to `time` and leaves the clock there (the simulator only moves its
    /// clock to a limit when an event lies beyond it, so one is placed at the limit).
    func advance(to time: Tick) {
        sim.schedule(at: time) {}
        sim.run(until: time)
    }

    /// Runs every pending event (completes all handshakes).
    func settle() { sim.run() }

    /// Writes CR0 and runs until the update is acknowledged.
    func setCR0(_ v: UInt64) {
        write32(.cr0, v)
        settle()
    }

    /// The problems diagnosed since the last call.
    func problems() -> [RegisterProblem] { regs.takeDiagnostics().map(\.problem) }

    /// Programs a queue of 2^log2 entries at `base` while it is disabled.
    func setUpQueue(_ q: SMMUQueue, log2: Int, base: UInt64 = 0x1_0000_0000) {
        let (b, p, c): (RegisterName, RegisterName, RegisterName) = switch q {
        case .command: (.cmdqBase, .cmdqProd, .cmdqCons)
        case .event: (.eventqBase, .eventqProd, .eventqCons)
        case .pri: (.priqBase, .priqProd, .priqCons)
        }
        write64(b, base | UInt64(log2))
        write32(p, 0)
        write32(c, 0)
    }
}

extension SMMUQueue {
    var baseRegister: RegisterName {
        switch self { case .command: .cmdqBase; case .event: .eventqBase; case .pri: .priqBase }
    }
    var prodRegister: RegisterName {
        switch self { case .command: .cmdqProd; case .event: .eventqProd; case .pri: .priqProd }
    }
    var consRegister: RegisterName {
        switch self { case .command: .cmdqCons; case .event: .eventqCons; case .pri: .priqCons }
    }
}
