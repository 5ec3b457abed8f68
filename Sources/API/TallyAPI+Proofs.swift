import EventLog
import Events
import Hummingbird
import Synchronization

/// The log's Merkle tree index for the audit routes, opened on first use (a proof on a log
/// whose index was never built first hashes its events) and shared by every request.
public final class AuditTree: Sendable {
    private let opened = Mutex<Task<MerkleTreeIndex, any Error>?>(nil)

    public init() {}

    func index(for store: any EventStore) async throws -> MerkleTreeIndex {
        let task = opened.withLock { task in
            if let task { return task }
            let made = Task { try await MerkleTreeIndex.open(for: store) }
            task = made
            return made
        }
        do {
            return try await task.value
        } catch {
            opened.withLock { $0 = nil }  // try again on the next request
            throw error
        }
    }
}

/// Auditors' proofs over HTTP: the documents `replay prove` prints (docs/log-format.md,
/// "Proof documents"), to check offline with `replay check-proof`.
extension TallyAPI {
    func addProofRoutes(to v1: RouterGroup<TallyRequestContext>) {
        v1.get("audit/proof/{position}", use: auditProof)
        v1.get("audit/consistency", use: auditConsistency)
    }

    /// An audit event's line: `EventLine` with the event's RFC 9162 leaf hash.
    static func auditLine(_ event: RecordedEvent) -> String {
        let line = EventLine.render(event)
        return String(line.dropLast()) + ",\"leaf_hash\":\"" + CanonicalEvent.leafHash(of: event).hex + "\"}"
    }

    @Sendable func auditProof(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.auditor)
        let raw = try context.parameters.require("position")
        guard let position = UInt64(raw), position >= 1, position <= UInt64(Int64.max) else {
            throw APIError.invalid("position", "must be a whole number in 1...\(Int64.max)")
        }
        let head = try await hub.store.head().position
        guard position <= head else { throw APIError.invalid("position", "is past the log's head, \(head)") }
        let size = UInt64(try Self.intQuery(request, "tree_size", default: Int(head), in: 1...Int.max))
        guard size >= position, size <= head else {
            throw APIError.invalid("tree_size", "must be at least the position (\(position)) and at most the head (\(head))")
        }
        let index = try await tree.index(for: hub.store)
        let path = try await index.inclusionProof(index: position - 1, size: size, store: hub.store)
        let root = try await index.root(size: size, store: hub.store)
        let leaves = try await index.chunkLeaves((position - 1) >> MerkleTreeIndex.chunkLevel, limit: position, store: hub.store)
        return Self.document(TreeProofs.object(TreeProofs.Inclusion(position: position, treeSize: size, leaf: leaves.last!, root: root, path: path)))
    }

    @Sendable func auditConsistency(_ request: Request, context: TallyRequestContext) async throws -> Response {
        _ = try context.require(.auditor)
        let head = try await hub.store.head().position
        let from = UInt64(try Self.intQuery(request, "from", default: 0, in: 1...Int.max))
        let to = UInt64(try Self.intQuery(request, "to", default: Int(head), in: 1...Int.max))
        guard request.uri.queryParameters.get("from") != nil else { throw APIError.invalid("from", "is required: the older tree size") }
        guard to <= head else { throw APIError.invalid("to", "is past the log's head, \(head)") }
        guard from <= to else { throw APIError.invalid("from", "must be at most to (\(to))") }
        let index = try await tree.index(for: hub.store)
        let proof = try await index.consistencyProof(from: from, to: to, store: hub.store)
        let fromRoot = try await index.root(size: from, store: hub.store)
        let toRoot = try await index.root(size: to, store: hub.store)
        return Self.document(TreeProofs.object(TreeProofs.Consistency(from: from, to: to, fromRoot: fromRoot, toRoot: toRoot, path: proof)))
    }

    /// The tree head at the log's head, for the digest route.
    func treeHead(size: UInt64) async throws -> TreeProofs.Head {
        let index = try await tree.index(for: hub.store)
        return TreeProofs.Head(size: size, root: try await index.root(size: size, store: hub.store))
    }

    static func document(_ object: JSONValue.Object) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: JSONValue.object(object).serialized())))
    }
}
