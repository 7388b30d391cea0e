import HeraldCore

/// Where and how to reach Redis: `redis://[user:password@]host[:port][/db]` or
/// `unix:///path/to/redis.sock[?db=N]` (also `redis+unix://`, `redis-socket://`).
public struct RedisEndpoint: Hashable, Sendable, CustomStringConvertible {
    public enum Address: Hashable, Sendable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    public var username: String?
    public var password: Secret?
    public var database: Int

    public init(address: Address, username: String? = nil, password: Secret? = nil, database: Int = 0) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a Redis URL. Errors say what is wrong without echoing the URL (it may hold a
    /// password).
    ///
    /// Parsed on the UTF-8 bytes: every delimiter is ASCII, and a Character can hold one
    /// followed by a combining mark (`@` + U+0659 is a single Character), which a search for
    /// the Character `@` passes over: the password then stayed in the host, which is logged.
    public init(url: String) throws(ValidationError) {
        let field = "url"
        let bytes = Array(url.utf8)
        let schemes = ["redis://", "unix://", "redis+unix://", "redis-socket://"]
        guard let scheme = schemes.first(where: { bytes.starts(with: $0.utf8) }) else {
            throw ValidationError(field: field, reason: "must start with redis:// or unix://")
        }
        func text(_ part: ArraySlice<UInt8>) -> String { String(decoding: part, as: UTF8.self) }
        var rest = bytes[scheme.utf8.count...]
        var query: ArraySlice<UInt8> = []
        if let q = rest.firstIndex(of: UInt8(ascii: "?")) {
            query = rest[(q + 1)...]
            rest = rest[..<q]
        }
        var database = 0
        for pair in query.split(separator: UInt8(ascii: "&")) {
            let kv = pair.split(separator: UInt8(ascii: "="), maxSplits: 1)
            if kv.count == 2, kv[0].elementsEqual("db".utf8) {
                guard let db = Int(text(kv[1])), db >= 0 else { throw ValidationError(field: field, reason: "db is not a number") }
                database = db
            }
        }
        if scheme != "redis://" {
            guard rest.first == UInt8(ascii: "/") else { throw ValidationError(field: field, reason: "socket path must be absolute") }
            let path = text(rest)
            guard !path.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ValidationError(field: field, reason: "socket path contains a control character")
            }
            self.init(address: .unix(path: path), database: database)
            return
        }
        var username: String?
        var password: Secret?
        if let at = rest.lastIndex(of: UInt8(ascii: "@")) {
            let userinfo = rest[..<at]
            rest = rest[(at + 1)...]
            if let colon = userinfo.firstIndex(of: UInt8(ascii: ":")) {
                let user = percentDecoded(userinfo[..<colon])
                username = user.isEmpty ? nil : user
                password = Secret(percentDecoded(userinfo[(colon + 1)...]))
            } else if !userinfo.isEmpty {
                // `redis://secret@host` is the password-only form redis-cli accepts.
                password = Secret(percentDecoded(userinfo))
            }
        }
        var hostPort = rest
        if let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
            hostPort = rest[..<slash]
            let db = rest[(slash + 1)...]
            if !db.isEmpty {
                guard let n = Int(text(db)), n >= 0 else { throw ValidationError(field: field, reason: "database is not a number") }
                database = n
            }
        }
        var host = text(hostPort)
        var port = 6379
        if hostPort.first == UInt8(ascii: "[") {
            guard let close = hostPort.firstIndex(of: UInt8(ascii: "]")) else {
                throw ValidationError(field: field, reason: "bad IPv6 host")
            }
            host = text(hostPort[(hostPort.startIndex + 1)..<close])
            let after = hostPort[(close + 1)...]
            if after.first == UInt8(ascii: ":") {
                guard let p = Int(text(after.dropFirst())), (1...65535).contains(p) else {
                    throw ValidationError(field: field, reason: "bad port")
                }
                port = p
            } else if !after.isEmpty {
                throw ValidationError(field: field, reason: "bad IPv6 host")
            }
        } else if let colon = hostPort.lastIndex(of: UInt8(ascii: ":")) {
            host = text(hostPort[..<colon])
            guard let p = Int(text(hostPort[(colon + 1)...])), (1...65535).contains(p) else {
                throw ValidationError(field: field, reason: "bad port")
            }
            port = p
        }
        guard !host.isEmpty else { throw ValidationError(field: field, reason: "missing host") }
        // Refused here rather than left to the resolver: Herald would start and wait on an
        // unreachable Redis instead of stopping with the setting's name.
        guard !host.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
        else { throw ValidationError(field: field, reason: "host contains a space or a control character") }
        self.init(address: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    /// The endpoint without credentials, safe to log.
    public var description: String {
        switch address {
        case .tcp(let host, let port): "redis://\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
        case .unix(let path): "unix://\(path)?db=\(database)"
        }
    }
}

private func percentDecoded(_ s: ArraySlice<UInt8>) -> String {
    var out: [UInt8] = []
    var bytes = s
    while let b = bytes.popFirst() {
        if b == UInt8(ascii: "%"), bytes.count >= 2, let high = hexDigit(bytes[bytes.startIndex]),
            let low = hexDigit(bytes[bytes.startIndex + 1])
        {
            out.append(high << 4 | low)
            bytes = bytes.dropFirst(2)
        } else {
            out.append(b)
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// The value of an ASCII hex digit. (`UInt8(_:radix:)` also accepts a sign: `%+1`.)
private func hexDigit(_ b: UInt8) -> UInt8? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
    default: nil
    }
}
