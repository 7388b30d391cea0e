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
    public init(url: String) throws(ValidationError) {
        let field = "url"
        let schemes = ["redis://", "unix://", "redis+unix://", "redis-socket://"]
        guard let scheme = schemes.first(where: { url.hasPrefix($0) }) else {
            throw ValidationError(field: field, reason: "must start with redis:// or unix://")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var database = 0
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == "db" {
                guard let db = Int(kv[1]), db >= 0 else { throw ValidationError(field: field, reason: "db is not a number") }
                database = db
            }
        }
        if scheme != "redis://" {
            guard rest.hasPrefix("/") else { throw ValidationError(field: field, reason: "socket path must be absolute") }
            guard !rest.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ValidationError(field: field, reason: "socket path contains a control character")
            }
            self.init(address: .unix(path: String(rest)), database: database)
            return
        }
        var username: String?
        var password: Secret?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = percentDecoded(userinfo[..<colon])
                username = user.isEmpty ? nil : user
                password = Secret(percentDecoded(userinfo[userinfo.index(after: colon)...]))
            } else if !userinfo.isEmpty {
                // `redis://secret@host` is the password-only form redis-cli accepts.
                password = Secret(percentDecoded(userinfo))
            }
        }
        var hostPort = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { throw ValidationError(field: field, reason: "database is not a number") }
                database = n
            }
        }
        var host = String(hostPort)
        var port = 6379
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw ValidationError(field: field, reason: "bad IPv6 host") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw ValidationError(field: field, reason: "bad port")
                }
                port = p
            } else if !after.isEmpty {
                throw ValidationError(field: field, reason: "bad IPv6 host")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
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

private func percentDecoded(_ s: Substring) -> String {
    var out: [UInt8] = []
    var bytes = Array(s.utf8)[...]
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
