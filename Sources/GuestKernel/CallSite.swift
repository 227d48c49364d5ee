// Call sites of guest primitives, for diagnostics (DESIGN.md, "Errors": misprogramming is
// reported with the simulated time and the culprit).

/// Where guest code called a primitive: function, file and line.
///
/// Every primitive takes `site: StaticString = #function, file: StaticString = #fileID,
/// line: UInt = #line`, so the caller's location is captured without allocating; a driver
/// may pass its own name instead (`kmalloc(cd, site: "arm_smmu_alloc_cd")`), as a Linux
/// report would name the kernel function.
public struct CallSite: Sendable, CustomStringConvertible, Equatable {
    public let function: StaticString
    public let file: StaticString
    public let line: UInt

    public init(_ function: StaticString, _ file: StaticString, _ line: UInt) {
        self.function = function
        self.file = file
        self.line = line
    }

    /// `function (file:line)`.
    public var description: String { "\(function) (\(file):\(line))" }

    public static func == (a: CallSite, b: CallSite) -> Bool {
        a.line == b.line && a.function.description == b.function.description
            && a.file.description == b.file.description
    }
}
