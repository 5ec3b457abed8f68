import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory from mkdtemp under the system's temporary directory, named for the test;
/// `remove()` deletes it and everything in it.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = #function) throws {
        let safe = String(label.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.prefix(40))
        var template = Array((FileManager.default.temporaryDirectory.path + "/tally-\(safe)-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(cString: made)
        // mkdtemp makes it 0700; other users' processes the tests start (PostgreSQL runs as
        // `postgres`) must reach their data directories inside it.
        chmod(path, 0o755)
    }

    /// A path inside the directory.
    public func sub(_ name: String) -> String { path + "/" + name }

    /// Deletes the directory; retried, since a file that vanishes mid-walk (an index's
    /// temporary file renamed away) makes FileManager give up.
    public func remove() {
        for _ in 0..<5 {
            try? FileManager.default.removeItem(atPath: path)
            if !FileManager.default.fileExists(atPath: path) { return }
            usleep(20_000)
        }
    }
}

/// A new directory's path, for fixtures that remove it themselves.
public func makeTemporaryDirectory(_ label: String = #function) throws -> String {
    try TemporaryDirectory(label).path
}

/// Runs `body` with a new directory that is removed afterwards, whether `body` throws or not.
public func withTemporaryDirectory<T>(_ label: String = #function, _ body: (TemporaryDirectory) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory(label)
    defer { directory.remove() }
    return try await body(directory)
}
