import HeraldCore
import HeraldRedis
import Logging
import Testing

@Suite("RedisRevocationStore against a real redis-server", .timeLimit(.minutes(10)))
struct RedisRevocationStoreTests {
    static let day = 86_400

    /// A store with the default TTLs (8 days for roles, 7 for users).
    private func makeStore(_ redis: RedisServer, logger: Logger = RedisTests.quietLogger) throws -> (RedisRevocationStore, RedisClient) {
        let client = try RedisTests.client(redis.url)
        var settings = RedisSettings()
        settings.endpoint = try RedisEndpoint(url: redis.url)
        return (RedisRevocationStore(client: client, settings: settings, logger: logger), client)
    }

    private func role(_ name: String, _ asOf: Int64) throws -> RevocationMark {
        RevocationMark(subject: .role(try RoleName(name)), asOf: asOf)
    }

    private func user(_ id: String, _ asOf: Int64) throws -> RevocationMark {
        RevocationMark(subject: .user(try UserID(id)), asOf: asOf)
    }

    private func value(_ redis: RedisServer, _ key: String) throws -> String? {
        try redis.probe(["GET", key]).text
    }

    private func ttl(_ redis: RedisServer, _ key: String) throws -> Int {
        try redis.probe(["TTL", key]).integer ?? -99
    }

    @Test("role and user marks: the API's key names, epoch seconds as decimal text, 8 and 7 day TTLs")
    func keysValuesAndTTLs() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }

        try await store.advance([try role("admin", 1_700_000_000), try user("5f0c7a1e-1b2c-4d3e-8f90-0a1b2c3d4e5f", 1_700_000_123)])

        let keys = try redis.probe(["KEYS", "*"]).bulkStrings.map { String(decoding: $0, as: UTF8.self) }.sorted()
        #expect(keys == ["invalid_role: admin", "revoked_user: 5f0c7a1e-1b2c-4d3e-8f90-0a1b2c3d4e5f"])
        #expect(try value(redis, "invalid_role: admin") == "1700000000")
        #expect(try value(redis, "revoked_user: 5f0c7a1e-1b2c-4d3e-8f90-0a1b2c3d4e5f") == "1700000123")
        let roleTTL = try ttl(redis, "invalid_role: admin")
        let userTTL = try ttl(redis, "revoked_user: 5f0c7a1e-1b2c-4d3e-8f90-0a1b2c3d4e5f")
        #expect((8 * Self.day - 10)...(8 * Self.day) ~= roleTTL, "role TTL was \(roleTTL)")
        #expect((7 * Self.day - 10)...(7 * Self.day) ~= userTTL, "user TTL was \(userTTL)")
    }

    @Test("configured TTLs are used, rounded up to whole seconds")
    func configuredTTLs() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url)
        defer { client.close() }
        let store = RedisRevocationStore(
            client: client, roleInvalidationTTL: .seconds(90), userRevocationTTL: .milliseconds(30_500),
            logger: RedisTests.quietLogger)

        try await store.advance([try role("editor", 100), try user("u-1", 100)])

        #expect((80...90) ~= (try ttl(redis, "invalid_role: editor")))
        #expect((21...31) ~= (try ttl(redis, "revoked_user: u-1")))
    }

    @Test("timestamps only move forward, across calls and within one call")
    func forwardOnly() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }

        try await store.advance([try role("admin", 2_000)])
        try await store.advance([try role("admin", 1_000)])
        #expect(try value(redis, "invalid_role: admin") == "2000")

        try await store.advance([try user("u-1", 5_000), try user("u-1", 4_000)])
        #expect(try value(redis, "revoked_user: u-1") == "5000")

        try await store.advance([try role("admin", 3_000)])
        #expect(try value(redis, "invalid_role: admin") == "3000")
    }

    @Test("an older or equal mark leaves the key and its TTL alone")
    func olderMarkKeepsTTL() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }
        _ = try redis.probe(["SET", "invalid_role: admin", "9000", "EX", "100"])

        try await store.advance([try role("admin", 9_000), try role("admin", 8_999)])

        #expect(try value(redis, "invalid_role: admin") == "9000")
        #expect((90...100) ~= (try ttl(redis, "invalid_role: admin")))
    }

    @Test("duplicate marks are idempotent")
    func duplicates() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }
        let mark = try user("u-7", 1_234)

        try await store.advance([mark, mark, mark])
        try await store.advance([mark])

        #expect(try value(redis, "revoked_user: u-7") == "1234")
        #expect(try redis.probe(["DBSIZE"]) == .integer(1))
    }

    @Test("a thousand marks in one call: one SCRIPT LOAD, then EVALSHA for every mark")
    func manyMarks() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }
        let first = try (0..<1_000).map { try role("role-\($0)", Int64(10_000 + $0)) }
        let second = try (0..<1_000).map { try user("user-\($0)", Int64(20_000 + $0)) }

        try await store.advance(first)
        #expect(try RedisTests.calls(redis, command: "script|load") == 1)
        #expect(try RedisTests.calls(redis, command: "eval") == 1_000)
        try await store.advance(second)

        #expect(try RedisTests.calls(redis, command: "evalsha") == 1_000)
        #expect(try RedisTests.calls(redis, command: "script|load") == 1)
        #expect(try redis.probe(["DBSIZE"]) == .integer(2_000))
        #expect(try value(redis, "invalid_role: role-0") == "10000")
        #expect(try value(redis, "invalid_role: role-999") == "10999")
        #expect(try value(redis, "revoked_user: user-500") == "20500")
    }

    @Test("role and user names are binary-safe: spaces, quotes, format directives, unicode")
    func binarySafeNames() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }
        let roles = ["role with spaces", "quote\"d 'role'", "%s%n%d%x%%", "ünïcødé-角色-🚀", "*1 $4 EVAL", "a\\b"]
        let users = ["%s", "user \"7\""]

        try await store.advance(try roles.map { try role($0, 42) } + users.map { try user($0, 43) })

        let expected = Set(roles.map { Array("invalid_role: \($0)".utf8) } + users.map { Array("revoked_user: \($0)".utf8) })
        let keys = Set(try redis.probe(["KEYS", "*"]).bulkStrings)
        #expect(keys == expected)
        for name in roles {
            #expect(try redis.probe([Array("GET".utf8), Array("invalid_role: \(name)".utf8)]) == .bulk(Array("42".utf8)))
        }
        #expect(RedisRevocationStore.key(for: .role(try RoleName("ünï"))) == Array("invalid_role: ünï".utf8))
    }

    @Test("a value that is not a decimal integer is overwritten, whatever its type")
    func nonNumericValues() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }
        _ = try redis.probe(["SET", "invalid_role: garbage", "not a number"])
        _ = try redis.probe(["SET", "invalid_role: exponent", "1e12"])
        _ = try redis.probe(["SET", "invalid_role: hex", "0xFFFFFFFF"])
        _ = try redis.probe(["RPUSH", "invalid_role: list", "99999999999"])

        try await store.advance(try ["garbage", "exponent", "hex", "list"].map { try role($0, 500) })

        for name in ["garbage", "exponent", "hex", "list"] {
            #expect(try value(redis, "invalid_role: \(name)") == "500", "\(name) was not replaced")
            #expect(try ttl(redis, "invalid_role: \(name)") > 0)
        }
    }

    @Test("Redis stopped: a transient error; restarted: the next call reconnects and reloads the script")
    func survivesRestart() async throws {
        let redis = try await RedisServer.start()
        let logs = RedisLogRecorder()
        let (store, client) = try makeStore(redis, logger: logs.logger)
        defer { client.close() }
        try await store.advance([try role("admin", 100)])
        try await store.advance([try role("admin", 150)])

        try await redis.stop()
        let error = try #require(await RedisTests.redisError { try await store.advance([try role("admin", 200)]) })
        #expect(error.isTransient)

        try await redis.start()
        try await store.advance([try role("admin", 300), try user("u-1", 300)])

        #expect(try value(redis, "invalid_role: admin") == "300")
        #expect(try value(redis, "revoked_user: u-1") == "300")
        #expect(try RedisTests.info(redis, section: "errorstats", field: "errorstat_NOSCRIPT") == "count=2")
        #expect(try RedisTests.calls(redis, command: "eval") == 2)
        #expect(logs.all.contains { $0.level == .notice && $0.text.contains("lost the revocation script") })

        // The EVAL fallback cached the script again: the next call needs no fallback.
        try await store.advance([try role("admin", 400)])
        #expect(try RedisTests.calls(redis, command: "evalsha") == 3)
        #expect(try RedisTests.info(redis, section: "errorstats", field: "errorstat_NOSCRIPT") == "count=2")
        #expect(try value(redis, "invalid_role: admin") == "400")
    }

    @Test("SCRIPT FLUSH without a restart is handled the same way")
    func scriptFlush() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }
        try await store.advance([try role("admin", 100)])

        _ = try redis.probe(["SCRIPT", "FLUSH"])
        try await store.advance([try role("admin", 200)])

        #expect(try value(redis, "invalid_role: admin") == "200")
        #expect(try RedisTests.info(redis, section: "errorstats", field: "errorstat_NOSCRIPT") == "count=1")
    }

    @Test("a read-only replica refuses the write: a transient error, so events wait")
    func readOnlyReplica() async throws {
        // A replica of a master that does not exist: reads work, writes get READONLY.
        let redis = try await RedisServer.start(RedisServer.Options(arguments: ["--replicaof", "127.0.0.1", "9"]))
        let (store, client) = try makeStore(redis)
        defer { client.close() }

        let error = try #require(await RedisTests.redisError { try await store.advance([try role("admin", 100)]) })

        #expect(error.code == .serverUnavailable)
        #expect(error.serverCode == "READONLY")
        #expect(error.isTransient)
        #expect(try redis.probe(["DBSIZE"]) == .integer(0))
    }

    @Test("no marks: no round trip")
    func empty() async throws {
        let redis = try await RedisServer.start()
        let (store, client) = try makeStore(redis)
        defer { client.close() }

        try await store.advance([])

        #expect(try RedisTests.connectedClients(redis) == 0)
    }
}
