// Simulated threads of guest software (DESIGN.md, "Software: deterministic concurrency").

/// Identifies a simulated thread; ids are dense, in spawn order, starting at 0.
public struct SimThreadID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static func < (a: SimThreadID, b: SimThreadID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "t\(rawValue)" }
}

/// A simulated thread as seen by checkers and diagnostics: its id and name.
public struct SimThread: Hashable, Sendable, CustomStringConvertible {
    public let id: SimThreadID
    public let name: String

    public init(id: SimThreadID, name: String) {
        self.id = id
        self.name = name
    }

    /// The simulated thread whose guest code is running (nil outside guest code, e.g. in
    /// an event action). A task-local, so child tasks (`async let`, task groups) inherit it.
    @TaskLocal public static var current: SimThread?

    public var description: String { "\(name) (\(id))" }
}

/// Where a simulated thread is in its life.
public enum SimThreadState: Hashable, Sendable, CustomStringConvertible {
    /// Has a job waiting to run.
    case ready
    /// Its job is executing right now.
    case running
    /// Suspended in a SimKernel primitive; the string says on what (e.g. `signal cmdq`).
    case blocked(on: String)
    /// Its body returned.
    case finished

    public var description: String {
        switch self {
        case .ready: "ready"
        case .running: "running"
        case .blocked(let on): "blocked on \(on)"
        case .finished: "finished"
        }
    }
}

/// A thread left blocked when the simulation ran out of work: a guest deadlock.
public struct BlockedThread: Hashable, Sendable, CustomStringConvertible {
    public let thread: SimThread
    /// What it waits on, as named by the primitive (`signal <name>`, `sleep`, ...).
    public let waitingOn: String

    public var description: String { "\(thread.name) (\(thread.id)) waiting on \(waitingOn)" }
}

/// How the deterministic executor picks the next ready thread.
public enum SchedulingStrategy: Hashable, Sendable, CustomStringConvertible {
    /// First come, first served: a thread made ready goes to the back of the line, so
    /// threads that keep yielding take turns (round robin).
    case fifo
    /// A uniformly random ready thread at every step, drawn from the simulation seed.
    case random
    /// Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi & Nagarakatte,
    /// ASPLOS 2010): threads get random distinct priorities, the highest-priority ready
    /// thread always runs, and at `depth - 1` random steps among the first
    /// `expectedSteps` the running thread drops below every initial priority. Finds any
    /// bug of depth `d` with probability at least 1/(n·k^(d-1)).
    case pct(depth: Int, expectedSteps: Int)

    public var description: String {
        switch self {
        case .fifo: "fifo"
        case .random: "random"
        case .pct(let d, let k): "pct(depth: \(d), expectedSteps: \(k))"
        }
    }
}
