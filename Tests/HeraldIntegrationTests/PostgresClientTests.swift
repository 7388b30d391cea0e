import HeraldCore
import HeraldPostgres
import Logging
import Synchronization
import Testing

@Suite("PostgresClient against a real PostgreSQL", .timeLimit(.minutes(10)))
struct PostgresClientTests {
    static let awkwardStrings = [
        "plain", "", "'; DROP TABLE items; --", "O'Reilly \"quoted\" \\backslash\\", "$1 $2 ? %s %n", "NULL", "null",
        "Grüße, ünïcödé — 日本語", "emoji 🎉👩‍👩‍👧", " leading and trailing ", "line\nbreak\ttab\r", "{a,b}", "(1,2)",
    ]

    @Test("a query is prepared once per session and then only executed; utility statements are not; off when turned off")
    func preparedStatements() async throws {
        let pg = try await PostgresServer.start()
        let probe = "SELECT $1::bigint + 1 AS sum"
        let create = "CREATE TABLE herald_probe_table (a int)"
        let count = "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1"
        for prepares in [true, false] {
            let client = PostgresClient(
                conninfo: pg.url, poolSize: 1, connectTimeout: .seconds(2), preparesStatements: prepares,
                logger: PostgresTests.quietLogger)
            defer { client.close() }
            let (sums, count, utility) = try await client.withConnection { connection in
                // One session (pool of one): the same query three times, with other values.
                let sums = try (1...3).map { i in try connection.execute(probe, [.int(Int64(i))]).int(0, "sum") }
                try connection.execute(create)
                let found = try connection.execute(count, [.text(probe)]).int(0, "n")
                let utility = try connection.execute(count, [.text(create)]).int(0, "n")
                try connection.execute("DROP TABLE herald_probe_table")
                return (sums, found, utility)
            }
            #expect(sums == [2, 3, 4])
            #expect(count == (prepares ? 1 : 0), "prepares: \(prepares)")
            #expect(utility == 0)
        }
    }

    @Test("a prepared query whose table changed shape fails once (0A000) and is prepared again on the next call")
    func preparedQueryAfterTableChange() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 1)
        defer { client.close() }
        let (before, failure, after) = try await client.withConnection { connection in
            try connection.execute("CREATE TABLE shapes (a int)")
            try connection.execute("INSERT INTO shapes VALUES (1)")
            let before = try connection.execute("SELECT * FROM shapes").columns
            try connection.execute("ALTER TABLE shapes ADD COLUMN b int")
            var failure: String?
            do { _ = try connection.execute("SELECT * FROM shapes") } catch let error as PostgresError { failure = error.sqlState }
            let after = try connection.execute("SELECT * FROM shapes").columns
            return (before, failure, after)
        }
        #expect(before == ["a"])
        #expect(failure == "0A000")
        #expect(after == ["a", "b"])
    }

    @Test("text, integer, boolean and NULL parameters round-trip unchanged, stored verbatim")
    func parametersRoundTrip() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE items (id bigint PRIMARY KEY, value text, flag boolean)")
        }

        for (index, text) in Self.awkwardStrings.enumerated() {
            let echoed = try await client.withConnection { connection in
                try connection.execute("SELECT $1::text AS v", [.text(text)])
            }
            #expect(echoed.string(0, "v") == text)
            let inserted = try await client.withConnection { connection in
                try connection.execute(
                    "INSERT INTO items (id, value, flag) VALUES ($1, $2, $3)", [.int(Int64(index)), .text(text), .bool(index % 2 == 0)])
            }
            #expect(inserted.affectedRows == 1)
            // Checked with psql, byte for byte.
            let hex = try pg.psql("SELECT encode(convert_to(value, 'UTF8'), 'hex') FROM items WHERE id = \(index)")
            #expect(hex == text.utf8.map { String(format: "%02x", $0) }.joined(), "\(text)")
        }
        #expect(try pg.psql("SELECT count(*) FROM items") == String(Self.awkwardStrings.count))
        #expect(try pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'items'") == "1")

        let result = try await client.withConnection { connection in
            try connection.execute(
                "SELECT $1::text AS n, $2::bigint AS big, $3::bigint AS small, $4::boolean AS yes, $5::boolean AS no",
                [.null, .int(.max), .int(.min), .bool(true), .bool(false)])
        }
        #expect(result.columns == ["n", "big", "small", "yes", "no"])
        #expect(result.rows == [[nil, String(Int64.max), String(Int64.min), "t", "f"]])
        #expect(result.int(0, "big") == .max)
        #expect(result.int(0, "small") == .min)
        #expect(result.bool(0, "yes") == true)
        #expect(result.string(0, "missing") == nil)
        #expect(result.string(5, "big") == nil)

        // Untyped text takes its type from the context.
        let typed = try await client.withConnection { connection in
            try connection.execute(
                "SELECT $1 = '7c9e6679-7425-40de-944b-e07fc1f90ae7'::uuid AS same, ($2::jsonb)->>'a' AS a",
                [.text("7C9E6679-7425-40DE-944B-E07FC1F90AE7"), .text(#"{"a": "ü"}"#)])
        }
        #expect(typed.bool(0, "same") == true)
        #expect(typed.string(0, "a") == "ü")
    }

    @Test("a NUL byte in a parameter is rejected before sending, permanently")
    func nulByteRejected() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 1)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE items (value text)")
        }

        for value in [PostgresValue.text("before\u{0}after"), .textArray(["ok", "x\u{0}"])] {
            let error = await PostgresTests.postgresError {
                try await client.withConnection { connection in
                    try connection.execute("INSERT INTO items (value) VALUES ($1::text)", [.text("fine"), value].suffix(1).map { $0 })
                }
            }
            #expect(error?.code == .invalidParameter)
            #expect(error?.sqlState == "22021")
            #expect(error?.isTransient == false)
            #expect(error?.description.contains("after") == false)
            #expect(error?.description.contains("$1") == true)
        }
        #expect(try pg.psql("SELECT count(*) FROM items") == "0")
        // The connection is still fine.
        let count = try await client.withConnection { connection in
            try connection.execute("SELECT count(*) AS n FROM items").int(0, "n")
        }
        #expect(count == 0)
    }

    @Test("text and integer arrays round-trip through unnest, quoting and all")
    func arraysRoundTrip() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        let elements: [String?] =
            Self.awkwardStrings + [
                nil, "\"", "\\", "\\\"", "a,b", "{", "}", "{}", "NULL", "", " ", "ü", "🎉", "trailing\\", "\"quoted\"", nil,
            ]

        let texts = try await client.withConnection { connection in
            try connection.execute(
                "SELECT u FROM unnest($1::text[]) WITH ORDINALITY AS t(u, position) ORDER BY position", [.textArray(elements)])
        }
        #expect(texts.rows.map { $0[0] } == elements)

        let integers: [Int64] = [0, 1, -1, .max, .min, 42]
        let numbers = try await client.withConnection { connection in
            try connection.execute("SELECT n FROM unnest($1) WITH ORDINALITY AS t(n, position) ORDER BY position", [.intArray(integers)])
        }
        #expect(numbers.rows.indices.map { numbers.int($0, "n") } == integers)

        let empty = try await client.withConnection { connection in
            try connection.execute(
                "SELECT cardinality($1::text[]) AS texts, cardinality($2::bigint[]) AS ints", [.textArray([]), .intArray([])])
        }
        #expect(empty.int(0, "texts") == 0)
        #expect(empty.int(0, "ints") == 0)

        // Many rows in one statement: the batch insert shape.
        let ids = (0..<5000).map { "event-\($0)" }
        let inserted = try await client.withConnection { connection in
            try connection.execute("CREATE TABLE seen (id text PRIMARY KEY, n bigint)")
            return try connection.execute(
                "INSERT INTO seen (id, n) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING",
                [.textArray(ids), .intArray(ids.indices.map(Int64.init))]
            ).affectedRows
        }
        #expect(inserted == 5000)
        #expect(try pg.psql("SELECT count(*), sum(n) FROM seen") == "5000|12497500")
    }

    @Test("a transaction commits on return and rolls back when its body throws")
    func transactions() async throws {
        struct Abort: Error, Equatable {}
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 1)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE items (id bigint PRIMARY KEY)")
        }

        let committed = try await client.transaction { connection in
            try connection.execute("INSERT INTO items VALUES (1), (2)").affectedRows
        }
        #expect(committed == 2)
        #expect(try pg.psql("SELECT count(*) FROM items") == "2")

        await #expect(throws: Abort.self) {
            try await client.transaction { connection in
                try connection.execute("INSERT INTO items VALUES (3)")
                throw Abort()
            }
        }
        #expect(try pg.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM items") == "1,2")

        // A failing statement rolls back the statements before it.
        let duplicate = await PostgresTests.postgresError {
            try await client.transaction { connection in
                try connection.execute("INSERT INTO items VALUES (4)")
                try connection.execute("INSERT INTO items VALUES (1)")
            }
        }
        #expect(duplicate?.sqlState == "23505")
        #expect(try pg.psql("SELECT count(*) FROM items") == "2")

        // A caught statement error cannot be committed.
        let swallowed = await PostgresTests.postgresError {
            try await client.transaction { connection in
                try connection.execute("INSERT INTO items VALUES (5)")
                _ = try? connection.execute("INSERT INTO items VALUES (1)")
            }
        }
        #expect(swallowed?.sqlState == "25P02")
        #expect(swallowed?.isTransient == false)
        #expect(try pg.psql("SELECT count(*) FROM items") == "2")

        // A transaction left open by a withConnection body is rolled back.
        try await client.withConnection { connection in
            try connection.execute("BEGIN")
            try connection.execute("INSERT INTO items VALUES (6)")
        }
        let status = try await client.withConnection { connection in
            try connection.execute("SELECT count(*) AS n, txid_current_if_assigned() IS NULL AS fresh FROM items")
        }
        #expect(status.int(0, "n") == 2)
        #expect(status.bool(0, "fresh") == true, "the next body starts outside the abandoned transaction")
    }

    @Test("errors carry their SQLSTATE and are classified; description keeps values out")
    func errorClassification() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, statementTimeout: .milliseconds(300))
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE tokens (token text CONSTRAINT tokens_token_key UNIQUE)")
        }
        let secret = "tok_secret-value-42"
        try await client.withConnection { connection in
            try connection.execute("INSERT INTO tokens VALUES ($1)", [.text(secret)])
        }

        let unique = await PostgresTests.postgresError {
            try await client.withConnection { connection in
                try connection.execute("INSERT INTO tokens VALUES ($1)", [.text(secret)])
            }
        }
        #expect(unique?.code == .server)
        #expect(unique?.sqlState == "23505")
        #expect(unique?.isTransient == false)
        #expect(unique?.constraint == "tokens_token_key")
        #expect(unique?.description.contains("tokens_token_key") == true)
        #expect(unique?.description.contains(secret) == false)
        #expect(unique?.debugDescription.contains(secret) == true, "DETAIL belongs in debugDescription")

        let syntax = await PostgresTests.postgresError {
            try await client.withConnection { connection in
                try connection.execute("SELEC 1")
            }
        }
        #expect(syntax?.sqlState == "42601")
        #expect(syntax?.isTransient == false)

        let undefined = await PostgresTests.postgresError {
            try await client.withConnection { connection in
                try connection.execute("SELECT * FROM missing_table")
            }
        }
        #expect(undefined?.sqlState == "42P01")
        #expect(undefined?.isTransient == true, "a table missing mid-migration comes back")
        #expect(undefined?.isCausedByValues == false)

        // Data exceptions quote the input in their message: redacted in description.
        let invalid = await PostgresTests.postgresError {
            try await client.withConnection { connection in
                try connection.execute("SELECT $1::uuid", [.text(secret)])
            }
        }
        #expect(invalid?.sqlState == "22P02")
        #expect(invalid?.isTransient == false)
        #expect(invalid?.isCausedByValues == true)
        #expect(unique?.isCausedByValues == false, "a unique violation depends on other rows")
        #expect(invalid?.description.contains(secret) == false)
        #expect(invalid?.summary == #"invalid input syntax for type uuid: "…""#)
        #expect(invalid?.debugDescription.contains(secret) == true)

        let timeout = await PostgresTests.postgresError {
            try await client.withConnection { connection in
                try connection.execute("SELECT pg_sleep(5)")
            }
        }
        #expect(timeout?.sqlState == "57014")
        #expect(timeout?.isTransient == true)

        // None of that broke the pool.
        let count = try await client.withConnection { connection in
            try connection.execute("SELECT count(*) AS n FROM tokens").int(0, "n")
        }
        #expect(count == 1)

        #expect(PostgresError.isTransient(sqlState: "40001"))
        #expect(PostgresError.isTransient(sqlState: "40P01"))
        #expect(PostgresError.isTransient(sqlState: "08006"))
        #expect(PostgresError.isTransient(sqlState: "53300"))
        #expect(PostgresError.isTransient(sqlState: "55P03"))
        #expect(PostgresError.isTransient(sqlState: "57P03"))
        #expect(!PostgresError.isTransient(sqlState: "23503"))
        #expect(!PostgresError.isTransient(sqlState: "22001"))
        #expect(!PostgresError.isTransient(sqlState: "42601"))
        // A failover, a revoked permission, a missing table, system and internal errors: outages.
        for state in ["25006", "42501", "42P01", "58030", "XX000", "57P04", "3D000"] {
            #expect(PostgresError.isTransient(sqlState: state), "\(state)")
        }
    }

    @Test("serialization failures and deadlocks are transient")
    func deadlockIsTransient() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE a (id int PRIMARY KEY, v int)")
            try connection.execute("INSERT INTO a VALUES (1, 0), (2, 0)")
        }
        // Two transactions lock the rows in opposite orders; PostgreSQL kills one of them.
        func crossing(_ first: Int64, _ second: Int64) async -> PostgresError? {
            await PostgresTests.postgresError {
                try await client.transaction { connection in
                    try connection.execute("UPDATE a SET v = v + 1 WHERE id = $1", [.int(first)])
                    try connection.execute("SELECT pg_sleep(0.5)")
                    try connection.execute("UPDATE a SET v = v + 1 WHERE id = $1", [.int(second)])
                }
            }
        }
        async let one = crossing(1, 2)
        async let two = crossing(2, 1)
        let errors = [await one, await two].compactMap { $0 }
        #expect(errors.count == 1)
        #expect(errors.first?.sqlState == "40P01")
        #expect(errors.first?.isTransient == true)
    }

    @Test("a read-only transaction (a standby after a failover) is transient and the connection is replaced")
    func readOnlyReplacesConnection() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 1)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE items (id bigint)")
        }
        let before = try await client.withConnection { connection in
            try connection.execute("SELECT pg_backend_pid() AS pid").int(0, "pid")
        }
        // This session now behaves like one on a standby.
        try await client.withConnection { connection in
            try connection.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        }
        let refused = await PostgresTests.postgresError {
            try await client.transaction { connection in
                try connection.execute("INSERT INTO items VALUES (1)")
            }
        }
        #expect(refused?.sqlState == "25006")
        #expect(refused?.isTransient == true)
        #expect(refused?.isCausedByValues == false)
        // The next call gets a new session, which can write (as one on the new primary would).
        let after = try await client.withConnection { connection in
            try connection.execute("INSERT INTO items VALUES (2)")
            return try connection.execute("SELECT pg_backend_pid() AS pid").int(0, "pid")
        }
        #expect(after != before)
        #expect(try pg.psql("SELECT count(*) FROM items") == "1")
    }

    @Test("PostgreSQL stopped: calls fail transiently; restarted: the next call reconnects")
    func survivesRestart() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 2)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.execute("CREATE TABLE items (id bigint)")
            try connection.execute("INSERT INTO items VALUES (1)")
        }

        try await pg.stop()
        for _ in 0..<3 {
            let down = await PostgresTests.postgresError { try await client.ping() }
            #expect(down?.isTransient == true)
            #expect(down?.code == .connectionFailed || down?.code == .connectionLost)
            #expect(down?.sqlState?.hasPrefix("08") == true || down?.sqlState?.hasPrefix("57P") == true)
        }

        try await pg.start()
        let count = try await client.withConnection { connection in
            try connection.execute("SELECT count(*) AS n FROM items").int(0, "n")
        }
        #expect(count == 1, "data survived the restart and the client reconnected")
    }

    @Test("an idle connection closed by a restart is replaced without failing the next call")
    func idleConnectionReplaced() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 1)
        defer { client.close() }
        let before = try await client.withConnection { connection in
            try connection.execute("SELECT pg_backend_pid() AS pid").int(0, "pid")
        }

        try await pg.restart()

        let after = try await client.withConnection { connection in
            try connection.execute("SELECT pg_backend_pid() AS pid").int(0, "pid")
        }
        #expect(after != nil)
        #expect(after != before)
    }

    @Test("a call in flight when PostgreSQL shuts down fails transiently")
    func inFlightDuringShutdown() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, poolSize: 1)
        defer { client.close() }
        try await client.ping()

        async let sleeping = PostgresTests.postgresError {
            try await client.withConnection { connection in
                try connection.execute("SELECT pg_sleep(10)")
            }
        }
        // Wait until the sleep is running.
        let deadline = ContinuousClock.now + .seconds(10)
        while try pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)'") != "1" {
            #expect(ContinuousClock.now < deadline)
            if ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await pg.stop()
        let error = await sleeping
        #expect(error?.isTransient == true)

        try await pg.start()
        try await client.ping()
    }

    @Test("sessions get the statement timeout and application name; the URI's own parameters win")
    func sessionSettings() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url, statementTimeout: .milliseconds(1500))
        defer { client.close() }
        let settings = try await client.withConnection { connection in
            try connection.execute(
                "SELECT current_setting('statement_timeout') AS timeout, current_setting('application_name') AS name")
        }
        #expect(settings.string(0, "timeout") == "1500ms")
        #expect(settings.string(0, "name") == "herald")

        let custom = PostgresTests.client(
            pg.url + "?application_name=custom&options=-c%20search_path%3Dother%20-c%20statement_timeout%3D7s",
            statementTimeout: .milliseconds(1500))
        defer { custom.close() }
        let overridden = try await custom.withConnection { connection in
            try connection.execute(
                """
                SELECT current_setting('statement_timeout') AS timeout, current_setting('application_name') AS name,
                       current_setting('search_path') AS path
                """)
        }
        #expect(overridden.string(0, "timeout") == "7s")
        #expect(overridden.string(0, "name") == "custom")
        #expect(overridden.string(0, "path") == "other")

        // A key=value conninfo works too, unix socket included.
        let socket = PostgresTests.client("host=\(pg.directory) port=\(pg.port) user=postgres dbname=postgres")
        defer { socket.close() }
        let path = try await socket.withConnection { connection in
            try connection.execute("SELECT inet_server_addr() IS NULL AS local").bool(0, "local")
        }
        #expect(path == true)
    }

    @Test("the pool opens at most poolSize connections, lazily, and queues the rest")
    func poolBounds() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresClient(conninfo: pg.url, poolSize: 3, applicationName: "herald-pool-test", logger: PostgresTests.quietLogger)
        defer { client.close() }
        let countSQL = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'herald-pool-test'"
        #expect(try pg.psql(countSQL) == "0")

        // Six bodies at once on three connections: never more than three run together, and
        // the other three wait for a connection instead of failing.
        let running = ConcurrencyGauge()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    _ = try await client.withConnection { connection in
                        running.enter()
                        defer { running.leave() }
                        return try connection.execute("SELECT pg_sleep(0.3)")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(running.most <= 3)
        #expect(running.now == 0)
        #expect(try pg.psql(countSQL) == "3")

        client.close()
        let closed = await PostgresTests.postgresError { try await client.ping() }
        #expect(closed?.code == .clientClosed)
        let deadline = ContinuousClock.now + .seconds(10)
        while try pg.psql(countSQL) != "0", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try pg.psql(countSQL) == "0", "close() ends the sessions")
    }

    @Test("the password never appears in errors, logs or the endpoint")
    func passwordNeverShown() async throws {
        let password = "S3cr3t-Pa55word"
        let recorder = RedisLogRecorder()
        let urls = [
            "postgresql://herald:\(password)@127.0.0.1:1/herald",
            "postgresql://herald:\(password)@nonexistent.invalid:5432/herald?sslmode=disable",
            "postgresql://herald:\(password)%zz@127.0.0.1:1/herald",
            "host=127.0.0.1 port=1 user=herald password='\(password)' dbname=herald",
            "host=127.0.0.1 port=1 user=herald password=\(password) dbname=herald bogus",
        ]
        for url in urls {
            let client = PostgresTests.client(url, logger: recorder.logger)
            defer { client.close() }
            let error = await PostgresTests.postgresError { try await client.ping() }
            #expect(error != nil)
            #expect(error?.isTransient == true, "\(String(describing: error))")
            #expect(error?.description.contains(password) == false, "\(String(describing: error))")
            #expect(error?.debugDescription.contains(password) == false)
            #expect(error?.summary.isEmpty == false)
            #expect(!client.endpoint.contains(password))
        }
        // A password given separately (from a *_FILE variable) is redacted too.
        let pg = try await PostgresServer.start()
        _ = try pg.psql("ALTER SYSTEM SET password_encryption = 'scram-sha-256'")
        let client = PostgresClient(
            conninfo: "postgresql://nobody@127.0.0.1:1/postgres", connectTimeout: .seconds(1), password: password,
            logger: recorder.logger)
        defer { client.close() }
        let refused = await PostgresTests.postgresError { try await client.ping() }
        #expect(refused?.code == .connectionFailed)
        #expect(refused?.sqlState == "08001")
        #expect(!recorder.transcript.isEmpty)
        #expect(!recorder.transcript.contains(password))
    }
}

/// How many callers are inside at once, and the most there ever were.
final class ConcurrencyGauge: Sendable {
    private let state = Mutex((now: 0, most: 0))

    func enter() {
        state.withLock {
            $0.now += 1
            $0.most = max($0.most, $0.now)
        }
    }

    func leave() { state.withLock { $0.now -= 1 } }

    var now: Int { state.withLock { $0.now } }
    var most: Int { state.withLock { $0.most } }
}
