public import Foundation
public import JWTKit
import Synchronization

/// Who may do what: users read and change only their own data, services report worker
/// results, admins read system views and operate, auditors read history.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    case user, service, admin, auditor
}

/// The caller, as a verified bearer token says.
public struct Identity: Sendable, Hashable {
    public var subject: String
    public var role: Role

    /// The actor recorded on the events this caller's commands write.
    public var actor: String { role.rawValue + ":" + subject }
}

/// The claims Tally requires: `sub`, `role`, `exp`.
struct TallyClaims: JWTPayload {
    var sub: SubjectClaim
    var role: String
    var exp: ExpirationClaim
    var iat: IssuedAtClaim?

    func verify(using _: some JWTAlgorithm) async throws {
        // `exp` is checked by `TokenAuthority` with the configured clock skew.
    }
}

/// Verifies bearer tokens (HS256 with a shared secret, or RS256 with a public key) and,
/// with a secret, mints them for `tally-server token` and development.
public final class TokenAuthority: Sendable {
    /// Tokens expired less than this long ago are still accepted: clocks drift.
    public let clockSkew: TimeInterval
    private let keys: JWTKeyCollection
    /// The one `alg` a token's header may name: the configured key's.
    private let algorithm: String
    private let canSign: Bool
    /// Tokens already verified, with their expiry: a client sends the same token on every
    /// request, and parsing plus checking it costs more than answering from a view. The key
    /// is the whole token, signature included, so only a byte-identical token hits.
    private let verified = Mutex<[String: (identity: Identity, expires: Date)]>([:])
    static let verifiedCapacity = 10_000

    private init(keys: JWTKeyCollection, algorithm: String, canSign: Bool, clockSkew: TimeInterval) {
        self.keys = keys
        self.algorithm = algorithm
        self.canSign = canSign
        self.clockSkew = clockSkew
    }

    /// HS256 with `secret`, which must be at least 32 bytes (shorter HMAC keys are weak).
    public static func hs256(secret: String, clockSkew: TimeInterval = 60) async throws -> TokenAuthority {
        guard secret.utf8.count >= 32 else {
            throw AuthError(.misconfigured, "the JWT secret must be at least 32 bytes; generate one with `openssl rand -hex 32`")
        }
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return TokenAuthority(keys: keys, algorithm: "HS256", canSign: true, clockSkew: clockSkew)
    }

    /// RS256, verifying only, with a PEM public key or certificate.
    public static func rs256(publicKeyPEM pem: String, clockSkew: TimeInterval = 60) async throws -> TokenAuthority {
        let key: Insecure.RSA.PublicKey
        do {
            key = pem.contains("BEGIN CERTIFICATE") ? try Insecure.RSA.PublicKey(certificatePEM: pem) : try Insecure.RSA.PublicKey(pem: pem)
        } catch {
            throw AuthError(.misconfigured, "the RS256 public key does not parse as PEM: \(error)")
        }
        let keys = await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256)
        return TokenAuthority(keys: keys, algorithm: "RS256", canSign: false, clockSkew: clockSkew)
    }

    /// The identity in `token`; throws `AuthError(.unauthenticated)` when it is forged,
    /// malformed, expired or lacks a claim.
    public func verify(_ token: String, now: Date = Date()) async throws -> Identity {
        if let hit = verified.withLock({ $0[token] }) {
            guard hit.expires.addingTimeInterval(clockSkew) > now else {
                throw AuthError(.unauthenticated, "the bearer token expired at \(hit.expires); get a new one")
            }
            return hit.identity
        }
        let identity = try await verifyUncached(token, now: now)
        verified.withLock { cache in
            if cache.count >= Self.verifiedCapacity { cache.removeAll(keepingCapacity: true) }
            cache[token] = identity
        }
        return identity.identity
    }

    private func verifyUncached(_ token: String, now: Date) async throws -> (identity: Identity, expires: Date) {
        // The key decides the algorithm, never the token: a header naming another one (HS512
        // over an HS256 secret, `none`) is refused before any signature check.
        let named = Self.headerAlgorithm(token)
        guard named == algorithm else {
            throw AuthError(.unauthenticated, "the bearer token names algorithm \(named.map { "\($0.prefix(20))" } ?? "none readable"); this server takes \(algorithm)")
        }
        let claims: TallyClaims
        do {
            claims = try await keys.verify(token, as: TallyClaims.self)
        } catch {
            throw AuthError(.unauthenticated, "the bearer token is not valid: \(error)")
        }
        guard claims.exp.value.addingTimeInterval(clockSkew) > now else {
            throw AuthError(.unauthenticated, "the bearer token expired at \(claims.exp.value); get a new one")
        }
        guard let role = Role(rawValue: claims.role) else {
            throw AuthError(.unauthenticated, "the token's role \(claims.role) is not one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let subject = claims.sub.value
        guard (1...128).contains(subject.utf8.count), subject.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw AuthError(.unauthenticated, "the token's subject must be 1...128 printable ASCII characters without spaces")
        }
        return (Identity(subject: subject, role: role), claims.exp.value)
    }

    /// The `alg` of a compact JWS's header, when the header is base64url JSON (at most 4 KiB).
    static func headerAlgorithm(_ token: String) -> String? {
        guard let dot = token.firstIndex(of: "."), token.distance(from: token.startIndex, to: dot) <= 4_096 else { return nil }
        var base64 = token[..<dot].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64),
              let header = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return header["alg"] as? String
    }

    /// A signed token for `subject` in `role`, valid for `lifetime` seconds.
    public func mint(subject: String, role: Role, lifetime: TimeInterval = 86_400, now: Date = Date()) async throws -> String {
        guard canSign else { throw AuthError(.misconfigured, "tokens can be minted only with an HS256 secret (TALLY_JWT_SECRET)") }
        let claims = TallyClaims(sub: SubjectClaim(value: subject), role: role.rawValue,
                                 exp: ExpirationClaim(value: now.addingTimeInterval(lifetime)), iat: IssuedAtClaim(value: now))
        return try await keys.sign(claims)
    }
}

/// Why a request was not let in.
public struct AuthError: Error, Sendable, CustomStringConvertible {
    /// A closed set of stable codes (no public initializer).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        package enum Base: String, Sendable, CaseIterable {
            case unauthenticated, forbidden, misconfigured
        }

        package let base: Base
        private init(_ base: Base) { self.base = base }

        /// No, a malformed, forged or expired token. (401)
        public static let unauthenticated = Code(.unauthenticated)
        /// A valid token whose role may not do this. (403)
        public static let forbidden = Code(.forbidden)
        /// The server's key material is unusable. (startup error)
        public static let misconfigured = Code(.misconfigured)

        /// Every code, for tests and documentation.
        public static var all: [Code] { Base.allCases.map(Code.init) }

        public var rawValue: String { base.rawValue }
        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
