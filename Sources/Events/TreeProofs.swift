public import EventLog

/// The JSON documents of the verifiable log (docs/log-format.md, "Proof documents"), shared by
/// `replay prove`/`digest`/`check-proof` and the audit endpoints, so what one prints the
/// other checks: a tree head, an inclusion proof and a consistency proof. Checking needs only
/// the documents and the event's JSON line, never the log.
public enum TreeProofs {
    /// Hashes a proof may hold: a tree of at most 2^64 leaves has paths of at most 64.
    public static let maxPathLength = 64
    /// Bytes of a document read back (a path of 64 hashes is about 4.5 KB).
    public static let maxDocumentBytes = 64 << 10

    /// A tree head: the RFC 9162 root of the first `size` events.
    public struct Head: Sendable, Hashable {
        public var size: UInt64
        public var root: MerkleHash
        public init(size: UInt64, root: MerkleHash) {
            self.size = size
            self.root = root
        }
    }

    public struct Inclusion: Sendable, Hashable {
        public var position: LogPosition
        public var treeSize: UInt64
        public var leaf: MerkleHash
        public var root: MerkleHash
        public var path: [MerkleHash]
        public init(position: LogPosition, treeSize: UInt64, leaf: MerkleHash, root: MerkleHash, path: [MerkleHash]) {
            self.position = position
            self.treeSize = treeSize
            self.leaf = leaf
            self.root = root
            self.path = path
        }
    }

    public struct Consistency: Sendable, Hashable {
        public var from: UInt64
        public var to: UInt64
        public var fromRoot: MerkleHash
        public var toRoot: MerkleHash
        public var path: [MerkleHash]
        public init(from: UInt64, to: UInt64, fromRoot: MerkleHash, toRoot: MerkleHash, path: [MerkleHash]) {
            self.from = from
            self.to = to
            self.fromRoot = fromRoot
            self.toRoot = toRoot
            self.path = path
        }
    }

    /// Why a document was refused or a proof failed; `code` is stable.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public enum Code: String, Sendable {
            /// Not a document of this kind (syntax, missing or out-of-range member).
            case malformed = "malformed_document"
            /// The event's JSON does not hash to the proof's leaf.
            case leafMismatch = "leaf_mismatch"
            /// The path does not lead to the head's root, or the sizes disagree.
            case proofFailed = "proof_failed"
        }
        public var code: Code
        public var message: String
        public init(_ code: Code, _ message: String) {
            self.code = code
            self.message = message
        }
        public var description: String { message }
    }

    // MARK: Rendering

    public static func object(_ head: Head) -> JSONValue.Object {
        ["tree_size": .integer(Int64(bitPattern: head.size)), "root_hash": .string(head.root.hex)]
    }

    public static func object(_ proof: Inclusion) -> JSONValue.Object {
        [
            "proof": "inclusion", "position": .integer(Int64(bitPattern: proof.position)),
            "tree_size": .integer(Int64(bitPattern: proof.treeSize)), "leaf_hash": .string(proof.leaf.hex),
            "root_hash": .string(proof.root.hex), "audit_path": .array(proof.path.map { .string($0.hex) }),
        ]
    }

    public static func object(_ proof: Consistency) -> JSONValue.Object {
        [
            "proof": "consistency", "from": .integer(Int64(bitPattern: proof.from)), "to": .integer(Int64(bitPattern: proof.to)),
            "from_root": .string(proof.fromRoot.hex), "to_root": .string(proof.toRoot.hex),
            "consistency_path": .array(proof.path.map { .string($0.hex) }),
        ]
    }

    /// A signed head: the tree head, `timestamp_ms`, `timestamp` (ISO 8601, for people),
    /// `key_id` and the Ed25519 `signature` (128 hex digits).
    public static func object(_ head: SignedTreeHead) -> JSONValue.Object {
        [
            "tree_size": .integer(Int64(bitPattern: head.size)), "root_hash": .string(head.root.hex),
            "timestamp_ms": .integer(head.timestampMs), "timestamp": .string(EventTime.iso8601(micros: head.timestampMs &* 1_000)),
            "key_id": .string(head.keyID), "signature": .string(head.signature.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()),
        ]
    }

    /// A signed head read back (`timestamp` is not trusted: the signed `timestamp_ms` is).
    public static func signedHead(_ bytes: [UInt8]) throws -> SignedTreeHead {
        let o = try document(bytes, "the signed tree head")
        let what = "the signed tree head"
        guard let ms = o["timestamp_ms"]?.int64Value, ms >= 0, ms <= 253_402_300_799_999 else {
            throw Failure(.malformed, "\(what): \"timestamp_ms\" must be an integer in 0...253402300799999")
        }
        guard let keyID = o["key_id"]?.stringValue, keyID.utf8.count == 16, keyID.utf8.allSatisfy(isHexDigit) else {
            throw Failure(.malformed, "\(what): \"key_id\" must be 16 hex digits")
        }
        guard let text = o["signature"]?.stringValue, text.utf8.count == 128, text.utf8.allSatisfy(isHexDigit) else {
            throw Failure(.malformed, "\(what): \"signature\" must be 128 hex digits")
        }
        let digits = Array(text.utf8)
        let signature = stride(from: 0, to: 128, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
        return SignedTreeHead(size: try count(o, "tree_size", what, min: 0), root: try hash(o, "root_hash", what),
                              timestampMs: ms, keyID: keyID, signature: signature)
    }

    static func isHexDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x61...0x66).contains(b) || (0x41...0x46).contains(b) }

    // MARK: Parsing (every member checked against both bounds)

    static func document(_ bytes: [UInt8], _ what: String, maxBytes: Int = maxDocumentBytes) throws -> JSONValue.Object {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, maxBytes: maxBytes)
        } catch {
            throw Failure(.malformed, "\(what) is not JSON: \(error)")
        }
        guard let object = value.objectValue else { throw Failure(.malformed, "\(what) must be a JSON object, got \(value.kindName)") }
        return object
    }

    static func count(_ o: JSONValue.Object, _ key: String, _ what: String, min: UInt64) throws -> UInt64 {
        guard let value = o[key]?.int64Value, value >= 0, UInt64(value) >= min else {
            throw Failure(.malformed, "\(what): \"\(key)\" must be an integer ≥ \(min)")
        }
        return UInt64(value)
    }

    static func hash(_ o: JSONValue.Object, _ key: String, _ what: String) throws -> MerkleHash {
        guard let text = o[key]?.stringValue, let hash = MerkleHash(hex: text) else {
            throw Failure(.malformed, "\(what): \"\(key)\" must be 64 hex digits")
        }
        return hash
    }

    static func path(_ o: JSONValue.Object, _ key: String, _ what: String) throws -> [MerkleHash] {
        guard let items = o[key]?.arrayValue, items.count <= maxPathLength else {
            throw Failure(.malformed, "\(what): \"\(key)\" must be an array of at most \(maxPathLength) hashes")
        }
        return try items.enumerated().map { i, item in
            guard let text = item.stringValue, let hash = MerkleHash(hex: text) else {
                throw Failure(.malformed, "\(what): \"\(key)\"[\(i)] must be 64 hex digits")
            }
            return hash
        }
    }

    /// A tree head: `replay digest`'s output (which may carry more members) or the audit digest.
    public static func head(_ bytes: [UInt8]) throws -> Head {
        let o = try document(bytes, "the tree head")
        return Head(size: try count(o, "tree_size", "the tree head", min: 0), root: try hash(o, "root_hash", "the tree head"))
    }

    /// Either proof, told apart by its `proof` member.
    public enum Proof: Sendable, Hashable {
        case inclusion(Inclusion)
        case consistency(Consistency)
    }

    public static func proof(_ bytes: [UInt8]) throws -> Proof {
        let o = try document(bytes, "the proof")
        switch o["proof"]?.stringValue {
        case "inclusion":
            let what = "the inclusion proof"
            let size = try count(o, "tree_size", what, min: 1)
            let position = try count(o, "position", what, min: 1)
            guard position <= size else { throw Failure(.malformed, "\(what): position \(position) is past tree_size \(size)") }
            return .inclusion(Inclusion(position: position, treeSize: size, leaf: try hash(o, "leaf_hash", what),
                                        root: try hash(o, "root_hash", what), path: try path(o, "audit_path", what)))
        case "consistency":
            let what = "the consistency proof"
            let from = try count(o, "from", what, min: 1)
            let to = try count(o, "to", what, min: 1)
            guard from <= to else { throw Failure(.malformed, "\(what): from \(from) is past to \(to)") }
            return .consistency(Consistency(from: from, to: to, fromRoot: try hash(o, "from_root", what),
                                            toRoot: try hash(o, "to_root", what), path: try path(o, "consistency_path", what)))
        default:
            throw Failure(.malformed, "the proof's \"proof\" member must be \"inclusion\" or \"consistency\"")
        }
    }

    // MARK: Checking

    /// The leaf hash of an event given as its JSON line (`replay inspect`/`export`, or an
    /// audit endpoint's event with its `leaf_hash`, which must then agree).
    public static func leafHash(eventLine bytes: [UInt8]) throws -> (position: LogPosition, leaf: MerkleHash) {
        var object = try document(bytes, "the event", maxBytes: EventLine.maxLineBytes)
        var claimed: MerkleHash?
        if object["leaf_hash"] != nil {
            claimed = try hash(object, "leaf_hash", "the event")
            object = JSONValue.Object(object.filter { $0.key != "leaf_hash" }.map { ($0.key, $0.value) })
        }
        let imported: ImportedEvent
        do {
            imported = try EventLine.parse(JSONValue.object(object).serialized())
        } catch {
            throw Failure(.malformed, "the event is not an event line of `replay inspect`: \(error)")
        }
        guard let position = imported.sourcePosition, let version = imported.sourceVersion else {
            throw Failure(.malformed, "the event needs its position and version")
        }
        let e = imported.event
        let leaf = MerkleHash.leaf(CanonicalEvent.bytes(
            position: position, stream: imported.stream, streamVersion: version, type: e.type, schemaVersion: e.schemaVersion,
            recordedAt: e.recordedAt ?? 0, actor: e.actor, correlationID: e.correlationID, causationID: e.causationID,
            idempotencyKey: imported.idempotencyKey, payload: e.payload
        ))
        if let claimed, claimed != leaf {
            throw Failure(.leafMismatch, "the event's leaf_hash \(claimed.hex) is not the hash of its content, \(leaf.hex)")
        }
        return (position, leaf)
    }

    /// Checks that `event` is at its position in the tree whose head is `head`, by `proof`.
    public static func check(_ proof: Inclusion, eventLine: [UInt8], head: Head) throws {
        let (position, leaf) = try leafHash(eventLine: eventLine)
        guard position == proof.position else {
            throw Failure(.leafMismatch, "the event is at position \(position), the proof is for position \(proof.position)")
        }
        guard leaf == proof.leaf else {
            throw Failure(.leafMismatch, "the event hashes to \(leaf.hex), the proof's leaf is \(proof.leaf.hex)")
        }
        guard head.size == proof.treeSize else {
            throw Failure(.proofFailed, "the proof is for a tree of \(proof.treeSize) events, the head is of \(head.size)")
        }
        guard MerkleProof.verifyInclusion(index: position - 1, size: head.size, leaf: leaf, path: proof.path, root: head.root) else {
            throw Failure(.proofFailed, "the audit path does not lead from the event to the head's root \(head.root.hex)")
        }
    }

    /// Checks that the tree of `old` is a prefix of the tree of `new`, by `proof`.
    public static func check(_ proof: Consistency, old: Head, new: Head) throws {
        guard old.size == proof.from, new.size == proof.to else {
            throw Failure(.proofFailed, "the proof is from \(proof.from) to \(proof.to) events, the heads are of \(old.size) and \(new.size)")
        }
        guard MerkleProof.verifyConsistency(from: old.size, to: new.size, fromRoot: old.root, toRoot: new.root, proof: proof.path) else {
            throw Failure(.proofFailed, "the consistency path does not join the head of \(old.size) to the head of \(new.size)")
        }
    }
}
