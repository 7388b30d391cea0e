import HeraldCore
import HeraldRedis
import Logging
import Testing

@Suite("RedisClient against a real redis-server", .timeLimit(.minutes(10)))
struct RedisClientTests {
    @Test("binary values and keys survive a round trip unchanged")
    func binaryRoundTrip() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url)
        defer { client.close() }
        let key: [UInt8] = Array("key %s %n \"q\" ".utf8) + [0, 13, 10]
        let value: [UInt8] = [0, 1, 2, 13, 10, 255] + Array("%s%d ünï".utf8)

        try await client.ping()
        #expect(try await client.command([Array("SET".utf8), key, value]) == .status("OK"))
        #expect(try await client.command([Array("GET".utf8), key]) == .bytes(value))
        #expect(try redis.probe([Array("GET".utf8), key]) == .bulk(value))
        #expect(try await client.command(["GET", "missing"]) == .null)
        #expect(try await client.command([Array("SET".utf8), Array("empty".utf8), []]) == .status("OK"))
        #expect(try redis.probe(["STRLEN", "empty"]) == .integer(0))
    }

    @Test("a pipeline returns one reply per command, in order, error replies in place")
    func pipelineOrder() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url)
        defer { client.close() }
        let commands: [[String]] = [
            ["SET", "k", "1"], ["LPUSH", "k", "x"], ["INCR", "k"], ["GET", "k"], ["RPUSH", "l", "a", "b"], ["LRANGE", "l", "0", "-1"],
        ]

        let replies = try await client.pipeline(commands.map { $0.map { Array($0.utf8) } })

        #expect(replies.count == 6)
        #expect(replies[0] == .status("OK"))
        #expect(replies[1].errorMessage?.hasPrefix("WRONGTYPE") == true)
        #expect(replies[2] == .integer(2))
        #expect(replies[3] == .bytes(Array("2".utf8)))
        #expect(replies[4] == .integer(2))
        #expect(replies[5] == .array([.bytes(Array("a".utf8)), .bytes(Array("b".utf8))]))
        // An error reply does not break the connection.
        #expect(try await client.command(["GET", "k"]).string == "2")
        #expect(try RedisTests.connectedClients(redis) == 1)
    }

    @Test("an error reply throws a classified RedisError that does not quote the arguments")
    func errorReply() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url)
        defer { client.close() }
        _ = try await client.command(["SET", "k", "v"])

        let wrongType = await RedisTests.redisError { _ = try await client.command(["LPUSH", "k", "x"]) }
        #expect(wrongType?.code == .commandFailed)
        #expect(wrongType?.serverCode == "WRONGTYPE")
        #expect(wrongType?.isTransient == true, "never an event's fault: events wait")

        let secret = "tok_3xAmpl3-secret-value"
        let unknown = await RedisTests.redisError { _ = try await client.command(["NOSUCHCOMMAND", secret]) }
        let error = try #require(unknown)
        #expect(error.code == .commandFailed)
        #expect(!error.description.contains(secret))
        #expect(!String(describing: error).contains(secret))
        #expect(error.debugDescription.contains(secret), "the server's message stays available for debugging")
    }

    @Test("AUTH with a password and SELECT: the key lands in database 3 only")
    func authAndSelect() async throws {
        let password = "p@ss w:rd/%?#"
        let redis = try await RedisServer.start(RedisServer.Options(password: password))
        let client = try RedisTests.client(redis.url(database: 3))
        defer { client.close() }

        _ = try await client.command(["SET", "only-in-3", "yes"])

        #expect(try redis.probe(["GET", "only-in-3"], database: 3).text == "yes")
        #expect(try redis.probe(["EXISTS", "only-in-3"], database: 0) == .integer(0))
        #expect(try redis.probe(["DBSIZE"], database: 0) == .integer(0))
        #expect(try redis.probe(["DBSIZE"], database: 3) == .integer(1))
    }

    @Test("AUTH with a username (ACL user) and password")
    func authWithUsername() async throws {
        let redis = try await RedisServer.start(RedisServer.Options(password: "admin-pass"))
        _ = try redis.probe(["ACL", "SETUSER", "herald", "on", ">herald-pass", "~*", "+@all"])
        let client = try RedisTests.client("redis://herald:herald-pass@127.0.0.1:\(redis.port)/0")
        defer { client.close() }

        #expect(try await client.command(["ACL", "WHOAMI"]).string == "herald")

        let wrong = try RedisTests.client("redis://herald:admin-pass@127.0.0.1:\(redis.port)/0")
        defer { wrong.close() }
        let error = await RedisTests.redisError { try await wrong.ping() }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.serverCode == "WRONGPASS")
    }

    @Test("a wrong password is a transient, clearly logged error that never shows the password")
    func wrongPassword() async throws {
        let redis = try await RedisServer.start(RedisServer.Options(password: "right-password"))
        let logs = RedisLogRecorder()
        let client = try RedisTests.client(
            "redis://:wrong-password-1234@127.0.0.1:\(redis.port)/0", logger: logs.logger)
        defer { client.close() }

        let error = try #require(await RedisTests.redisError { try await client.ping() })

        #expect(error.code == .authenticationFailed)
        #expect(error.isTransient)
        #expect(!error.description.contains("wrong-password-1234"))
        #expect(!error.debugDescription.contains("wrong-password-1234"))
        #expect(logs.all.contains { $0.level == .error && $0.text.contains("credentials") })
        #expect(!logs.transcript.contains("wrong-password-1234"))

        let noPassword = try RedisTests.client("redis://127.0.0.1:\(redis.port)/0")
        defer { noPassword.close() }
        let unauthenticated = await RedisTests.redisError { try await noPassword.ping() }
        #expect(unauthenticated?.code == .authenticationFailed)
        #expect(unauthenticated?.serverCode == "NOAUTH")
        #expect(unauthenticated?.isTransient == true)
    }

    @Test("a database the server does not have is a transient configuration error")
    func selectOutOfRange() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url(database: 99))
        defer { client.close() }

        let error = await RedisTests.redisError { try await client.ping() }

        #expect(error?.code == .misconfigured)
        #expect(error?.isTransient == true)
    }

    @Test("a unix socket URL reaches the server, database included")
    func unixSocket() async throws {
        let redis = try await RedisServer.start(RedisServer.Options(unixSocket: true))
        let url = try #require(redis.unixSocketURL(database: 2))
        let client = try RedisTests.client(url)
        defer { client.close() }

        _ = try await client.command(["SET", "via-socket", "1"])

        #expect(try redis.probe(["GET", "via-socket"], database: 2).text == "1")
        let clients = try redis.probe(["CLIENT", "LIST"]).text ?? ""
        #expect(clients.contains("/redis.sock"), "the client connected through the socket")
    }

    @Test("connections are opened lazily and never more than the pool size")
    func lazyBoundedPool() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url, poolSize: 3)
        defer { client.close() }
        #expect(try RedisTests.connectedClients(redis) == 0)

        try await client.ping()
        #expect(try RedisTests.connectedClients(redis) == 1)

        // Each BLPOP holds its connection for 100 ms: 12 of them need every slot.
        try await withThrowingTaskGroup(of: RedisReply.self) { group in
            for _ in 0..<12 {
                group.addTask { try await client.command(["BLPOP", "nothing", "0.1"]) }
            }
            for try await reply in group { #expect(reply == .null) }
        }
        #expect(try RedisTests.connectedClients(redis) == 3)
    }

    @Test("a stopped server makes calls fail transiently; after a restart the pool reconnects")
    func survivesRestart() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url, poolSize: 4)
        defer { client.close() }
        try await fillPool(client)
        #expect(try RedisTests.connectedClients(redis) == 4)

        try await redis.stop()
        let error = await RedisTests.redisError { try await client.ping() }
        #expect(error?.isTransient == true)
        #expect(error?.code == .connectionFailed || error?.code == .connectionLost)

        try await redis.start()
        // Every pooled connection died with the old server; none of them may surface.
        try await fillPool(client)
        try await client.ping()
    }

    @Test("a command that outlives the timeout fails transiently and the next one reconnects")
    func commandTimeout() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url, poolSize: 1, commandTimeout: .milliseconds(200))
        defer { client.close() }

        // BLPOP would answer nil after 3 s: only the 200 ms timeout makes it an error.
        let error = await RedisTests.redisError { _ = try await client.command(["BLPOP", "nothing", "3"]) }

        #expect(error?.code == .timeout)
        #expect(error?.isTransient == true)
        try await client.ping()
    }

    @Test("waiting for a busy pool can be cancelled; queued calls run in turn")
    func waitingForASlot() async throws {
        let redis = try await RedisServer.start()
        // No command timeout to race with: the BLPOP below holds the only connection until
        // the test releases it, however slow the machine.
        let client = try RedisTests.client(redis.url, poolSize: 1, commandTimeout: .seconds(3600))
        defer { client.close() }

        let busy = Task { try await client.command(["BLPOP", "release", "0"]) }
        try await TestCluster.eventually("the server sees the BLPOP: the only connection is taken") {
            (try redis.probe(["CLIENT", "LIST"]).text ?? "").contains("cmd=blpop")
        }
        let waiting = Task { try await client.command(["PING"]) }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }

        _ = try redis.probe(["LPUSH", "release", "go"])
        #expect(try await busy.value == .array([.bytes(Array("release".utf8)), .bytes(Array("go".utf8))]))
        let replies = try await withThrowingTaskGroup(of: RedisReply.self, returning: [RedisReply].self) { group in
            for _ in 0..<20 { group.addTask { try await client.command(["PING"]) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies == Array(repeating: .status("PONG"), count: 20))
    }

    @Test(
        "the server dropping the connection in the middle of a write neither kills the process (SIGPIPE) nor the client",
        arguments: [false, true])
    func brokenPipe(unixSocket: Bool) async throws {
        // Redis closes a connection whose bulk string exceeds proto-max-bulk-len as soon as
        // it reads the length, while hiredis is still writing the 8 MiB value. On a unix
        // socket the next write(2) fails with EPIPE and raises SIGPIPE.
        let redis = try await RedisServer.start(
            RedisServer.Options(unixSocket: unixSocket, arguments: ["--proto-max-bulk-len", "1mb"]))
        let client = try RedisTests.client(unixSocket ? try #require(redis.unixSocketURL()) : redis.url, poolSize: 1)
        defer { client.close() }
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 8 << 20)

        let error = await RedisTests.redisError { _ = try await client.command([Array("SET".utf8), Array("big".utf8), big]) }

        #expect(error?.code == .connectionLost)
        #expect(error?.isTransient == true)
        try await client.ping()
    }

    @Test("a closed client refuses calls with a transient error")
    func closed() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url)
        try await client.ping()

        client.close()

        let error = await RedisTests.redisError { try await client.ping() }
        #expect(error?.code == .clientClosed)
        #expect(error?.isTransient == true)
    }

    @Test("a command without arguments is refused before it is sent")
    func emptyCommand() async throws {
        let redis = try await RedisServer.start()
        let client = try RedisTests.client(redis.url)
        defer { client.close() }

        let error = await RedisTests.redisError { _ = try await client.pipeline([[Array("PING".utf8)], []]) }

        #expect(error?.code == .invalidCommand)
        #expect(try RedisTests.connectedClients(redis) == 0)
        #expect(try await client.pipeline([]) == [])
    }

    /// Opens every connection of a 4-connection pool (BLPOP holds each for 100 ms).
    private func fillPool(_ client: RedisClient) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { _ = try await client.command(["BLPOP", "nothing", "0.1"]) }
            }
            try await group.waitForAll()
        }
    }
}
