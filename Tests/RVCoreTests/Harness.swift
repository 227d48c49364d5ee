import Memory
import RVCore

/// A bus with one 4 KiB device page at 0x1000_0000 that records every access; everything
/// else is unmapped (nil: access fault).
final class FakeBus: RVBus {
    struct Access: Equatable {
        var isStore: Bool
        var address: UInt64
        var size: Int
        var value: UInt64
    }
    static let base: UInt64 = 0x1000_0000
    static let size: UInt64 = 0x1000
    /// Store: stop the core with the stored value as exit code.
    static let exit = base + 0x08
    /// Store: drive MEIP (bit 11) with `value != 0`.
    static let irq = base + 0x18

    var accesses: [Access] = []
    /// Values returned by loads, by address (0 if absent).
    var values: [UInt64: UInt64] = [:]
    var extraCycles: UInt64 = 0

    func load(_ address: UInt64, size: Int, core: RVCore) -> RVBusResponse? {
        guard address >= FakeBus.base && address < FakeBus.base + FakeBus.size else { return nil }
        accesses.append(Access(isStore: false, address: address, size: size, value: 0))
        return RVBusResponse(value: values[address] ?? 0, extraCycles: extraCycles)
    }

    func store(_ address: UInt64, size: Int, value: UInt64, core: RVCore) -> RVBusResponse? {
        guard address >= FakeBus.base && address < FakeBus.base + FakeBus.size else { return nil }
        accesses.append(Access(isStore: true, address: address, size: size, value: value))
        if address == FakeBus.exit { core.requestStop(.exited(code: value)) }
        if address == FakeBus.irq { core.setInterruptPending(11, value != 0) }
        return RVBusResponse(value: 0, extraCycles: extraCycles)
    }
}

/// SRAM at 0x8000_0000 with a core and a recording bus. Code goes at `base`, a trap handler
/// at `handler` (page 1), data at `data` (page 2). x31 (t6) is reserved for `halt`.
final class Machine {
    static let base: UInt64 = 0x8000_0000
    static let handler = base + 0x1000
    static let data = base + 0x2000
    static let size: UInt64 = 0x1_0000

    let memory: LocalMemory
    let bus = FakeBus()
    let core: RVCore

    init(hartID: UInt64 = 0, timing: RVCoreTiming = .init(), size: UInt64 = Machine.size) {
        memory = LocalMemory(base: Machine.base, size: size)
        core = RVCore(hartID: hartID, memory: memory, bus: bus, timing: timing)
    }

    /// Stops the core with exit code 0 (two instructions, two cycles with default timing).
    static let halt: [Inst] = [A.lui(R.t6, 0x10000), A.sd(R.zero, 8, R.t6)]
    /// Sets mtvec to `handler` (direct mode) using t5.
    static let setHandler: [Inst] = setTrapVector(handler)
    /// Sets mtvec to `address` using t5 (for handlers other than the halting one, which
    /// ``run(_:budget:)`` writes at `handler`).
    static func setTrapVector(_ address: UInt64) -> [Inst] { A.li(R.t5, address) + [A.csrw(0x305, R.t5)] }

    /// Writes instructions at `address`; returns the address after them.
    @discardableResult
    func place(_ code: [Inst], at address: UInt64) -> UInt64 {
        let bytes = code.flatMap(\.bytes)
        memory.write(bytes, at: address)
        return address + UInt64(bytes.count)
    }

    /// Places `code` followed by `halt` at `base`, a halting trap handler at `handler`,
    /// sets pc to `base` and runs.
    @discardableResult
    func run(_ code: [Inst], budget: UInt64 = 100_000) -> RVStopReason {
        place(code + Machine.halt, at: Machine.base)
        place(Machine.halt, at: Machine.handler)
        core.pc = Machine.base
        return core.run(cycleBudget: budget)
    }

    var mcause: UInt64 { core.csr(0x342)! }
    var mepc: UInt64 { core.csr(0x341)! }
    var mtval: UInt64 { core.csr(0x343)! }
    var mstatus: UInt64 { core.csr(0x300)! }

    /// Address of instruction number `index` in `code` placed at `base`.
    static func address(of index: Int, in code: [Inst]) -> UInt64 {
        base + UInt64(code.prefix(index).reduce(0) { $0 + $1.size })
    }
}
