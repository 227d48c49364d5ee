// User errors from loading a firmware image (DESIGN.md, "Errors — three kinds, kept apart"):
// a bad ELF gets one clear line naming the file and the problem.

/// Why an ELF image could not be loaded: the file, what was wrong, and a category.
///
/// `description` is one line, `"<path>: <problem>"`, ready to print before a non-zero exit.
public struct ELFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What kind of problem it was, for callers and tests that branch on it.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The file could not be opened or read (the problem names the OS reason), or is
        /// implausibly large for firmware (over 256 MiB).
        case unreadable
        /// The file does not start with the ELF magic `\u{7f}ELF` (an empty file included).
        case notELF
        /// The file ends before something the headers say is in it.
        case truncated
        /// Not a 64-bit ELF file (ELF32, or an invalid `EI_CLASS`).
        case wrongClass
        /// Not little-endian (or an invalid `EI_DATA`).
        case wrongEncoding
        /// `e_machine` is not `EM_RISCV` (243).
        case wrongMachine
        /// `e_type` is not `ET_EXEC`.
        case wrongType
        /// Headers that are internally inconsistent (bad entry sizes, unsupported
        /// numbering, a broken symbol table).
        case malformed
        /// No `PT_LOAD` program header.
        case noLoadSegment
        /// A `PT_LOAD` segment with `p_filesz > p_memsz`.
        case fileSizeExceedsMemorySize
        /// A segment does not fit in the load region (device SRAM).
        case outsideLoadRegion
        /// Two segments occupy the same addresses.
        case overlappingSegments
        /// `e_entry` is not inside any loaded executable segment.
        case entryNotExecutable
    }

    /// The file as given by the caller.
    public let path: String
    public let kind: Kind
    /// One line, without the path.
    public let problem: String

    public init(path: String, kind: Kind, problem: String) {
        self.path = path
        self.kind = kind
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
