/// How Herald reaches Redis and how long its revocation marks live (`HERALD_REDIS_*`,
/// `HERALD_ROLE_INVALIDATION_TTL`, `HERALD_USER_REVOCATION_TTL`): the one settings type of the
/// Redis adapter, for `RedisClient` and `RedisRevocationStore`.
public struct RedisSettings: Sendable {
    public var endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379))
    public var connectTimeout: Duration = .seconds(2)
    public var commandTimeout: Duration = .seconds(5)
    public var poolSize = 4
    /// `invalid_role: …` keys live this long.
    public var roleInvalidationTTL: Duration = .seconds(8 * 86_400)
    /// `revoked_user: …` keys live this long.
    public var userRevocationTTL: Duration = .seconds(7 * 86_400)

    public init() {}
}
