import Crypto
import HeraldCore

/// A one-time link token: 32 random bytes from the system's cryptographically secure
/// generator, base64url-encoded without padding (43 characters) for the link. Only its
/// `hash`, the lower-case hex SHA-256 of those 43 characters, is ever stored: the auth API
/// hashes the token it receives from the link the same way and looks the hash up in Redis.
///
/// The token is deliberately not `CustomStringConvertible`, so it never lands in a log line
/// or an error message by accident.
public struct LinkToken: Sendable {
    /// The base64url text that goes into the link (and nowhere else).
    public let secret: String
    /// `sha256hex(secret)`: the Redis key's suffix.
    public let hash: String

    /// A fresh random token.
    public init() {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: .min ... .max, using: &generator) }
        self.init(secret: Base64.encode(bytes, alphabet: .url, padded: false))
    }

    /// The token carried by a link (tests, and `herald` tools that check a link).
    public init(secret: String) {
        self.secret = secret
        self.hash = Self.sha256Hex(secret)
    }

    public static func sha256Hex(_ text: String) -> String {
        let digest = SHA256.hash(data: Array(text.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
