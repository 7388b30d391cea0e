import HeraldBlocking

/// Each pooled Redis connection lives on its own `BlockingThread`.
typealias RedisConnectionThread = BlockingThread<RedisConnection>
typealias RedisConnectionPool = BlockingThreadPool<RedisConnection>

extension BlockingThreadPool where Connection == RedisConnection {
    convenience init(size: Int, name: String) {
        self.init(size: size, name: name) { RedisError.make(.clientClosed, "the Redis client is closed") }
    }
}

extension BlockingThread where Connection == RedisConnection {
    /// Runs `body` on the thread with its connection.
    func run<T: Sendable>(
        _ body: @escaping @Sendable (inout RedisConnection?) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        try await run(body) { RedisError.make(.clientClosed, "the Redis client is closed") }
    }
}
