import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A reply read by the harness's own RESP client.
enum RESPValue: Hashable, Sendable {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8]?)
    case array([RESPValue]?)

    /// A bulk or simple string as text.
    var text: String? {
        switch self {
        case .simple(let s): s
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    var integer: Int? {
        if case .integer(let n) = self { return n }
        return nil
    }

    /// The bulk strings of an array reply.
    var bulkStrings: [[UInt8]] {
        guard case .array(let elements?) = self else { return [] }
        return elements.compactMap { if case .bulk(let bytes?) = $0 { bytes } else { nil } }
    }
}

/// A blocking RESP2 client on one TCP connection to 127.0.0.1, independent of HeraldRedis
/// and hiredis. Test-only: each call is a short local exchange with a 5-second timeout.
final class RESPConnection {
    private let socket: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw RedisServer.Failure(description: "socket failed") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        // No close(2) here: the object is fully initialised, so deinit runs after the throw
        // and closes the socket (closing twice could close another thread's new descriptor).
        guard connected else { throw RedisServer.Failure(description: "cannot connect to 127.0.0.1:\(port)") }
    }

    deinit {
        if socket >= 0 { close(socket) }
    }

    func send(_ arguments: [[UInt8]]) throws -> RESPValue {
        var request = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            request += Array("$\(argument.count)\r\n".utf8) + argument + Array("\r\n".utf8)
        }
        try write(request)
        return try readValue()
    }

    func expectOK(_ arguments: [[UInt8]]) throws {
        let reply = try send(arguments)
        guard reply == .simple("OK") else {
            throw RedisServer.Failure(description: "\(String(decoding: arguments[0], as: UTF8.self)) failed: \(reply)")
        }
    }

    // MARK: - Wire

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RedisServer.Failure(description: "send failed") }
            sent += n
        }
    }

    private func readValue() throws -> RESPValue {
        let line = try readLine()
        guard let kind = line.first else { throw RedisServer.Failure(description: "empty RESP line") }
        let rest = String(decoding: line.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"): return .integer(Int(rest) ?? 0)
        case UInt8(ascii: "$"):
            guard let count = Int(rest), count >= 0 else { return .bulk(nil) }
            let bytes = try readBytes(count + 2)
            return .bulk(Array(bytes.prefix(count)))
        case UInt8(ascii: "*"):
            guard let count = Int(rest), count >= 0 else { return .array(nil) }
            return .array(try (0..<count).map { _ in try readValue() })
        default:
            throw RedisServer.Failure(description: "unknown RESP type \(kind)")
        }
    }

    private func readLine() throws -> [UInt8] {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")), end > 0, buffer[end - 1] == UInt8(ascii: "\r") {
                let line = Array(buffer[..<(end - 1)])
                buffer.removeFirst(end + 1)
                return line
            }
            try fill()
        }
    }

    private func readBytes(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        defer { buffer.removeFirst(count) }
        return Array(buffer.prefix(count))
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw RedisServer.Failure(description: "connection closed or timed out") }
        buffer += chunk.prefix(n)
    }
}
