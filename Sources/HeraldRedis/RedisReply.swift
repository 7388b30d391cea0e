/// One reply from Redis, copied out of hiredis's reply object.
public enum RedisReply: Sendable, Hashable {
    /// A bulk string, byte for byte.
    case bytes([UInt8])
    /// A status reply such as `OK` or `PONG`.
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    /// A nil bulk string or nil array (a missing key).
    case null
    /// An error reply, message included. Redis quotes command arguments in some messages:
    /// log `RedisError.reply(_:)` instead of this text.
    case error(String)

    /// The bulk string or status as UTF-8 text (invalid sequences repaired).
    public var string: String? {
        switch self {
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let status): status
        default: nil
        }
    }

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// The error message when this is an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// This reply, or a classified `RedisError` when it is an error reply.
    public func throwingError(file: String = #fileID, line: UInt = #line) throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw RedisError.reply(message, file: file, line: line) }
        return self
    }
}
