/// A transaction that stays open across suspension points: `BEGIN` on a pooled connection,
/// any number of `execute` steps with other async work between them (waiting for a broker's
/// acknowledgement), then `COMMIT`. The connection, and its thread, stay reserved for the
/// transaction; each step runs on that dedicated thread like `PostgresClient.withConnection`.
///
/// Obtained from `PostgresClient.transaction(spanning:)`; must not escape its body.
public final class PostgresTransaction: Sendable {
    private let thread: PostgresConnectionThread
    private let identity: ObjectIdentifier

    fileprivate init(thread: PostgresConnectionThread, identity: ObjectIdentifier) {
        self.thread = thread
        self.identity = identity
    }

    /// Runs `body` inside the transaction, on the connection's thread.
    ///
    /// - Throws: whatever `body` throws; `PostgresError` `.connectionLost` when the
    ///   connection broke earlier (the transaction is then gone).
    @discardableResult
    public func execute<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let identity = self.identity
        return try await thread.run { slot in
            guard let connection = slot, ObjectIdentifier(connection) == identity, !connection.isBroken,
                connection.transactionIsOpen
            else {
                throw PostgresError.make(.connectionLost, "the transaction's connection broke", sqlState: "08006")
            }
            return try body(connection)
        }
    }

    fileprivate func commit() async throws {
        try await execute { connection in
            if connection.transactionFailed {
                throw PostgresError.make(
                    .invalidRequest, "a statement of the transaction failed and its error was caught; rolled back",
                    sqlState: "25P02")
            }
            try connection.execute("COMMIT")
        }
    }

    /// Rolls back whatever is open and drops a broken connection from its slot.
    fileprivate func finish() async {
        _ = try? await thread.run { slot in
            guard let connection = slot else { return }
            connection.reset()
            if connection.isBroken { slot = nil }
        }
    }
}

extension PostgresClient {
    /// `BEGIN`; `body`; `COMMIT` — `ROLLBACK` when `body` throws (its error is rethrown) —
    /// where `body` may await other work between its statements. The connection stays
    /// reserved (and its transaction open) until `body` returns, so keep it short.
    ///
    /// A failed `COMMIT` may or may not have been applied when the connection was lost.
    @discardableResult
    public func transaction<T: Sendable>(spanning body: (PostgresTransaction) async throws -> T) async throws -> T {
        let connector = self.connector
        return try await pool.withThread { thread in
            let identity = try await thread.run { slot -> ObjectIdentifier in
                let connection = try connector.usableConnection(&slot)
                do {
                    try connection.execute("BEGIN")
                } catch {
                    if connection.isBroken { slot = nil }
                    throw error
                }
                return ObjectIdentifier(connection)
            }
            let transaction = PostgresTransaction(thread: thread, identity: identity)
            do {
                let value = try await body(transaction)
                try await transaction.commit()
                await transaction.finish()
                return value
            } catch {
                await transaction.finish()
                throw error
            }
        }
    }
}
