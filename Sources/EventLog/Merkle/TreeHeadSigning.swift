import Crypto

/// An Ed25519 key that signs tree heads (`TALLY_SIGNING_KEY`). Its file holds the 32-byte
/// private seed as 64 hex digits (docs/log-format.md, "Signed tree heads").
public struct TreeHeadSigningKey: Sendable {
    let key: Curve25519.Signing.PrivateKey

    public static func generate() -> TreeHeadSigningKey { TreeHeadSigningKey(key: Curve25519.Signing.PrivateKey()) }

    init(key: Curve25519.Signing.PrivateKey) { self.key = key }

    /// The key from its file's bytes: 64 hex digits, optionally followed by white space.
    public init(fileContents bytes: [UInt8]) throws {
        var text = bytes
        while let last = text.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { text.removeLast() }
        guard text.count == 64, let seed = parseChainHash(hex: String(decoding: text, as: UTF8.self)),
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        else {
            throw EventLogError(.invalidInput, "a signing key file holds the Ed25519 private seed as 64 hex digits (`replay keygen` writes one)")
        }
        self.key = key
    }

    /// What the key's file holds.
    public var fileContents: String { hexString(Array(key.rawRepresentation)) + "\n" }

    public var publicKey: TreeHeadPublicKey { TreeHeadPublicKey(key: key.publicKey) }

    /// Signs the head of the first `size` events whose root is `root`, as of `timestampMs`.
    public func sign(size: UInt64, root: MerkleHash, timestampMs: Int64) throws -> SignedTreeHead {
        let message = SignedTreeHead.message(size: size, root: root, timestampMs: timestampMs)
        let signature = try key.signature(for: message)
        return SignedTreeHead(size: size, root: root, timestampMs: timestampMs, keyID: publicKey.keyID, signature: Array(signature))
    }
}

/// The public half, for auditors: 64 hex digits (`replay keygen` prints it).
public struct TreeHeadPublicKey: Sendable {
    let key: Curve25519.Signing.PublicKey

    init(key: Curve25519.Signing.PublicKey) { self.key = key }

    /// The key from 64 hex digits (surrounding white space allowed); nil for anything else.
    public init?(text: String) {
        let trimmed = String(text.unicodeScalars.filter { !$0.properties.isWhitespace })
        guard trimmed.utf8.count == 64, let raw = parseChainHash(hex: trimmed),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return nil }
        self.key = key
    }

    public var hex: String { hexString(Array(key.rawRepresentation)) }

    /// The first 8 bytes of SHA-256(public key), in hex: names the key in a signed head.
    public var keyID: String {
        hexString(Array(SHA256.hash(data: Array(key.rawRepresentation)).prefix(8)))
    }

    /// True when `head` was signed by this key's private half.
    public func verifies(_ head: SignedTreeHead) -> Bool {
        head.keyID == keyID && key.isValidSignature(head.signature, for: SignedTreeHead.message(size: head.size, root: head.root, timestampMs: head.timestampMs))
    }
}

/// A tree head with its time and an Ed25519 signature over both.
public struct SignedTreeHead: Sendable, Hashable {
    public var size: UInt64
    public var root: MerkleHash
    /// When it was signed, ms since 1970 UTC.
    public var timestampMs: Int64
    public var keyID: String
    public var signature: [UInt8]

    public init(size: UInt64, root: MerkleHash, timestampMs: Int64, keyID: String, signature: [UInt8]) {
        self.size = size
        self.root = root
        self.timestampMs = timestampMs
        self.keyID = keyID
        self.signature = signature
    }

    /// The signed bytes: `tally-tree-head-v1` and a zero byte, u64 BE tree size, i64 BE
    /// timestamp (ms), the 32-byte root.
    public static func message(size: UInt64, root: MerkleHash, timestampMs: Int64) -> [UInt8] {
        var out = Array("tally-tree-head-v1".utf8)
        out.append(0)
        withUnsafeBytes(of: size.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: timestampMs.bigEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: root.bytes)
        return out
    }
}
