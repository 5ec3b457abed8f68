import ArgumentParser
import EventLog
import Events
import Projections

#if canImport(Glibc)
import Glibc
#endif

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum and the hash chain of a log; report the first break.",
        discussion: "Prints one JSON object. Exit 0 when intact, 1 at the first break (named by position), 2 when unreadable."
    )

    @OptionGroup var target: LogOption
    @Option(help: "A digest file written earlier by `replay digest`: also check the log still holds that exact prefix.")
    var digest: String?
    @Option(help: "An Ed25519 public key (64 hex digits, or a file holding them): every signed head in --heads must verify with it and match the events.")
    var publicKey: String?
    @Option(help: "The signed tree heads to check with --public-key (default: DIR/tree-heads.jsonl, which the server writes).")
    var heads: String?

    func run() async throws {
        var expected: LogHead?
        var expectedTree: TreeProofs.Head?
        if let digest {
            do {
                (expected, expectedTree) = try DigestFile.read(digest)
                // A tree head vouches for the events whatever their batching or backend; the
                // chain hash (batch by batch) only for this very log: the tree wins when present.
                if expectedTree != nil { expected = nil }
            } catch {
                printError("cannot use digest \(digest): \(error)")
                throw ReplayExit.unreadable
            }
        }
        let publicKey = try self.publicKey.map(loadPublicKey)
        if publicKey != nil, heads == nil, PostgresURL.matches(target.log) {
            throw ValidationError("--public-key on a PostgreSQL log needs --heads FILE (the server's DATA_DIR/tree-heads.jsonl)")
        }
        if publicKey == nil, heads != nil { throw ValidationError("--heads needs --public-key") }
        try target.requireLog()
        let headsPath = heads ?? (target.log + "/tree-heads.jsonl")
        if publicKey != nil, access(headsPath, R_OK) != 0 {
            printError("no signed tree heads at \(headsPath): give --heads FILE (a server with TALLY_SIGNING_KEY writes DATA_DIR/tree-heads.jsonl)")
            throw ReplayExit.unreadable
        }
        let progress = Progress(label: "verify")
        let report: LogVerifier.Report
        var audit: TreeAudit?
        do {
            if PostgresURL.matches(target.log) {
                let store = try PostgresLog(url: target.log, options: .init(readOnly: true))
                report = try await store.verify(expected: expected) { progress.update($0) }
                await store.close()
            } else {
                // The chain pass (CRCs, LZ4, chain hashes) on a thread of its own while this
                // task hashes every event into the tree: the two cores each take one, so the
                // whole check costs the slower pass, not both. The tree's answer counts only
                // when the chain is intact and reached the same head.
                let (directory, digestHead) = (target.log, expected)
                let chain = Task { await DedicatedThread.run { Result { try LogVerifier.verify(directory: directory, expected: digestHead) { progress.update($0) } } } }
                // A failure here is the chain pass's to report (or the audit's, run again below).
                var early: TreeAudit?
                do {
                    let store = try target.open()
                    let head = try await store.head().position
                    early = try await TreeAudit.run(store: store, head: head, expectedTree: expectedTree, heads: publicKey.map { (headsPath, $0) })
                } catch {
                    early = nil
                }
                report = try await chain.value.get()
                if report.intact, let early, early.tree.size == report.head.position { audit = early }
            }
        } catch {
            progress.finish()
            throw target.unreadable("cannot read the log at \(target.name)", error)
        }
        progress.finish()
        // The tree head, hashed again from every event (the tree index is compared with it
        // and rebuilt where it differs: never trusted).
        if report.intact, audit == nil {
            do {
                audit = try await TreeAudit.run(store: try target.open(), head: report.head.position, expectedTree: expectedTree,
                                                heads: publicKey.map { (headsPath, $0) })
            } catch {
                throw target.unreadable("cannot hash the events of the log at \(target.name)", error)
            }
        }
        let tree = audit?.tree
        let treeRepairs = audit?.repairs ?? []
        let treeMismatch = audit?.mismatch
        let signedHeads = audit?.signedHeads ?? 0
        let headBreak = audit?.headBreak
        var out = JSONObject()
        out.set("intact", report.intact && treeMismatch == nil && headBreak == nil)
        out.set("segments", report.segments)
        out.set("batches", report.batches)
        out.set("events", report.events)
        out.set("head_position", report.head.position)
        out.set("head_chain_hash", report.head.chainHashHex)
        if let tree {
            out.set("tree_size", tree.size)
            out.set("root_hash", tree.root.hex)
        }
        if !treeRepairs.isEmpty { out.set("tree_index_repairs", treeRepairs.count) }
        for repair in treeRepairs { printError("tree index: \(repair)") }
        if let torn = report.tornTailBytes { out.set("torn_tail_bytes", torn) }
        if let expected { out.set("digest_position", expected.position) }
        if let expectedTree { out.set("digest_tree_size", expectedTree.size) }
        if let broken = report.firstBreak {
            var b = JSONObject()
            b.set("position", broken.position)
            b.set("segment", broken.segment)
            b.set("offset", broken.offset)
            b.set("reason", broken.reason)
            if let hashes = broken.hashes {
                b.set("expected_hash", hashes.expectedHex)
                b.set("found_hash", hashes.foundHex)
            }
            out.set("first_break", b)
        }
        if let (expected, found) = treeMismatch {
            var b = JSONObject()
            b.set("tree_size", expected.size)
            b.set("expected_root_hash", expected.root.hex)
            if expected.size <= report.head.position {
                b.set("found_root_hash", found.hex)
                b.set("reason", "the first \(expected.size) events hash to another tree head than the digest's: an event at or before position \(expected.size) differs")
            } else {
                b.set("reason", "the digest is of \(expected.size) events, the log ends at position \(report.head.position)")
            }
            out.set("tree_break", b)
        }
        if publicKey != nil { out.set("signed_heads_checked", signedHeads) }
        if let headBreak { out.set("signed_head_break", headBreak) }
        print(out.rendered)
        if headBreak != nil {
            printError("a signed tree head in \(headsPath) does not hold for this log")
            throw ReplayExit.damaged
        }
        if let (expected, _) = treeMismatch {
            printError("the log differs from the digest's tree head of \(expected.size) events")
            throw ReplayExit.damaged
        }
        if !report.intact {
            printError("log damaged at \(report.firstBreak!)")
            throw ReplayExit.damaged
        }
    }
}

/// `replay repair`: the repair the damage message names, for a file log.
struct Repair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a file log at its first damaged batch, keeping the cut bytes as *.damaged files.",
        discussion: """
            What `tally-server --repair` does at start-up: the log keeps every event before the \
            damage; the damaged bytes and any later segments are moved aside, never deleted. \
            Prints {"repaired":…}. Exit 0 done (or nothing to repair), 2 when the log cannot be opened.
            """
    )

    @OptionGroup var target: LogOption

    func run() async throws {
        try target.requireLog()
        guard !PostgresURL.matches(target.log) else {
            printError("a PostgreSQL log has no batches to cut; `replay verify` names its first break")
            throw ReplayExit.usage
        }
        let log: FileLog
        do {
            // The opener trusts a sealed segment's index and does not rescan it: find the
            // first break by verifying every batch, and drop the (rebuildable) indexes from
            // the damaged segment on, so that opening with repair scans and cuts there.
            let report = try LogVerifier.verify(directory: target.log)
            if let broken = report.firstBreak {
                for name in try directoryNames(target.log) where name.hasSuffix(".idx") && name >= broken.segment.replacingSuffix(".seg", with: ".idx") {
                    unlink(target.log + "/" + name)
                }
            }
            log = try FileLog(directory: target.log, options: .init(fsync: .always, repair: true))
        } catch {
            throw target.unreadable("cannot repair the log at \(target.name)", error)
        }
        var out = JSONObject()
        out.set("repaired", log.recovery.repair != nil)
        if let repair = log.recovery.repair {
            out.set("position", repair.position)
            out.set("segment", repair.segment)
            out.set("offset", repair.offset)
            out.set("bytes_cut", repair.bytesCut)
            out.set("reason", repair.reason)
        }
        if let torn = log.recovery.tornTail { out.set("torn_tail_bytes", torn.bytes) }
        let head = log.currentHead().position
        out.set("head_position", head)
        do {
            try await log.close()
        } catch {
            throw target.unreadable("cannot close the log at \(target.name)", error)
        }
        print(out.rendered)
    }
}

struct Digest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the tree head (and, at the head, the chain hash) as JSON, to keep elsewhere and check later with `verify --digest`.",
        discussion: """
            {"position":P,"chain_hash":…,"tree_size":P,"root_hash":…} at the head; with \
            --position P, the tree head of the first P events only: {"tree_size":P,"root_hash":…}. \
            The tree head depends only on the events, not on batching or backend.
            """
    )

    @OptionGroup var target: LogOption
    @Option(help: "The tree head as of this position (default: the head).") var position: UInt64?
    @Option(help: "Sign the tree head with this Ed25519 key file (default: TALLY_SIGNING_KEY when set).") var signingKey: String?

    func run() async throws {
        let keyPath = signingKey ?? environmentValue("TALLY_SIGNING_KEY")
        let key = try keyPath.map(loadSigningKey)
        let (store, head) = try await target.openAtHead()
        if let position, position > head {
            printError("the log at \(target.name) ends at position \(head); position \(position) is past it")
            throw ReplayExit.usage
        }
        let rendered: String
        do {
            let size = position ?? head
            let index = try await MerkleTreeIndex.open(for: store)
            let tree = TreeProofs.Head(size: size, root: try await index.root(size: size, store: store))
            for repair in await index.repairs { printError("tree index: \(repair)") }
            if let key {
                let now = nowMilliseconds()
                let signed = JSONValue.object(TreeProofs.object(try key.sign(size: tree.size, root: tree.root, timestampMs: now))).serialized()
                rendered = position == nil ? DigestFile.render(try await store.head(), signed: signed) : signed
            } else {
                rendered = position == nil ? DigestFile.render(try await store.head(), tree: tree) : JSONValue.object(TreeProofs.object(tree)).serialized()
            }
            try await store.close()
        } catch {
            throw target.unreadable("cannot open the log at \(target.name)", error)
        }
        print(rendered)
    }
}

/// The digest document: `{"position":P,"chain_hash":"<64 hex>","tree_size":P,"root_hash":"<64 hex>"}`;
/// either half may be missing (a digest of an older version has no tree, one as of a position no chain hash).
enum DigestFile {
    static func render(_ head: LogHead, tree: TreeProofs.Head? = nil) -> String {
        var out = JSONObject()
        out.set("position", head.position)
        out.set("chain_hash", head.chainHashHex)
        if let tree {
            out.set("tree_size", tree.size)
            out.set("root_hash", tree.root.hex)
        }
        return out.rendered
    }

    /// The chain head followed by a signed head's members.
    static func render(_ head: LogHead, signed: String) -> String {
        var out = JSONObject()
        out.set("position", head.position)
        out.set("chain_hash", head.chainHashHex)
        return String(out.rendered.dropLast()) + "," + signed.dropFirst()
    }

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the chain head and the tree head back; at least one must be there.
    static func read(_ path: String) throws -> (LogHead?, TreeProofs.Head?) {
        let bytes: [UInt8]
        do {
            bytes = try CheckProof.read(path)
        } catch {
            throw Invalid(description: "\(error)")
        }
        let tree = try? TreeProofs.head(bytes)
        let chain = try? readChain(path)
        guard chain != nil || tree != nil else { throw Invalid(description: "\(path) is not a digest written by `replay digest`") }
        return (chain, tree)
    }

    /// Reads the two chain fields back with a strict little scanner (the document is ours).
    static func readChain(_ path: String) throws -> LogHead {
        guard let file = fopen(path, "r") else { throw Invalid(description: "cannot open \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 64 << 10 {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let position = field(text, "position").flatMap({ UInt64($0) }),
              let hashText = field(text, "chain_hash")?.trimmingCharacters(in: "\""),
              let hash = parseChainHash(hex: hashText)
        else { throw Invalid(description: "\(path) is not a digest written by `replay digest`") }
        return LogHead(position: position, chainHash: hash)
    }

    private static func field(_ text: String, _ key: String) -> String? {
        guard let keyRange = text.range(of: "\"\(key)\"") else { return nil }
        var rest = text[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        rest = rest.prefix { $0 != "," && $0 != "}" && $0 != "\n" }
        return String(rest).trimmingCharacters(in: " ")
    }
}

extension String {
    func replacingSuffix(_ suffix: String, with other: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + other : self
    }

    func trimmingCharacters(in set: Character) -> String {
        String(self.drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }

    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) { return index..<self.index(index, offsetBy: needle.count) }
            index = self.index(after: index)
        }
        return nil
    }
}

func printError(_ message: String) {
    writeLine(2, "replay: " + message)
}

/// One unbuffered write(2) per line: lines below PIPE_BUF reach a pipe whole, even if the
/// process is killed right after.
func writeLine(_ descriptor: Int32, _ text: String) {
    var line = text + "\n"
    line.withUTF8 { buffer in
        var offset = 0
        while offset < buffer.count {
            let n = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// A one-line progress indicator on stderr, shown only when stderr is a terminal.
final class Progress: @unchecked Sendable {
    private let label: String
    private let enabled = isatty(2) != 0
    private var lastPrint: UInt64 = 0
    /// The position at which the work is done, for a percentage.
    private let total: UInt64?

    init(label: String, total: UInt64? = nil) {
        self.label = label
        self.total = total
    }

    func update(_ position: UInt64) {
        guard enabled else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec) * 1_000 + UInt64(ts.tv_nsec) / 1_000_000
        guard now - lastPrint >= 200 else { return }
        lastPrint = now
        var line = "\r\(label): position \(position)"
        if let total, total > 0 {
            let percent = min(100, position * 100 / total)
            let filled = Int(percent / 5)
            line += " of \(total) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] \(percent)%"
        }
        var bytes = Array(line.utf8)
        _ = write(2, &bytes, bytes.count)
    }

    func finish() {
        guard enabled, lastPrint > 0 else { return }
        writeLine(2, "")
    }
}

/// The tree half of `replay verify`: the root over every event up to `head`, hashed again
/// from the events (the tree index is compared with it and mended where it differs), the
/// digest's tree head and the signed heads checked against it.
struct TreeAudit {
    var tree: TreeProofs.Head
    var mismatch: (expected: TreeProofs.Head, found: MerkleHash)?
    var signedHeads = 0
    var headBreak: JSONObject?
    var repairs: [String] = []

    static func run(store: any EventStore, head: LogPosition, expectedTree: TreeProofs.Head?,
                    heads: (path: String, key: TreeHeadPublicKey)?) async throws -> TreeAudit {
        let index = try await MerkleTreeIndex.open(for: store)
        var audit = TreeAudit(tree: TreeProofs.Head(size: head, root: try await index.audit(store, head: head)))
        if let expectedTree, expectedTree.size <= head {
            let found = try await index.root(size: expectedTree.size, store: store)
            if found != expectedTree.root { audit.mismatch = (expectedTree, found) }
        } else if let expectedTree {
            audit.mismatch = (expectedTree, .emptyTree)
        }
        if let heads {
            (audit.signedHeads, audit.headBreak) = try await checkSignedHeads(heads.path, key: heads.key, store: store, index: index, head: head)
        }
        audit.repairs = await index.repairs
        try await store.close()
        return audit
    }
}
