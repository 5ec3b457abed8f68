#if canImport(Glibc)
import Glibc
#endif

/// The error number of a failed system call, kept as a cause.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public var description: String { "\(call) failed: \(systemErrorMessage(errno)) (errno \(errno))" }
}

/// strerror(3) as a String.
func systemErrorMessage(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}
