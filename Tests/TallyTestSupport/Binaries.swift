import Foundation

/// The executable `product` SwiftPM built beside the test bundle (the test targets depend on
/// the products they run). `TALLY_<PRODUCT>_BIN` (e.g. `TALLY_REPLAY_BIN`) overrides.
public func builtProduct(_ product: String) throws -> String {
    let fm = FileManager.default
    let override = "TALLY_" + product.uppercased().replacingOccurrences(of: "-", with: "_") + "_BIN"
    if let path = ProcessInfo.processInfo.environment[override], fm.isExecutableFile(atPath: path) { return path }
    var candidates: [String] = []
    if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside an .xctest bundle directory on other platforms: walk up a few levels.
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent(product).path)
            directory = directory.deletingLastPathComponent()
        }
    }
    candidates.append(fm.currentDirectoryPath + "/.build/debug/" + product)
    guard let found = candidates.first(where: fm.isExecutableFile(atPath:)) else {
        throw TestFailure("no \(product) binary; looked at \(candidates) (set \(override))")
    }
    return found
}
