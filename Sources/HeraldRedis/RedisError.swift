import HeraldCore

/// An error from Redis or from Herald's connection to it. Callers never import C to match
/// one: `code` says what went wrong and `isTransient` whether the same operation may succeed
/// later.
///
/// `description` is safe to log and to put in a dead letter: it never contains a password,
/// a command argument or the server's error message (Redis quotes arguments in some of its
/// messages, and arguments can be tokens). The full message is in `debugDescription`.
public struct RedisError: ClassifiedError, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What went wrong, in a form callers can match on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Sendable {
            case connectionFailed = "connection failed"
            case connectionLost = "connection lost"
            case timeout = "timed out"
            case protocolError = "protocol error"
            case outOfMemory = "out of memory"
            case authenticationFailed = "authentication failed"
            case misconfigured = "misconfigured"
            case serverUnavailable = "server unavailable"
            case clientClosed = "client closed"
            case commandFailed = "command failed"
            case unexpectedReply = "unexpected reply"
            case invalidCommand = "invalid command"
        }

        fileprivate let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// No connection could be made (refused, unreachable, name not resolved, connect
        /// timeout). Transient.
        public static let connectionFailed = Code(.connectionFailed)
        /// An established connection broke (end of file, reset, I/O error). Transient.
        public static let connectionLost = Code(.connectionLost)
        /// Redis did not answer within the command timeout. Transient.
        public static let timeout = Code(.timeout)
        /// hiredis could not parse what it read; the connection is discarded. Transient.
        public static let protocolError = Code(.protocolError)
        /// hiredis could not allocate memory. Transient.
        public static let outOfMemory = Code(.outOfMemory)
        /// `AUTH` was refused, or a command was refused for want of authentication or
        /// permission (`NOAUTH`, `WRONGPASS`, `NOPERM`). A configuration error, classified
        /// transient so that events wait for an operator instead of being dead-lettered.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// `SELECT` was refused, or the server is a cluster node that redirects (`MOVED`,
        /// `ASK`). A configuration error, transient for the same reason.
        public static let misconfigured = Code(.misconfigured)
        /// The server cannot serve now: `LOADING`, `BUSY`, `TRYAGAIN`, `MASTERDOWN`,
        /// `READONLY`, `CLUSTERDOWN`, `MISCONF`, `OOM`, `NOREPLICAS`. Transient.
        public static let serverUnavailable = Code(.serverUnavailable)
        /// The client was closed (Herald is shutting down). Transient: the work is redone by
        /// the next run.
        public static let clientClosed = Code(.clientClosed)
        /// Redis refused the command (`ERR …`, `WRONGTYPE`, `NOSCRIPT` after the fallback).
        /// Herald validates every argument it sends, so a refusal says something about the
        /// server, not about an event: a proxy with no upstream (`ERR upstream unavailable`),
        /// `ERR max number of clients reached`, a key of another type written by someone else.
        /// Transient: events wait until it is fixed, they are never dead-lettered for it.
        public static let commandFailed = Code(.commandFailed)
        /// Redis answered with a reply of a type the caller cannot use. Permanent (a bug or
        /// a server that is not Redis); the revocation store still treats it as an outage.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// The caller built a command Redis cannot receive (no arguments). Permanent.
        public static let invalidCommand = Code(.invalidCommand)

        public var description: String { backing.rawValue }

        /// Whether an operation that failed with this code may succeed later.
        public var isTransient: Bool {
            switch backing {
            case .unexpectedReply, .invalidCommand: false
            default: true
            }
        }
    }

    public let code: Code
    /// The first word of the server's error reply (`WRONGTYPE`, `NOSCRIPT`, `ERR`) when the
    /// error came from Redis; it never holds data.
    public let serverCode: String?
    /// A fixed explanation or a message from hiredis/the OS ("Connection refused"): never
    /// a command argument or a password.
    public let summary: String
    /// The server's full error message or other detail that may quote arguments. Only in
    /// `debugDescription`.
    let detail: String?
    public let file: String
    public let line: UInt

    public var isTransient: Bool { code.isTransient }

    public var description: String {
        var text = "Redis \(code)"
        if let serverCode { text += " (\(serverCode))" }
        if !summary.isEmpty { text += ": \(summary)" }
        return text
    }

    public var debugDescription: String {
        var text = description
        if let detail { text += " [\(detail)]" }
        return text + " at \(file):\(line)"
    }

    init(_ code: Code, summary: String, serverCode: String? = nil, detail: String? = nil, file: String, line: UInt) {
        self.code = code
        self.summary = summary
        self.serverCode = serverCode
        self.detail = detail
        self.file = file
        self.line = line
    }
}

// MARK: - Factories

extension RedisError {
    static func make(
        _ code: Code, _ summary: String, detail: String? = nil, file: String = #fileID, line: UInt = #line
    ) -> RedisError {
        RedisError(code, summary: summary, detail: detail, file: file, line: line)
    }

    /// Classifies an error reply by its first word (see `Code` for the lists).
    static func reply(_ message: String, file: String = #fileID, line: UInt = #line) -> RedisError {
        let prefix = serverCode(of: message)
        let code: Code
        switch prefix {
        case "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "MISCONF", "OOM", "NOREPLICAS":
            code = .serverUnavailable
        case "NOAUTH", "WRONGPASS", "NOPERM":
            code = .authenticationFailed
        case "MOVED", "ASK":
            code = .misconfigured
        default:
            code = .commandFailed
        }
        return RedisError(code, summary: "", serverCode: prefix, detail: message, file: file, line: line)
    }

    /// A reply to `AUTH` or `SELECT` while connecting: whatever its first word, a refusal
    /// there is a configuration problem (`ERR invalid password`, `ERR DB index is out of
    /// range`), unless the server is merely not ready.
    static func setupReply(
        _ message: String, command: String, file: String = #fileID, line: UInt = #line
    ) -> RedisError {
        let classified = reply(message, file: file, line: line)
        if classified.code == .serverUnavailable { return classified }
        let code: Code = command == "AUTH" ? .authenticationFailed : .misconfigured
        return RedisError(
            code, summary: "\(command) was refused", serverCode: classified.serverCode, detail: message,
            file: file, line: line)
    }

    /// The leading upper-case word of an error reply, or `ERR` when there is none.
    static func serverCode(of message: String) -> String {
        let word = message.prefix { $0 != " " }
        let isCode = !word.isEmpty && word.count <= 32 && word.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") }
        return isCode ? String(word) : "ERR"
    }
}
