import CLibpq
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One blocking libpq connection (`PGconn`). Every method blocks the calling thread on the
/// network, so a connection lives on, and is only used from, the dedicated thread of its pool
/// slot: it is handed to the bodies of `PostgresClient.withConnection` and
/// `PostgresClient.transaction` and must not escape them. It is deliberately not `Sendable`.
///
/// Statements go through `PQexecParams` with text-format parameters and results: values
/// never become SQL text. A query (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`) is
/// prepared the first time this connection runs it (`PQprepare`) and only bound and executed
/// after that (`PQexecPrepared`): PostgreSQL then parses, analyzes and plans it once per
/// session instead of on every call (measured: about 40% of PostgreSQL's CPU on the mixed
/// workload went to that).
public final class PostgresConnection {
    /// A statement prepared on this session: its SQL and its parameters' types.
    private struct PreparedKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    /// At most this many statements are prepared per session; Herald's statements are a fixed
    /// set (their texts vary only with the configured schema), so this is only a bound.
    static let maxPreparedStatements = 256
    /// The `PGconn`; only for this type's extensions.
    let connection: OpaquePointer
    private let notices: Unmanaged<NoticeSink>
    private let secrets: [String]
    /// Set once the connection must not be used again; the pool then drops it.
    private(set) var isBroken = false
    private let preparesStatements: Bool
    /// The statements prepared on this session, by name.
    private var prepared: [PreparedKey: String] = [:]
    /// Names are never reused, even for a statement dropped from `prepared`.
    private var preparedCount = 0

    private init(connection: OpaquePointer, notices: Unmanaged<NoticeSink>, secrets: [String], preparesStatements: Bool) {
        self.connection = connection
        self.notices = notices
        self.secrets = secrets
        self.preparesStatements = preparesStatements
    }

    /// How many statements this session has prepared (tests).
    var preparedStatementCount: Int { prepared.count }

    deinit {
        PQfinish(connection)
        notices.release()
    }

    /// Connects with `settings` (blocking, at most the connect timeout per address).
    static func open(_ settings: PostgresConnectionSettings, logger: Logger) throws(PostgresError) -> PostgresConnection {
        if let invalid = settings.invalid { throw invalid }
        let keywords = settings.parameters.map { strdup($0.keyword) } + [nil]
        let values = settings.parameters.map { strdup($0.value) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        // Blocking: `PQconnectdbParams` resolves the host, connects, negotiates TLS and
        // authenticates, bounded by `connect_timeout`.
        let pointer = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
        guard let pointer else {
            throw .make(.connectionFailed, "libpq could not allocate a connection", sqlState: "08001")
        }
        guard PQstatus(pointer) == CONNECTION_OK else {
            let message = PostgresError.cleaned(String(cString: PQerrorMessage(pointer)), redacting: settings.secrets)
            PQfinish(pointer)
            throw .make(.connectionFailed, message.isEmpty ? "cannot connect" : message, sqlState: "08001")
        }
        // Without a receiver libpq prints notices ("schema already exists, skipping") to
        // stderr.
        let notices = Unmanaged.passRetained(NoticeSink(logger: logger))
        PQsetNoticeReceiver(pointer, noticeReceiver, notices.toOpaque())
        return PostgresConnection(
            connection: pointer, notices: notices, secrets: settings.secrets, preparesStatements: settings.preparesStatements)
    }

    /// Runs one statement with its parameters (`$1`, `$2`, …) and returns its rows.
    ///
    /// - Throws: `PostgresError`: `.invalidParameter` (`22021`, before anything is sent) for a
    ///   NUL byte in the SQL or in a text parameter; `.server` with the SQLSTATE when
    ///   PostgreSQL refused the statement; `.connectionLost` when the connection broke (it is
    ///   then replaced on the next use of its pool slot).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresResult {
        try checkUsable()
        if sql.utf8.contains(0) {
            throw PostgresError.make(.invalidParameter, "the SQL text contains a NUL byte", sqlState: "22021")
        }
        if let index = parameters.firstIndex(where: \.containsNUL) {
            throw PostgresError.make(
                .invalidParameter, "parameter $\(index + 1) contains a NUL byte, which PostgreSQL text cannot hold",
                sqlState: "22021")
        }
        guard parameters.count <= Int(UInt16.max) else {
            throw PostgresError.make(.invalidRequest, "a statement takes at most 65535 parameters")
        }
        let types = parameters.map(\.typeOID)
        let name = try preparedName(sql, types: types)
        let values = parameters.map { $0.textForm.map { strdup($0) } ?? nil }
        defer { values.forEach { free($0) } }
        let result = values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
            // Blocking: both send the statement and wait for its result, bounded by the
            // session's `statement_timeout`.
            if let name {
                PQexecPrepared(connection, name, Int32(parameters.count), valueBuffer.baseAddress, nil, nil, 0)
            } else {
                PQexecParams(connection, sql, Int32(parameters.count), types, valueBuffer.baseAddress, nil, nil, 0)
            }
        }
        do {
            return try consume(result)
        } catch let error as PostgresError where name != nil && error.sqlState == "0A000" {
            // "cached plan must not change result type": a table changed under a prepared
            // query. The next call prepares it again.
            prepared[PreparedKey(sql: sql, types: types)] = nil
            throw error
        }
    }

    /// The name of `sql` prepared on this session, preparing it now if it is a query seen for
    /// the first time; nil when it is run unprepared (turned off, a utility statement such as
    /// `BEGIN` or DDL, or the session already holds `maxPreparedStatements`). A statement
    /// PostgreSQL refuses to prepare throws as running it would have.
    private func preparedName(_ sql: String, types: [UInt32]) throws -> String? {
        guard preparesStatements else { return nil }
        let key = PreparedKey(sql: sql, types: types)
        if let name = prepared[key] { return name }
        guard Self.isQuery(sql), prepared.count < Self.maxPreparedStatements else { return nil }
        preparedCount += 1
        let name = "herald_\(preparedCount)"
        // Blocking: `PQprepare` sends the statement and waits for PostgreSQL's answer.
        _ = try consume(PQprepare(connection, name, sql, Int32(types.count), types))
        prepared[key] = name
        return name
    }

    /// True for SQL that starts with a query keyword: what is worth preparing.
    static func isQuery(_ sql: String) -> Bool {
        let start = sql.utf8.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }.prefix(7)
        let word = String(decoding: start, as: UTF8.self).uppercased()
        return ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains { word.hasPrefix($0) }
    }

    /// `BEGIN`; `body`; `COMMIT`, or `ROLLBACK` when `body` throws (the error is rethrown).
    /// Not nestable.
    ///
    /// When `body` catches a statement's error and returns normally, PostgreSQL has already
    /// aborted the transaction: this throws `.invalidRequest` with SQLSTATE `25P02` instead of
    /// committing.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        guard PQtransactionStatus(connection) == PQTRANS_IDLE else {
            throw PostgresError.make(.invalidRequest, "a transaction is already open on this connection", sqlState: "25001")
        }
        try execute("BEGIN")
        do {
            let value = try body(self)
            if PQtransactionStatus(connection) == PQTRANS_INERROR {
                throw PostgresError.make(
                    .invalidRequest, "a statement of the transaction failed and its error was caught; rolled back",
                    sqlState: "25P02")
            }
            try execute("COMMIT")
            return value
        } catch {
            rollBackIfOpen()
            throw error
        }
    }

    // MARK: - Internal

    /// Runs SQL that may hold several statements, without parameters (`PQexec`, the simple
    /// query protocol). Only for migrations: static SQL shipped in the binary.
    func executeScript(_ sql: String) throws {
        try checkUsable()
        if sql.utf8.contains(0) {
            throw PostgresError.make(.invalidParameter, "the SQL text contains a NUL byte", sqlState: "22021")
        }
        // Blocking: `PQexec` runs every statement and waits for the last result.
        _ = try consume(PQexec(connection, sql))
    }

    /// Ends whatever a body left open: rolls back an open transaction, drops the connection
    /// when it is in a state that cannot be cleaned up.
    func reset() {
        if isBroken { return }
        switch PQtransactionStatus(connection) {
        case PQTRANS_IDLE: return
        case PQTRANS_INTRANS, PQTRANS_INERROR: rollBackIfOpen()
        default: isBroken = true
        }
    }

    /// Marks the connection as not to be used again (its session, and any session lock, end
    /// when it is dropped).
    func discard() {
        isBroken = true
    }

    /// False when the connection must not be used again: libpq recorded a failure, or the
    /// server closed it while it was idle (a restart, `pg_terminate_backend`, an idle
    /// timeout). Anything the server sent meanwhile is read without blocking.
    var isReusable: Bool {
        guard !isBroken, PQstatus(connection) == CONNECTION_OK else { return false }
        let socket = PQsocket(connection)
        guard socket >= 0 else { return false }
        for _ in 0..<4 {
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, 0) == 0 { break }
            // Reads what is available (a notice, a parameter change, the server's farewell
            // and end of file) without blocking.
            if PQconsumeInput(connection) == 0 { return false }
        }
        return PQstatus(connection) == CONNECTION_OK
    }

    // MARK: - Private

    private func checkUsable() throws(PostgresError) {
        if isBroken { throw .make(.connectionLost, "the connection broke earlier in this call", sqlState: "08006") }
    }

    private func rollBackIfOpen() {
        guard !isBroken else { return }
        switch PQtransactionStatus(connection) {
        case PQTRANS_INTRANS, PQTRANS_INERROR:
            do {
                try execute("ROLLBACK")
            } catch {
                isBroken = true
            }
        case PQTRANS_IDLE: return
        default: isBroken = true
        }
    }

    /// Turns a `PGresult` into rows or a thrown error, and frees it.
    private func consume(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else {
            isBroken = true
            throw lostError()
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.read(result)
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            throw serverError(result)
        default:
            // A COPY in either direction: the connection waits for data Herald never sends.
            isBroken = true
            throw PostgresError.make(.unexpectedResult, "the statement started a COPY, which this client does not support")
        }
    }

    private func serverError(_ result: OpaquePointer) -> PostgresError {
        let sqlState = Self.field(result, .sqlState)
        let severity = Self.field(result, .severity)
        if sqlState == nil || sqlState!.hasPrefix("08") || severity == "FATAL" || severity == "PANIC"
            || PQstatus(connection) != CONNECTION_OK
        {
            isBroken = true
        }
        guard let sqlState else {
            // Generated by libpq itself ("server closed the connection unexpectedly"): the
            // connection is gone.
            let message = Self.field(result, .primaryMessage) ?? String(cString: PQresultErrorMessage(result))
            return lostError(message)
        }
        let message = Self.field(result, .primaryMessage) ?? "no message"
        if isBroken {
            return PostgresError(
                .connectionLost, summary: PostgresError.cleaned(message, redacting: secrets), sqlState: sqlState,
                file: #fileID, line: #line)
        }
        // A read-only transaction on a connection that was writable: it landed on a standby
        // (a failover, or a load balancer's choice). Only a new connection can reach the new
        // primary, so this one is dropped after the call.
        if sqlState == "25006" { isBroken = true }
        return .server(
            sqlState: sqlState, message: message, detail: Self.field(result, .detail), hint: Self.field(result, .hint),
            constraint: Self.field(result, .constraint))
    }

    private func lostError(_ message: String? = nil) -> PostgresError {
        let text = message ?? String(cString: PQerrorMessage(connection))
        let cleaned = PostgresError.cleaned(text, redacting: secrets)
        return .make(.connectionLost, cleaned.isEmpty ? "the connection to the server broke" : cleaned, sqlState: "08006")
    }

    private static func read(_ result: OpaquePointer) -> PostgresResult {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) != 0 {
                    values.append(nil)
                } else {
                    let bytes = UnsafeRawBufferPointer(
                        start: PQgetvalue(result, row, column), count: Int(PQgetlength(result, row, column)))
                    values.append(String(decoding: bytes, as: UTF8.self))
                }
            }
            rows.append(values)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresResult(
            rows: rows, columns: columns, affectedRows: affected, commandTag: String(cString: PQcmdStatus(result)))
    }

    /// The error fields Herald reads (libpq's `PG_DIAG_*` are character macros Swift cannot
    /// import).
    private enum Field: Int32 {
        case severity = 86  // 'V', never localized
        case sqlState = 67  // 'C'
        case primaryMessage = 77  // 'M'
        case detail = 68  // 'D'
        case hint = 72  // 'H'
        case constraint = 110  // 'n'
    }

    private static func field(_ result: OpaquePointer, _ field: Field) -> String? {
        PQresultErrorField(result, field.rawValue).map { String(cString: $0) }
    }
}

/// Receives the server's notices and warnings for one connection and logs them at debug
/// level (only the severity, SQLSTATE and primary message).
private final class NoticeSink {
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }
}

private func noticeReceiver(_ context: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let context, let result else { return }
    let sink = Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue()
    func field(_ code: Int32) -> String { PQresultErrorField(result, code).map { String(cString: $0) } ?? "" }
    sink.logger.debug(
        "PostgreSQL \(field(86).lowercased()): \(field(77))", metadata: [PostgresLogKey.sqlState: "\(field(67))"])
}
