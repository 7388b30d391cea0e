/// The metadata keys HeraldRedis adds to log records.
enum RedisLogKey {
    /// The endpoint without credentials (`RedisEndpoint.description`).
    static let endpoint = "redis_endpoint"
    static let error = "error"
    /// Marks whose timestamp moved forward in one `advance` call.
    static let advanced = "marks_advanced"
    /// Marks left alone because Redis already held a newer or equal timestamp.
    static let unchanged = "marks_unchanged"
}
