import Crypto
import EventLog

/// Which command an idempotency key was sent to: keys are scoped by principal and by this,
/// as payment APIs scope them, so the same client key on two routes is two keys.
public enum CommandRoute: String, Sendable, CaseIterable {
    case grant, unlock, search
    case profileRefresh = "profile-refresh"
    case analysis, cdn, health
}

/// The key a command hands the store for a client's `Idempotency-Key`: a digest of the
/// principal (the actor), the route and the client key, so bob's key never meets alice's
/// and a key used on unlock is not the same key on search. The digest keeps the stored
/// key at a fixed 72 bytes, within `EventLimits.maxIdempotencyKeyBytes` whatever the
/// client key's length, in both stores' key indexes unchanged.
///
/// Whether a repeat is the same request is decided from the events the first request
/// wrote (stream, type, schema and payload bytes), not from a second digest: the log
/// already holds the request's content, on both backends, at no extra storage.
///
/// Keys written by earlier versions are the client's key verbatim; a scoped key always
/// starts with `scope:1 `, and the HTTP API never took a key with a space, so no old key
/// can collide with a new one. Old keys are not consulted by new requests: a retry that
/// spans the upgrade is written again (README, "Idempotency keys").
enum IdempotencyScope {
    static let prefix = "scope:1 "

    static func storedKey(client key: String?, actor: String, route: CommandRoute) -> String? {
        guard let key else { return nil }
        var hasher = SHA256()
        for part in [actor, route.rawValue, key] {
            // Length-prefixed, so no two different triples hash the same bytes.
            var count = UInt32(part.utf8.count).bigEndian
            withUnsafeBytes(of: &count) { hasher.update(bufferPointer: $0) }
            hasher.update(data: Array(part.utf8))
        }
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in hasher.finalize() {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return prefix + String(decoding: hex, as: UTF8.self)
    }
}
