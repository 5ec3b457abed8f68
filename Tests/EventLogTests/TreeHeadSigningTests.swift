import Testing
@testable import EventLog

/// Ed25519 tree heads: a signed head verifies with its key's public half and with no other;
/// changing its size, root, time or signature is refused; a key file holds 64 hex digits.
@Suite struct TreeHeadSigningTests {
    @Test func signedHeadsVerifyAndAnyChangeIsRefused() throws {
        let key = TreeHeadSigningKey.generate()
        let other = TreeHeadSigningKey.generate()
        let root = MerkleHash.leaf([1, 2, 3])
        let head = try key.sign(size: 1_000, root: root, timestampMs: 1_795_000_000_123)
        #expect(key.publicKey.verifies(head))
        #expect(!other.publicKey.verifies(head))
        var changed = head
        changed.size = 999
        #expect(!key.publicKey.verifies(changed))
        changed = head
        changed.root = MerkleHash.leaf([1, 2, 4])
        #expect(!key.publicKey.verifies(changed))
        changed = head
        changed.timestampMs += 1
        #expect(!key.publicKey.verifies(changed))
        changed = head
        changed.signature[10] ^= 1
        #expect(!key.publicKey.verifies(changed))
        changed = head
        changed.keyID = other.publicKey.keyID
        #expect(!key.publicKey.verifies(changed))
    }

    @Test func keyFilesRoundTripAndBadOnesAreRefused() throws {
        let key = TreeHeadSigningKey.generate()
        let again = try TreeHeadSigningKey(fileContents: Array(key.fileContents.utf8))
        #expect(again.publicKey.hex == key.publicKey.hex)
        #expect(TreeHeadPublicKey(text: " " + key.publicKey.hex + "\n")?.keyID == key.publicKey.keyID)
        for bad in ["", "abc", String(repeating: "g", count: 64), String(repeating: "0", count: 63), String(repeating: "0", count: 66)] {
            #expect(throws: EventLogError.self) { try TreeHeadSigningKey(fileContents: Array(bad.utf8)) }
            #expect(TreeHeadPublicKey(text: bad) == nil)
        }
        #expect(key.publicKey.keyID.utf8.count == 16)
    }
}
