import HeraldCore

/// An access token from a token endpoint, and how long it is valid from when it was issued.
/// `description` never shows the token.
public struct OAuth2Token: Sendable, Hashable, CustomStringConvertible {
    public let value: Secret
    public let lifetime: Duration

    public init(value: String, lifetime: Duration) {
        self.value = Secret(value)
        self.lifetime = lifetime
    }

    public var description: String { "an access token valid for \(lifetime)" }
}

/// Reads a token endpoint's answer (RFC 6749 §5.1 and §5.2) with HeraldCore's JSON parser.
public enum OAuth2TokenResponse {
    /// The lifetime assumed when the answer has no `expires_in` (RFC 6749 only recommends it):
    /// short, so a token of unknown lifetime is replaced often rather than used past its end.
    public static let defaultLifetime: Duration = .seconds(300)
    /// Longest body read: a token answer is a few kilobytes at most.
    public static let maxBodyBytes = 256 * 1024

    /// The token in a 2xx answer with body `body`; otherwise why there is none:
    /// - `tokenRefused` for a 4xx other than 408 and 429: the endpoint refused Herald's client
    ///   or request (`invalid_client`, `invalid_scope`, `unauthorized_client`…), which only an
    ///   operator fixes;
    /// - `tokenUnavailable` for anything else: a 5xx, 408, 429, a redirect, a 2xx without a
    ///   usable bearer token.
    /// The reason names the HTTP status and the OAuth2 `error` code; the `error_description`
    /// (cut to 200 characters) is kept as the error's `serverReply`. Never the token.
    public static func token(status: Int, body: [UInt8]) -> Result<OAuth2Token, MailError> {
        let object = try? JSONObject(parsing: body)
        guard (200..<300).contains(status) else {
            var summary = "the token endpoint answered HTTP \(status)"
            if let code = (try? object?.string("error")).flatMap({ $0 }), isPrintableWord(code) {
                summary += " \(code)"
            }
            let description = (try? object?.string("error_description")).flatMap { $0 }.map { String(printable($0).prefix(200)) }
            let refused = (400..<500).contains(status) && status != 408 && status != 429
            return .failure(.make(refused ? .tokenRefused : .tokenUnavailable, summary, serverReply: description))
        }
        guard let object else {
            return .failure(.make(.tokenUnavailable, "the token endpoint answered HTTP \(status) without a JSON object"))
        }
        guard let token = (try? object.string("access_token")).flatMap({ $0 }), !token.isEmpty, isTokenText(token) else {
            return .failure(.make(.tokenUnavailable, "the token endpoint's answer has no usable access_token"))
        }
        if let type = (try? object.string("token_type")).flatMap({ $0 }), type.lowercased() != "bearer" {
            let shown = isPrintableWord(type) ? type : "?"
            return .failure(.make(.tokenUnavailable, "the token endpoint issued a \(shown) token, not a bearer token"))
        }
        var lifetime = defaultLifetime
        // A number (RFC 6749), or a string of digits (Microsoft's v1 endpoint).
        if let seconds = (try? object.number("expires_in")).flatMap({ $0 }) {
            // Less than a second is no lifetime to send mail with.
            guard seconds >= 1 else {
                return .failure(.make(.tokenUnavailable, "the token endpoint issued a token that has already expired"))
            }
            lifetime = .milliseconds(Int64(min(seconds, 365 * 86_400) * 1000))
        } else if let text = (try? object.string("expires_in")).flatMap({ $0 }) {
            guard let seconds = Int64(text), seconds > 0 else {
                return .failure(.make(.tokenUnavailable, "the token endpoint's expires_in is not a number of seconds"))
            }
            lifetime = .seconds(min(seconds, 365 * 86_400))
        }
        return .success(OAuth2Token(value: token, lifetime: lifetime))
    }

    /// A bearer token as RFC 6750 §2.1 allows it (`b64token`), which also keeps CR, LF and the
    /// XOAUTH2 separator (0x01) out of the SASL string.
    static func isTokenText(_ text: String) -> Bool {
        text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default: "-._~+/=".utf8.contains(byte)
            }
        }
    }

    private static func isPrintableWord(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    private static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
    }
}
