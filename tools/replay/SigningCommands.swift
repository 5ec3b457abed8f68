import ArgumentParser
import EventLog
import Events
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `replay keygen`: an Ed25519 key for signed tree heads (`TALLY_SIGNING_KEY`).
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a new Ed25519 tree-head signing key to a file (mode 0600); print its public key.",
        discussion: "Prints {\"public_key\":…,\"key_id\":…}: give the public key to auditors (`replay verify --public-key`). Refuses to overwrite a file."
    )

    @Option(help: "Where to write the private key.") var out: String

    func run() throws {
        let key = TreeHeadSigningKey.generate()
        let fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            printError("cannot create \(out) (\(String(cString: strerror(errno)))); an existing key is never overwritten")
            throw ReplayExit.unreadable
        }
        let bytes = Array(key.fileContents.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            printError("cannot write \(out)")
            throw ReplayExit.unreadable
        }
        var o = JSONObject()
        o.set("public_key", key.publicKey.hex)
        o.set("key_id", key.publicKey.keyID)
        print(o.rendered)
    }
}

/// The signing key a command was given (`--signing-key` or `TALLY_SIGNING_KEY`), or exit 2.
func loadSigningKey(_ path: String) throws -> TreeHeadSigningKey {
    do {
        return try TreeHeadSigningKey(fileContents: try CheckProof.read(path))
    } catch {
        printError("cannot use the signing key \(path): \(error)")
        throw ReplayExit.unreadable
    }
}

/// An auditor's public key: a file holding 64 hex digits, or the digits themselves; or exit 2.
func loadPublicKey(_ given: String) throws -> TreeHeadPublicKey {
    if let key = TreeHeadPublicKey(text: given) { return key }
    if let bytes = try? CheckProof.read(given), let key = TreeHeadPublicKey(text: String(decoding: bytes, as: UTF8.self)) { return key }
    printError("--public-key \(given) is neither 64 hex digits nor a file holding them (`replay keygen` prints the public key)")
    throw ReplayExit.unreadable
}

/// Checks the signed heads in `path` against `key` and the log's events: every head must be
/// signed by the key, no larger than the log, and the root of that many events. Returns the
/// number of heads and the first that fails, with why.
func checkSignedHeads(
    _ path: String, key: TreeHeadPublicKey, store: any EventStore, index: MerkleTreeIndex, head: LogPosition
) async throws -> (count: Int, failure: JSONObject?) {
    let bytes: [UInt8]
    do {
        guard let data = FileManager.default.contents(atPath: path) else { throw CheckProof.Unreadable(description: "cannot read \(path)") }
        bytes = [UInt8](data)
    }
    var count = 0
    // The largest head already shown to hold: a changed event lies after it.
    var held: UInt64 = 0
    for (number, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: true).enumerated() {
        count += 1
        var failure = JSONObject()
        failure.set("heads_line", number + 1)
        let sth: SignedTreeHead
        do {
            sth = try TreeProofs.signedHead(Array(line))
        } catch {
            failure.set("reason", "line \(number + 1) of \(path) is not a signed tree head: \(error)")
            return (count, failure)
        }
        failure.set("tree_size", sth.size)
        failure.set("expected_root_hash", sth.root.hex)
        guard key.verifies(sth) else {
            failure.set("reason", "the head of \(sth.size) events on line \(number + 1) is not signed by key \(key.keyID) (it names \(sth.keyID))")
            return (count, failure)
        }
        guard sth.size <= head else {
            failure.set("reason", "a signed head is of \(sth.size) events, the log ends at position \(head): it was truncated")
            return (count, failure)
        }
        let found = try await index.root(size: sth.size, store: store)
        guard found == sth.root else {
            failure.set("found_root_hash", found.hex)
            let after = held < sth.size ? held : 0
            failure.set("changed_from_position", after + 1)
            failure.set("changed_until_position", sth.size)
            failure.set("reason", "the first \(sth.size) events hash to another root than the signed head's: an event in positions \(after + 1)...\(sth.size) was changed, added or removed (the signed heads up to \(after) events hold)")
            return (count, failure)
        }
        held = max(held, sth.size)
    }
    return (count, nil)
}

/// A non-empty environment variable's value.
func environmentValue(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}

/// The wall clock in ms since 1970 UTC (a signed head's time).
func nowMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The names in a directory.
func directoryNames(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path)
}
