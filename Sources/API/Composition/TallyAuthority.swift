import Foundation

extension TallyConfiguration {
    /// The token authority the configuration names: HS256 with `jwtSecret`, or RS256
    /// (verify only) with the PEM file at `jwtPublicKeyPath`.
    public func makeAuthority() async throws -> TokenAuthority {
        if let secret = jwtSecret {
            return try await TokenAuthority.hs256(secret: secret)
        }
        if let path = jwtPublicKeyPath {
            guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError(.unreadableFile, setting: TallySetting.jwtPublicKey.name,
                                         "cannot read the JWT public key file \(path) (\(TallySetting.jwtPublicKey.label)): check the path and its permissions")
            }
            return try await TokenAuthority.rs256(publicKeyPEM: pem)
        }
        throw ConfigurationError(.missingSetting, setting: TallySetting.jwtSecret.name,
                                 "set \(TallySetting.jwtSecret.label) (HS256, at least 32 bytes) or \(TallySetting.jwtPublicKey.label) (RS256 PEM file)")
    }
}
