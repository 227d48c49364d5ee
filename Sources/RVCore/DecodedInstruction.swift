// The pre-decoded instruction format the interpreter executes (see the "Interpreter"
// article): one 16-byte trivial struct per 2-byte slot of a code page.

/// Operations after decoding. Compressed instructions expand into the same operations as
/// their 32-bit forms; a few common shapes get their own operation (`li`, `mv`, `j`, `jr`,
/// `nop`) so the hot loop does less work for them.
enum Op: UInt8 {
    /// The slot has not been decoded yet (the zero value, so fresh or reset memory is it).
    case undecoded = 0
    /// Illegal instruction; `imm` holds the instruction bits (mtval).
    case illegal
    /// A 32-bit instruction whose upper half lies past the end of SRAM; `imm` holds the
    /// address of the missing half (mtval).
    case fetchFault
    case nop
    /// rd = imm (`lui`, `auipc` with the pc folded in, `addi rd, x0, imm`, `c.li`, `c.lui`).
    case li
    /// rd = rs1 (`addi rd, rs, 0`, `c.mv`, `add rd, x0, rs`).
    case mv
    case addi, slti, sltiu, xori, ori, andi, slli, srli, srai
    case addiw, slliw, srliw, sraiw
    case add, sub, sll, slt, sltu, xor, srl, sra, or, and
    case addw, subw, sllw, srlw, sraw
    case mul, mulh, mulhsu, mulhu, div, divu, rem, remu
    case mulw, divw, divuw, remw, remuw
    case lb, lh, lw, ld, lbu, lhu, lwu
    case sb, sh, sw, sd
    /// Branches: `imm` is the absolute target.
    case beq, bne, blt, bge, bltu, bgeu
    /// `jal`: rd = pc + length, pc = imm (absolute target). `j` is `jal` with rd = x0.
    case jal, j
    /// `jalr`: target = (rs1 + imm) & ~1. `jr` is `jalr` with rd = x0.
    case jalr, jr
    case fence, fenceI, ecall, ebreak, mret, wfi
    /// Zicsr: `aux` is funct3 (1 rw, 2 rs, 3 rc, 5 rwi, 6 rsi, 7 rci), `imm` the CSR
    /// address, `rs1` the source register or the 5-bit immediate.
    case csr
    case lrW, lrD, scW, scD
    /// AMOs: `aux` is funct5 (see ``AMOFunction``).
    case amoW, amoD
    /// Sentinel slots after the last real slot of a page: execution ran off the page end.
    case pageEnd
    /// The run loop's own slot for a jump to a pc outside the current page.
    case redirect
}

/// The `funct5` field of an AMO (RISC-V unprivileged spec, "A" extension, table of AMOs).
enum AMOFunction: UInt8 {
    case add = 0b00000, swap = 0b00001, xor = 0b00100, or = 0b01000, and = 0b01100
    case min = 0b10000, max = 0b10100, minu = 0b11000, maxu = 0b11100
}

/// One decoded instruction. Trivial and 16 bytes, so a page of 2048 slots is 32 KiB and
/// resetting slots is a plain memory fill.
struct DecodedInstruction {
    var op: Op
    /// Destination register; x0 is mapped to the sink slot 32 so writes need no test.
    var rd: UInt8
    var rs1: UInt8
    var rs2: UInt8
    /// 2 or 4 bytes.
    var length: UInt8
    var aux: UInt8
    /// Bytes from this slot to the next instruction's slot: `length / 2` slots of 16 bytes.
    var advance: UInt8
    var imm: Int64

    init(_ op: Op, rd: UInt8 = RegisterFile.sink, rs1: UInt8 = 0, rs2: UInt8 = 0,
         length: UInt8 = 4, aux: UInt8 = 0, imm: Int64 = 0) {
        self.op = op
        self.rd = rd
        self.rs1 = rs1
        self.rs2 = rs2
        self.length = length
        self.aux = aux
        self.advance = length &* 8
        self.imm = imm
    }
}

/// Layout of the integer register file in memory.
enum RegisterFile {
    /// Index that stands for x0 as a destination: writes land here and are never read.
    static let sink: UInt8 = 32
    static let slots = 33
}
