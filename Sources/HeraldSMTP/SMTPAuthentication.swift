import HeraldCore

/// How Herald authenticates to the SMTP server (`HERALD_SMTP_AUTH`).
public enum SMTPAuthentication: Sendable, Hashable, CustomStringConvertible {
    /// No AUTH (`HERALD_SMTP_AUTH=none`): the server relays for Herald without credentials.
    /// (Not named `none`, which `Optional` has already.)
    case anonymous
    /// AUTH with the user name and password (PLAIN, LOGIN or whatever libcurl and the server
    /// agree on): Herald's behaviour before XOAUTH2.
    case password
    /// SASL XOAUTH2 (Microsoft 365, Gmail): the user name and an OAuth2 bearer token from
    /// `source`.
    case xoauth2(OAuth2TokenSource)

    /// The method's name, as `herald mail test` reports it: `none`, `password`, `xoauth2`.
    public var method: String {
        switch self {
        case .anonymous: "none"
        case .password: "password"
        case .xoauth2: "xoauth2"
        }
    }

    /// The method and where a token comes from; never a token or a secret.
    public var description: String {
        switch self {
        case .anonymous, .password: method
        case .xoauth2(let source): "xoauth2 (\(source))"
        }
    }
}

/// Where XOAUTH2 bearer tokens come from.
public enum OAuth2TokenSource: Sendable, Hashable, CustomStringConvertible {
    /// A file holding the token (`HERALD_SMTP_OAUTH2_TOKEN_FILE`), kept fresh by someone else
    /// (a sidecar, an agent): read again before every send, so a changed token is used from
    /// the next mail on (libcurl opens a new connection for a new token).
    case file(path: String)
    /// Herald asks the token endpoint itself with the client-credentials grant, caches the
    /// token and fetches a new one shortly before it expires.
    case clientCredentials(OAuth2ClientCredentials)

    public var description: String {
        switch self {
        case .file(let path): "token file \(path)"
        case .clientCredentials(let client): "client credentials from \(client.tokenURL)"
        }
    }
}

/// An OAuth2 client allowed the client-credentials grant (RFC 6749 §4.4): where to ask, as
/// whom, for what. The secret is sent in the form body (`client_secret_post`), which Microsoft
/// Entra ID, Keycloak, Okta and most servers accept.
public struct OAuth2ClientCredentials: Sendable, Hashable, CustomStringConvertible {
    /// `https://…`, or `http://` to a loopback address (127.0.0.0/8, `[::1]`, `localhost`):
    /// the secret never travels in the clear beyond this machine.
    public let tokenURL: String
    public let clientID: String
    public let clientSecret: Secret
    /// `scope`, space-separated (`https://outlook.office365.com/.default` for Microsoft 365);
    /// not sent when nil.
    public let scope: String?

    public init(tokenURL: String, clientID: String, clientSecret: Secret, scope: String? = nil) throws(ValidationError) {
        guard Self.isAllowedTokenURL(tokenURL) else {
            throw ValidationError(
                field: "HERALD_SMTP_OAUTH2_TOKEN_URL",
                reason: "must be an https:// URL (http:// only to a loopback address: 127.0.0.1, [::1], localhost)")
        }
        guard !clientID.isEmpty, !clientID.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ValidationError(field: "HERALD_SMTP_OAUTH2_CLIENT_ID", reason: "must be non-empty text on one line")
        }
        guard !clientSecret.value.isEmpty else {
            throw ValidationError(field: "HERALD_SMTP_OAUTH2_CLIENT_SECRET", reason: "is empty")
        }
        if let scope {
            guard !scope.isEmpty, !scope.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ValidationError(field: "HERALD_SMTP_OAUTH2_SCOPE", reason: "must be non-empty text on one line")
            }
        }
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
    }

    /// Never the secret.
    public var description: String { "client \(clientID) at \(tokenURL)" }

    /// `https://host…`, or `http://` to 127.0.0.0/8, `[::1]` or `localhost`; no spaces,
    /// control characters, user information or fragment.
    static func isAllowedTokenURL(_ url: String) -> Bool {
        guard !url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }),
            !url.contains("#")
        else { return false }
        let lowered = url.lowercased()
        let rest: Substring
        let secure: Bool
        if lowered.hasPrefix("https://") {
            rest = lowered.dropFirst(8)
            secure = true
        } else if lowered.hasPrefix("http://") {
            rest = lowered.dropFirst(7)
            secure = false
        } else {
            return false
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard !authority.isEmpty, !authority.contains("@") else { return false }
        if secure { return true }
        let host: Substring
        if authority.hasPrefix("[") {
            host = authority.prefix { $0 != "]" }.dropFirst()
        } else {
            host = authority.prefix { $0 != ":" }
        }
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
