import HeraldCore

/// Where and how to send mail, from `HERALD_SMTP_URL` and its companions.
///
/// - `smtp://[user:password@]host[:port][/helo-name]`: STARTTLS required (port 587 by
///   default); with `allowPlaintext` (development only) no TLS at all.
/// - `smtps://…`: TLS from the first byte (port 465 by default).
/// - `file://DIR`: no server; each message is written to `DIR` as a `.eml` file
///   (`file://var/mail` is the relative directory `var/mail`, `file:///srv/mail` absolute).
///
/// User and password in the URL are percent-decoded; explicit `username`/`password`
/// arguments (from `HERALD_SMTP_USER`, `HERALD_SMTP_PASSWORD(_FILE)`) take precedence.
/// `authentication` (`HERALD_SMTP_AUTH`) says how they are used: by default `password` when
/// a user or a password is set, else `none`; `xoauth2` sends the user with an OAuth2 bearer
/// token instead of a password. `description` never shows the password.
public struct SMTPSettings: Sendable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        /// `url` is the server's `smtp://host:port` or `smtps://host:port`, without
        /// credentials or path.
        case smtp(url: String, security: Security)
        case file(directory: String)
    }

    public enum Security: Sendable, Equatable {
        /// `smtp://`: the connection is upgraded with STARTTLS, and sending fails when the
        /// server does not offer it.
        case startTLSRequired
        /// `smtps://`: TLS from the start.
        case implicitTLS
        /// `smtp://` with the explicit opt-out: no TLS, credentials and mail in the clear.
        case plaintext
    }

    public let transport: Transport
    public let username: String?
    public let password: String?
    /// How Herald authenticates (`username` is also the XOAUTH2 user).
    public let authentication: SMTPAuthentication
    /// Verify the server's certificate and host name (the default). Turn off only for tests.
    public let verifyCertificate: Bool
    /// PEM file of the certificate authorities to trust instead of the system's.
    public let caFile: String?
    /// The name sent with `EHLO`; libcurl's default (the host name) when nil.
    public let heloName: String?
    public let connectTimeout: Duration
    /// Limit for one whole send, connection included.
    public let transferTimeout: Duration
    /// Keep each worker's connection open between messages (the default). Off, every
    /// message opens and closes its own connection (`HERALD_SMTP_REUSE_CONNECTIONS=false`,
    /// for servers that dislike long sessions, and the benchmark's baseline).
    public let reuseConnections: Bool

    public static let defaultConnectTimeout: Duration = .seconds(10)
    public static let defaultTransferTimeout: Duration = .seconds(60)

    public init(
        url: String, username: String? = nil, password: String? = nil, allowPlaintext: Bool = false,
        verifyCertificate: Bool = true, caFile: String? = nil, heloName: String? = nil,
        connectTimeout: Duration = defaultConnectTimeout, transferTimeout: Duration = defaultTransferTimeout,
        reuseConnections: Bool = true, authentication: SMTPAuthentication? = nil
    ) throws(ValidationError) {
        let field = "HERALD_SMTP_URL"
        guard !HeaderText.containsControl(url), !url.contains(" ") else {
            throw ValidationError(field: field, reason: "contains a space or a control character")
        }
        guard let schemeEnd = url.range(of: "://") else {
            throw ValidationError(field: field, reason: "must start with smtp://, smtps:// or file://")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        self.verifyCertificate = verifyCertificate
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.transferTimeout = transferTimeout
        self.reuseConnections = reuseConnections
        guard connectTimeout > .zero, transferTimeout > .zero else {
            throw ValidationError(field: "SMTP timeouts", reason: "must be positive")
        }
        switch scheme {
        case "file":
            guard !rest.isEmpty else { throw ValidationError(field: field, reason: "file:// needs a directory") }
            transport = .file(directory: String(rest))
            self.username = username
            self.password = password
            self.heloName = heloName
            self.authentication = authentication ?? .anonymous
            return
        case "smtp", "smtps":
            break
        default:
            throw ValidationError(field: field, reason: "must start with smtp://, smtps:// or file://")
        }
        // authority[/helo]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<slash]
        let path = rest[slash...].drop { $0 == "/" }
        if let query = authority.firstIndex(where: { $0 == "?" || $0 == "#" }) { authority = authority[..<query] }
        var urlUser: String?
        var urlPassword: String?
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                urlUser = try Self.percentDecoded(credentials[..<colon])
                urlPassword = try Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else {
                urlUser = try Self.percentDecoded(credentials)
            }
        }
        let (host, port) = try Self.hostAndPort(authority, defaultPort: scheme == "smtps" ? 465 : 587)
        let security: Security
        if scheme == "smtps" {
            security = .implicitTLS
        } else {
            security = allowPlaintext ? .plaintext : .startTLSRequired
        }
        transport = .smtp(url: "\(scheme)://\(host):\(port)", security: security)
        self.username = username ?? urlUser.flatMap { $0.isEmpty ? nil : $0 }
        self.password = password ?? urlPassword
        var helo = heloName
        if helo == nil && !path.isEmpty { helo = try Self.percentDecoded(path) }
        if let helo {
            guard !helo.isEmpty, helo.utf8.count <= 255, helo.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") })
            else {
                throw ValidationError(field: "SMTP HELO name", reason: "must be printable ASCII without spaces or slashes")
            }
        }
        self.heloName = helo
        self.authentication = try Self.checked(authentication, username: self.username, password: self.password)
    }

    /// `authentication`, or the default for the credentials, checked against them.
    private static func checked(
        _ authentication: SMTPAuthentication?, username: String?, password: String?
    ) throws(ValidationError) -> SMTPAuthentication {
        switch authentication {
        case nil:
            return username != nil || password != nil ? .password : .anonymous
        case .anonymous:
            guard username == nil && password == nil else {
                throw ValidationError(
                    field: "HERALD_SMTP_AUTH", reason: "is none, but a user or password is set (in HERALD_SMTP_URL or HERALD_SMTP_USER)")
            }
            return .anonymous
        case .password:
            guard username != nil, password != nil else {
                throw ValidationError(
                    field: "HERALD_SMTP_PASSWORD",
                    reason: "required with HERALD_SMTP_AUTH=password, with HERALD_SMTP_USER (or both in the URL)")
            }
            return .password
        case .xoauth2(let source):
            guard let username, !username.isEmpty else {
                throw ValidationError(
                    field: "HERALD_SMTP_USER", reason: "required with HERALD_SMTP_AUTH=xoauth2: the mailbox the token is for")
            }
            guard password == nil else {
                throw ValidationError(
                    field: "HERALD_SMTP_PASSWORD", reason: "not used with HERALD_SMTP_AUTH=xoauth2 (the token replaces it); remove it")
            }
            return .xoauth2(source)
        }
    }

    public var description: String {
        switch transport {
        case .file: serverURL
        case .smtp(_, let security): "\(serverURL) (\(security))"
        }
    }

    /// Where mail goes: `smtp://user@host:port`, `smtps://host:port` or `file://DIR`; never
    /// the password.
    public var serverURL: String {
        switch transport {
        case .file(let directory):
            return "file://\(directory)"
        case .smtp(let url, _):
            let user = username.map { "\($0)@" } ?? ""
            let scheme = url.prefix { $0 != ":" }
            return "\(scheme)://\(user)\(url.dropFirst(scheme.count + 3))"
        }
    }

    private static func hostAndPort(_ authority: Substring, defaultPort: Int) throws(ValidationError) -> (String, Int) {
        let field = "HERALD_SMTP_URL"
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ValidationError(field: field, reason: "has an unterminated IPv6 address")
            }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw ValidationError(field: field, reason: "has text after the IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty,
            host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !"/?#@\\".utf8.contains($0) })
        else {
            throw ValidationError(field: field, reason: "has no valid host")
        }
        guard let portText else { return (String(host), defaultPort) }
        guard let port = Int(portText), (1...65_535).contains(port) else {
            throw ValidationError(field: field, reason: "has an invalid port")
        }
        return (String(host), port)
    }

    private static func percentDecoded(_ text: Substring) throws(ValidationError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw ValidationError(field: "HERALD_SMTP_URL", reason: "has an invalid percent escape")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self), !decoded.utf8.contains(0) else {
            throw ValidationError(field: "HERALD_SMTP_URL", reason: "has credentials that are not UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
