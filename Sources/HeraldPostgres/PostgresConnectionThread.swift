import HeraldBlocking

/// Each pooled PostgreSQL connection lives on its own `BlockingThread`.
typealias PostgresConnectionThread = BlockingThread<PostgresConnection>
typealias PostgresConnectionPool = BlockingThreadPool<PostgresConnection>

extension BlockingThreadPool where Connection == PostgresConnection {
    convenience init(size: Int, name: String) {
        self.init(size: size, name: name) { PostgresError.clientClosed() }
    }
}

extension BlockingThread where Connection == PostgresConnection {
    /// Runs `body` on the thread with its connection.
    func run<T: Sendable>(_ body: @escaping @Sendable (inout PostgresConnection?) throws -> T) async throws -> T {
        try await run(body) { PostgresError.clientClosed() as any Error }
    }
}
