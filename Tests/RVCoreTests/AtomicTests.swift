import Testing
import Memory
import RVCore

// The A extension on SRAM (Unprivileged ISA ch. 14): every AMO in both widths, LR/SC
// pairs and the ways a reservation is lost.

struct AMOCase: Sendable, CustomTestStringConvertible {
    let name: String
    let funct5: UInt32
    let word: Bool
    let memory: UInt64
    let operand: UInt64
    let expectMemory: UInt64
    var testDescription: String { "amo\(name).\(word ? "w" : "d")" }
}

let amoCases: [AMOCase] = [
    AMOCase(name: "swap", funct5: 0b00001, word: false, memory: 0x1111, operand: 0x2222, expectMemory: 0x2222),
    AMOCase(name: "swap", funct5: 0b00001, word: true, memory: 0xAAAA_AAAA_8000_0000, operand: 0x1234_5678, expectMemory: 0xAAAA_AAAA_1234_5678),
    AMOCase(name: "add", funct5: 0b00000, word: false, memory: int64Max, operand: 1, expectMemory: int64Min),
    AMOCase(name: "add", funct5: 0b00000, word: true, memory: 0xAAAA_AAAA_FFFF_FFFF, operand: 2, expectMemory: 0xAAAA_AAAA_0000_0001),
    AMOCase(name: "xor", funct5: 0b00100, word: false, memory: 0xFF00, operand: 0x0FF0, expectMemory: 0xF0F0),
    AMOCase(name: "xor", funct5: 0b00100, word: true, memory: 0xFF00, operand: 0x0FF0, expectMemory: 0xF0F0),
    AMOCase(name: "and", funct5: 0b01100, word: false, memory: 0xFF00, operand: 0x0FF0, expectMemory: 0x0F00),
    AMOCase(name: "and", funct5: 0b01100, word: true, memory: 0xFF00, operand: 0x0FF0, expectMemory: 0x0F00),
    AMOCase(name: "or", funct5: 0b01000, word: false, memory: 0xFF00, operand: 0x0FF0, expectMemory: 0xFFF0),
    AMOCase(name: "or", funct5: 0b01000, word: true, memory: 0xFF00, operand: 0x0FF0, expectMemory: 0xFFF0),
    AMOCase(name: "min", funct5: 0b10000, word: false, memory: 1, operand: minus1, expectMemory: minus1),
    AMOCase(name: "min", funct5: 0b10000, word: true, memory: 1, operand: 0xFFFF_FFFF, expectMemory: 0xFFFF_FFFF),
    AMOCase(name: "max", funct5: 0b10100, word: false, memory: minus1, operand: 1, expectMemory: 1),
    AMOCase(name: "max", funct5: 0b10100, word: true, memory: 0x8000_0000, operand: 0x7FFF_FFFF, expectMemory: 0x7FFF_FFFF),
    AMOCase(name: "minu", funct5: 0b11000, word: false, memory: minus1, operand: 1, expectMemory: 1),
    // .w compares only the low 32 bits: 0x1_0000_0005 counts as 5.
    AMOCase(name: "minu", funct5: 0b11000, word: true, memory: 0x8000_0000, operand: 0x1_0000_0005, expectMemory: 5),
    AMOCase(name: "maxu", funct5: 0b11100, word: false, memory: 1, operand: minus1, expectMemory: minus1),
    AMOCase(name: "maxu", funct5: 0b11100, word: true, memory: 0x7FFF_FFFF, operand: 0x8000_0000, expectMemory: 0x8000_0000),
]

@Suite struct AtomicTests {
    @Test(arguments: amoCases)
    func amo(_ c: AMOCase) {
        let m = Machine()
        let address = Machine.data + 8
        m.memory.store(c.memory, at: address)
        m.core.setRegister(R.a1, address)
        m.core.setRegister(R.a2, c.operand)
        m.run([A.amo(c.funct5, c.word ? 2 : 3, R.a0, R.a2, R.a1)])
        if c.word {
            // rd gets the old word sign-extended; only the low word of memory changes.
            #expect(m.core.register(R.a0) == UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: c.memory))))
            #expect(m.memory.load(address, as: UInt64.self) == (c.memory & 0xFFFF_FFFF_0000_0000) | (c.expectMemory & 0xFFFF_FFFF))
        } else {
            #expect(m.core.register(R.a0) == c.memory)
            #expect(m.memory.load(address, as: UInt64.self) == c.expectMemory)
        }
    }

    @Test func amoWithRdEqualToRs2UsesTheOldOperand() {
        let m = Machine()
        m.memory.store(UInt64(10), at: Machine.data)
        m.core.setRegister(R.a1, Machine.data)
        m.core.setRegister(R.a2, 5)
        m.run([A.amo(0b00000, 3, R.a2, R.a2, R.a1)])
        #expect(m.core.register(R.a2) == 10)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 15)
    }

    static let lrsc = [A.lrD(R.a0, R.a1), A.addi(R.a0, R.a0, 1), A.scD(R.a3, R.a0, R.a1)]

    static func lrscMachine(_ value: UInt64 = 41) -> Machine {
        let m = Machine()
        m.memory.store(value, at: Machine.data)
        m.core.setRegister(R.a1, Machine.data)
        return m
    }

    @Test func lrScPairSucceeds() {
        let m = AtomicTests.lrscMachine()
        m.run(AtomicTests.lrsc)
        #expect(m.core.register(R.a3) == 0)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 42)
    }

    @Test func lrWordSignExtendsAndScWordWritesFourBytes() {
        let m = AtomicTests.lrscMachine(0xAAAA_AAAA_FFFF_FFFF)
        m.run([A.lrW(R.a0, R.a1), A.addi(R.a0, R.a0, 1), A.scW(R.a3, R.a0, R.a1)])
        #expect(m.core.register(R.a3) == 0)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 0xAAAA_AAAA_0000_0000)
    }

    @Test func scWithoutReservationFailsAndDoesNotWrite() {
        let m = AtomicTests.lrscMachine()
        m.core.setRegister(R.a0, 7)
        m.run([A.scD(R.a3, R.a0, R.a1)])
        #expect(m.core.register(R.a3) == 1)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 41)
    }

    @Test func scAfterScFails() {
        let m = AtomicTests.lrscMachine()
        m.run(AtomicTests.lrsc + [A.scD(R.a4, R.a0, R.a1)])
        #expect(m.core.register(R.a3) == 0)
        #expect(m.core.register(R.a4) == 1)
    }

    @Test func scToAnotherAddressFails() {
        let m = AtomicTests.lrscMachine()
        m.core.setRegister(R.a2, Machine.data + 64)
        m.run([A.lrD(R.a0, R.a1), A.scD(R.a3, R.a0, R.a2)])
        #expect(m.core.register(R.a3) == 1)
        #expect(m.memory.load(Machine.data + 64, as: UInt64.self) == 0)
    }

    @Test func storeToTheReservedGranuleBreaksTheReservation() {
        let m = AtomicTests.lrscMachine()
        m.run([A.lrD(R.a0, R.a1), A.sb(R.zero, 3, R.a1), A.addi(R.a0, R.a0, 1), A.scD(R.a3, R.a0, R.a1)])
        #expect(m.core.register(R.a3) == 1)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 41)
    }

    @Test func storeNextToTheGranuleKeepsTheReservation() {
        let m = AtomicTests.lrscMachine()
        m.run([A.lrD(R.a0, R.a1), A.sd(R.zero, 8, R.a1), A.sw(R.zero, -4, R.a1), A.addi(R.a0, R.a0, 1),
               A.scD(R.a3, R.a0, R.a1)])
        #expect(m.core.register(R.a3) == 0)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 42)
    }

    @Test func amoToTheReservedGranuleBreaksTheReservation() {
        let m = AtomicTests.lrscMachine()
        m.run([A.lrD(R.a0, R.a1), A.amo(0b00000, 2, R.zero, R.zero, R.a1), A.scD(R.a3, R.a0, R.a1)])
        #expect(m.core.register(R.a3) == 1)
    }

    @Test func aTrapBreaksTheReservation() {
        let m = AtomicTests.lrscMachine()
        // The handler skips the ecall and returns.
        m.place([A.csrr(R.t0, 0x341), A.addi(R.t0, R.t0, 4), A.csrw(0x341, R.t0), A.mret()], at: Machine.handler + 0x100)
        let code = A.li(R.t5, Machine.handler + 0x100) + [A.csrw(0x305, R.t5)]
            + [A.lrD(R.a0, R.a1), A.ecall(), A.scD(R.a3, R.a0, R.a1)]
        m.run(code)
        #expect(m.core.register(R.a3) == 1)
    }

    @Test func aWriteByAnotherAgentBreaksTheReservation() {
        let m = AtomicTests.lrscMachine()
        // Stop between LR and SC with a wfi; a DMA-like write lands in the granule.
        let code = [A.lrD(R.a0, R.a1), A.wfi(), A.scD(R.a3, R.a0, R.a1)] + Machine.halt
        m.place(code, at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 100) == .waitingForInterrupt)
        m.memory.store(UInt64(99), at: Machine.data)
        #expect(m.core.run(cycleBudget: 100) == .exited(code: 0))
        #expect(m.core.register(R.a3) == 1)
        #expect(m.memory.load(Machine.data, as: UInt64.self) == 99)
    }

    @Test func reservationSurvivesAStopWithoutInterference() {
        let m = AtomicTests.lrscMachine()
        let code = [A.lrD(R.a0, R.a1), A.wfi(), A.scD(R.a3, R.a0, R.a1)] + Machine.halt
        m.place(code, at: Machine.base)
        m.core.pc = Machine.base
        #expect(m.core.run(cycleBudget: 100) == .waitingForInterrupt)
        #expect(m.core.run(cycleBudget: 100) == .exited(code: 0))
        #expect(m.core.register(R.a3) == 0)
    }

    @Test func lrScSpinLoopCountsCorrectly() {
        // Like rv64ua-p-lrsc: add 1 to a counter 100 times through LR/SC.
        let m = AtomicTests.lrscMachine(0)
        m.run([A.addi(R.a2, R.zero, 100),
               A.lrW(R.a4, R.a1), A.addi(R.a4, R.a4, 1), A.scW(R.a4, R.a4, R.a1), A.bne(R.a4, R.zero, -12),
               A.addi(R.a2, R.a2, -1), A.bne(R.a2, R.zero, -20)])
        #expect(m.memory.load(Machine.data, as: UInt32.self) == 100)
    }
}
