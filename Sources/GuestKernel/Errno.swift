// Linux error numbers (include/uapi/asm-generic/errno-base.h and errno.h; the values are
// the same on arm64). Guest kernel calls return them as values (DESIGN.md, "Errors": -errno
// from guest kernel calls is an architected outcome, not a Swift error path).

/// A positive Linux error number; kernel functions return it negated, as `-EBUSY`.
public struct Errno: RawRepresentable, Hashable, Sendable, Error, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = Errno(rawValue: 1)
    public static let ENOENT = Errno(rawValue: 2)
    public static let ESRCH = Errno(rawValue: 3)
    public static let EINTR = Errno(rawValue: 4)
    public static let EIO = Errno(rawValue: 5)
    public static let E2BIG = Errno(rawValue: 7)
    public static let EBADF = Errno(rawValue: 9)
    public static let EAGAIN = Errno(rawValue: 11)
    public static let ENOMEM = Errno(rawValue: 12)
    public static let EACCES = Errno(rawValue: 13)
    public static let EFAULT = Errno(rawValue: 14)
    public static let EBUSY = Errno(rawValue: 16)
    public static let EEXIST = Errno(rawValue: 17)
    public static let ENODEV = Errno(rawValue: 19)
    public static let EINVAL = Errno(rawValue: 22)
    public static let ENOSPC = Errno(rawValue: 28)
    public static let ERANGE = Errno(rawValue: 34)
    public static let ENOSYS = Errno(rawValue: 38)
    public static let EOVERFLOW = Errno(rawValue: 75)
    public static let EOPNOTSUPP = Errno(rawValue: 95)
    public static let ETIMEDOUT = Errno(rawValue: 110)

    private static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 7: "E2BIG", 9: "EBADF",
        11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST",
        19: "ENODEV", 22: "EINVAL", 28: "ENOSPC", 34: "ERANGE", 38: "ENOSYS", 75: "EOVERFLOW",
        95: "EOPNOTSUPP", 110: "ETIMEDOUT",
    ]

    /// `-EBUSY`, or `-errno 42` for a number without a name here.
    public var description: String {
        if let name = Errno.names[rawValue] { return "-\(name)" }
        return "-errno \(rawValue)"
    }
}
