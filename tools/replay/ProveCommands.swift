import ArgumentParser
import EventLog
import Events
import Foundation

extension ReplayExit {
    /// Bad usage (sysexits' EX_USAGE), also for a position or size past the log's head.
    static let usage = ExitCode(64)
}

/// `replay prove`: an RFC 9162 inclusion proof of one event, or a consistency proof between
/// two tree sizes, as JSON (docs/log-format.md, "Proof documents"), from the log's tree index
/// (built or caught up from the events first when needed).
struct Prove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an inclusion proof of one event, or a consistency proof between two tree sizes.",
        discussion: """
            `--position P [--tree-size N]`: the audit path of the event at P in the tree of the \
            first N events (default: the head). `--consistency --from N1 [--to N2]`: the proof \
            that the tree of N1 events is a prefix of the tree of N2 (default: the head). \
            Check either offline with `replay check-proof`. Exit 2 when the log cannot be read, \
            64 for a position or size past the head.
            """
    )

    @OptionGroup var target: LogOption
    @Option(help: "The event's position (inclusion proof).") var position: UInt64?
    @Option(help: "The tree size the proof is for (default: the head).") var treeSize: UInt64?
    @Flag(help: "A consistency proof between --from and --to.") var consistency = false
    @Option(help: "The older tree size (consistency).") var from: UInt64?
    @Option(help: "The newer tree size (consistency; default: the head).") var to: UInt64?

    func validate() throws {
        if consistency {
            guard position == nil, treeSize == nil else { throw ValidationError("--consistency takes --from and --to, not --position or --tree-size") }
            guard let from, from > 0 else { throw ValidationError("--consistency needs --from N (N ≥ 1)") }
            if let to, to < from { throw ValidationError("--to must be at least --from") }
        } else {
            guard from == nil, to == nil else { throw ValidationError("--from and --to need --consistency") }
            guard let position, position > 0 else { throw ValidationError("give --position P (P ≥ 1), or --consistency --from N") }
            if let treeSize, treeSize < position { throw ValidationError("--tree-size must be at least --position") }
        }
    }

    func run() async throws {
        DamagedPrefix.asked(until: consistency ? to : treeSize)
        let (store, head) = try await target.openAtHead()
        let size = consistency ? (to ?? head) : (treeSize ?? head)
        let first = consistency ? from! : position!
        guard size <= head, first <= head else {
            printError("the log at \(target.name) ends at position \(head); \(first > head ? "position \(first)" : "tree size \(size)") is past it")
            throw ReplayExit.usage
        }
        let document: JSONValue.Object
        do {
            let index = try await MerkleTreeIndex.open(for: store)
            let root = try await index.root(size: size, store: store)
            if consistency {
                let proof = try await index.consistencyProof(from: first, to: size, store: store)
                let fromRoot = try await index.root(size: first, store: store)
                document = TreeProofs.object(TreeProofs.Consistency(from: first, to: size, fromRoot: fromRoot, toRoot: root, path: proof))
            } else {
                let path = try await index.inclusionProof(index: first - 1, size: size, store: store)
                let leaves = try await index.chunkLeaves((first - 1) >> MerkleTreeIndex.chunkLevel, limit: first, store: store)
                document = TreeProofs.object(TreeProofs.Inclusion(position: first, treeSize: size, leaf: leaves.last!, root: root, path: path))
            }
            for repair in await index.repairs { printError("tree index: \(repair)") }
        } catch {
            throw target.unreadable("cannot prove from the log at \(target.name)", error)
        }
        print(JSONValue.object(document).serialized())
        try await store.close()
    }
}

/// `replay check-proof`: checks a proof offline, from the proof, the event's JSON line and
/// the tree head(s) an auditor trusts; no log is opened.
struct CheckProof: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-proof",
        abstract: "Check an inclusion or consistency proof offline, against a tree head you trust.",
        discussion: """
            Inclusion: --proof P.json --event E.json --head H.json, where E is the event's line \
            from `replay inspect` or an audit endpoint and H a head from `replay digest`. \
            Consistency: --proof P.json --old-head OLD.json --head NEW.json. Prints \
            {"valid":…}; exit 0 when the proof holds, 1 when it does not, 2 when a file cannot \
            be read or is not such a document.
            """
    )

    @Option(help: "The proof, from `replay prove` or the audit endpoints.") var proof: String
    @Option(help: "The event's JSON line (inclusion proofs).") var event: String?
    @Option(help: "The tree head to check against (for consistency: the newer one).") var head: String
    @Option(help: "The older tree head (consistency proofs).") var oldHead: String?

    func run() throws {
        let parsed: TreeProofs.Proof
        let newHead: TreeProofs.Head
        do {
            parsed = try TreeProofs.proof(try Self.read(proof))
            newHead = try TreeProofs.head(try Self.read(head))
        } catch {
            printError("\(error)")
            throw ReplayExit.unreadable
        }
        var out = JSONObject()
        do {
            switch parsed {
            case .inclusion(let inclusion):
                guard let event else { throw ValidationError("an inclusion proof needs --event E.json") }
                let line = try Self.read(event)
                do {
                    try TreeProofs.check(inclusion, eventLine: line, head: newHead)
                } catch let failure as TreeProofs.Failure where failure.code == .malformed {
                    printError("\(failure)")
                    throw ReplayExit.unreadable
                }
                out.set("valid", true)
                out.set("proof", "inclusion")
                out.set("position", inclusion.position)
            case .consistency(let consistency):
                guard let oldHead else { throw ValidationError("a consistency proof needs --old-head OLD.json") }
                let old: TreeProofs.Head
                do {
                    old = try TreeProofs.head(try Self.read(oldHead))
                } catch {
                    printError("\(error)")
                    throw ReplayExit.unreadable
                }
                try TreeProofs.check(consistency, old: old, new: newHead)
                out.set("valid", true)
                out.set("proof", "consistency")
                out.set("from", consistency.from)
            }
        } catch let failure as TreeProofs.Failure {
            var bad = JSONObject()
            bad.set("valid", false)
            bad.set("code", failure.code.rawValue)
            bad.set("reason", failure.message)
            print(bad.rendered)
            printError(failure.message)
            throw ReplayExit.damaged
        }
        out.set("tree_size", newHead.size)
        out.set("root_hash", newHead.root.hex)
        print(out.rendered)
    }

    struct Unreadable: Error, CustomStringConvertible {
        var description: String
    }

    /// A document's bytes, refusing a file larger than any document (a line for an event).
    static func read(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Unreadable(description: "cannot open \(path)") }
        defer { try? handle.close() }
        let limit = EventLine.maxLineBytes + 1
        let data = (try? handle.read(upToCount: limit)) ?? nil
        guard let data else { throw Unreadable(description: "cannot read \(path)") }
        guard data.count < limit else { throw Unreadable(description: "\(path) is larger than any proof, head or event line") }
        var bytes = [UInt8](data)
        while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 { bytes.removeLast() }
        return bytes
    }
}
