import Foundation

/// A new, empty directory under the system's temporary directory, named for the test.
public func makeTemporaryDirectory(_ label: String = #function) throws -> String {
    let safe = label.filter { $0.isLetter || $0.isNumber }.prefix(40)
    let path = FileManager.default.temporaryDirectory.path + "/tally-\(safe)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs `body` with a new directory and removes it afterwards, whether `body` throws or not.
public func withTemporaryDirectory<T>(_ label: String = #function, _ body: (String) async throws -> T) async throws -> T {
    let path = try makeTemporaryDirectory(label)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}
