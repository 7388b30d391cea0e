import Foundation
import HeraldCore

/// An error from PostgreSQL or from Herald's connection to it. Callers never import C to
/// match one: `code` says where it came from, `sqlState` which condition it is, and
/// `isTransient` whether the same operation may succeed later.
///
/// `description` is safe to log and to put in a dead letter: it never contains a password or
/// a parameter value. The server's primary message is included, except that for data
/// exceptions (class 22, whose messages quote the offending input, as in
/// `invalid input syntax for type uuid: "…"`) every quoted part is replaced with `"…"`. The
/// server's `DETAIL` (which echoes values: `Key (id)=(42) already exists`), `HINT` and the
/// unredacted message are only in `debugDescription`.
public struct PostgresError: ClassifiedError, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// Where the error came from, in a form callers can match on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Sendable {
            case connectionFailed = "connection failed"
            case connectionLost = "connection lost"
            case misconfigured = "misconfigured"
            case clientClosed = "client closed"
            case server = "server error"
            case invalidParameter = "invalid parameter"
            case invalidRequest = "invalid request"
            case unexpectedResult = "unexpected result"
            case invalidMigration = "invalid migration"
        }

        fileprivate let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// No connection could be made (refused, unreachable, authentication refused, the
        /// server starting up or shutting down). `sqlState` is `08001`. Transient: a wrong
        /// password is a configuration error, but events wait for an operator rather than
        /// being dead-lettered.
        public static let connectionFailed = Code(.connectionFailed)
        /// An established connection broke (server restart, network, `pg_terminate_backend`).
        /// `sqlState` is the server's when it sent one, else `08006`. Transient; the
        /// statement may or may not have been applied.
        public static let connectionLost = Code(.connectionLost)
        /// The connection string cannot be parsed. Transient, like `connectionFailed`, so
        /// that work waits for the operator to fix the configuration.
        public static let misconfigured = Code(.misconfigured)
        /// The client was closed (Herald is shutting down). Transient: the next run redoes
        /// the work.
        public static let clientClosed = Code(.clientClosed)
        /// The server refused the statement; `sqlState` says why and decides `isTransient`.
        public static let server = Code(.server)
        /// A parameter PostgreSQL cannot receive (a NUL byte in text: `sqlState` `22021`).
        /// Permanent.
        public static let invalidParameter = Code(.invalidParameter)
        /// The caller used the API wrongly (a transaction inside a transaction, too many
        /// parameters). Permanent.
        public static let invalidRequest = Code(.invalidRequest)
        /// The server answered in a way Herald cannot use (a `COPY` started). Permanent.
        public static let unexpectedResult = Code(.unexpectedResult)
        /// A migration list or schema name the migrator refuses. Permanent.
        public static let invalidMigration = Code(.invalidMigration)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    /// The SQLSTATE (`23505`), from the server, or `08001`/`08006` for connection failures
    /// detected by the client, or `22021` for a NUL byte in a parameter; nil for errors that
    /// have none (a closed client, an invalid migration).
    public let sqlState: String?
    public let isTransient: Bool
    /// A text safe to log: a fixed explanation, a libpq message with the password removed, or
    /// the server's primary message (redacted for class 22).
    public let summary: String
    /// The constraint a class 23 error names (`processed_events_pkey`), when the server
    /// reported one.
    public let constraint: String?
    /// Text that may quote values (`DETAIL`, `HINT`, the unredacted message). Only in
    /// `debugDescription`.
    let detail: String?
    public let file: String
    public let line: UInt

    public var description: String {
        var text = "PostgreSQL \(code)"
        if let sqlState { text += " (\(sqlState))" }
        if !summary.isEmpty { text += ": \(summary)" }
        return text
    }

    public var debugDescription: String {
        var text = description
        if let detail, !detail.isEmpty { text += " [\(detail)]" }
        return text + " at \(file):\(line)"
    }

    init(
        _ code: Code, summary: String, sqlState: String? = nil, constraint: String? = nil, detail: String? = nil,
        file: String, line: UInt
    ) {
        self.code = code
        self.summary = summary
        self.sqlState = sqlState
        self.constraint = constraint
        self.detail = detail
        self.file = file
        self.line = line
        switch code.backing {
        case .connectionFailed, .connectionLost, .misconfigured, .clientClosed: self.isTransient = true
        case .server: self.isTransient = sqlState.map(Self.isTransient(sqlState:)) ?? false
        case .invalidParameter, .invalidRequest, .unexpectedResult, .invalidMigration: self.isTransient = false
        }
    }

    /// Whether a server error with this SQLSTATE may succeed when tried again, because it
    /// describes a state of the server that ends (a restart, a failover, an operator's fix),
    /// not the statement:
    /// - connection exceptions (08), insufficient resources (53), serialization failure
    ///   (40001), deadlock (40P01), lock not available (55P03), object in use (55006), query
    ///   canceled, which is how a statement timeout ends (57014), shutdown, start-up and
    ///   dropped database (57P01…57P05);
    /// - a read-only transaction (25006: the connection landed on a standby during a
    ///   failover; the connection is replaced), any other invalid transaction state (25);
    /// - permission revoked (42501), a table or schema missing mid-migration (42P01, 3F000),
    ///   the database missing (3D000), system errors (58), configuration file errors (F0),
    ///   internal errors (XX), snapshot too old (72000).
    ///
    /// Everything else is permanent: data (22) and integrity (23) errors, which the same
    /// values raise again, and syntax or other statement errors (42…), which are bugs.
    /// Permanent never means an event is dead-lettered: only `isCausedByValues` errors of
    /// statements carrying an event's values may (see `EventContentError`).
    public static func isTransient(sqlState: String) -> Bool {
        switch sqlState {
        case "40001", "40P01", "55P03", "55006", "57014", "42501", "42P01", "3F000", "3D000", "72000": return true
        default:
            let transientClasses = ["08", "53", "25", "58", "F0", "XX"]
            return transientClasses.contains { sqlState.hasPrefix($0) } || sqlState.hasPrefix("57P")
        }
    }

    /// True for errors that the values a statement carried caused: data exceptions (class 22:
    /// a value PostgreSQL cannot store, such as a NUL byte or an out-of-range time) and the
    /// integrity errors a value alone causes (a NOT NULL or CHECK rule, 23502 and 23514).
    /// Unique and foreign-key violations (23505, 23503) depend on other rows, so they are not.
    public var isCausedByValues: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState == "23502" || sqlState == "23514"
    }
}

// MARK: - Factories

extension PostgresError {
    static func make(
        _ code: Code, _ summary: String, sqlState: String? = nil, detail: String? = nil, file: String = #fileID,
        line: UInt = #line
    ) -> PostgresError {
        PostgresError(code, summary: summary, sqlState: sqlState, detail: detail, file: file, line: line)
    }

    /// An error the server reported for a statement.
    static func server(
        sqlState: String, message: String, detail: String?, hint: String?, constraint: String?,
        file: String = #fileID, line: UInt = #line
    ) -> PostgresError {
        let summary = sqlState.hasPrefix("22") ? redactingQuotes(message) : message
        var extra: [String] = []
        if summary != message { extra.append("message: \(message)") }
        if let detail, !detail.isEmpty { extra.append("detail: \(detail)") }
        if let hint, !hint.isEmpty { extra.append("hint: \(hint)") }
        return PostgresError(
            .server, summary: summary, sqlState: sqlState, constraint: constraint,
            detail: extra.isEmpty ? nil : extra.joined(separator: "; "), file: file, line: line)
    }

    static func clientClosed(file: String = #fileID, line: UInt = #line) -> PostgresError {
        make(.clientClosed, "the PostgreSQL client is closed", file: file, line: line)
    }

    /// Replaces the contents of every double-quoted part of `text` with `…`, and drops what
    /// follows `: 0x` (the bytes of an invalid encoding), keeping the sentence readable.
    static func redactingQuotes(_ text: String) -> String {
        var result = ""
        var inQuotes = false
        for character in text {
            if character == "\"" {
                if !inQuotes { result += "\"…\"" }
                inQuotes.toggle()
            } else if !inQuotes {
                result.append(character)
            }
        }
        if let bytes = result.range(of: ": 0x") { result = String(result[..<bytes.lowerBound]) }
        return result
    }

    /// A libpq message made fit for `description`: one line, the password (when known)
    /// replaced with `***`.
    static func cleaned(_ message: String, redacting secrets: [String]) -> String {
        var text = message
        for secret in secrets where !secret.isEmpty {
            text = text.replacingOccurrences(of: secret, with: "***")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.filter { !$0.isEmpty }.joined(separator: "; ")
    }
}
