import HeraldCore
import HeraldPostgres
import Logging
import Testing

@Suite("PostgresMigrator against a real PostgreSQL", .timeLimit(.minutes(10)))
struct PostgresMigratorTests {
    static let migrations = [
        PostgresMigration(version: 1, name: "things", sql: "CREATE TABLE {schema}.things (id bigint PRIMARY KEY, name text)"),
        PostgresMigration(
            version: 2, name: "things_name",
            sql: """
                CREATE INDEX things_name ON {schema}.things (name);
                INSERT INTO {schema}.things VALUES (1, 'seeded');
                """),
        PostgresMigration(version: 3, name: "slow_column", sql: "SELECT pg_sleep(0.2); ALTER TABLE {schema}.things ADD COLUMN note text"),
    ]

    @Test("from an empty database every migration is applied in order; a re-run is a no-op")
    func fromEmpty() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        // Given out of order: the migrator sorts them.
        let migrator = PostgresMigrator(
            client: client, schema: "herald", migrations: Self.migrations.reversed(), logger: PostgresTests.quietLogger)

        #expect(try await migrator.pending().map(\.version) == [1, 2, 3])
        #expect(try await migrator.appliedVersions() == [])

        let applied = try await migrator.migrate()
        #expect(applied.map(\.version) == [1, 2, 3])
        #expect(try await migrator.pending().isEmpty)
        #expect(try await migrator.appliedVersions() == [1, 2, 3])
        #expect(
            try pg.psql("SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM herald.schema_migrations")
                == "1:things,2:things_name,3:slow_column")
        #expect(try pg.psql("SELECT id, name, note IS NULL FROM herald.things") == "1|seeded|t")
        #expect(try pg.psql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'herald' AND indexname = 'things_name'") == "1")
        #expect(try pg.psql("SELECT count(*) FROM herald.schema_migrations WHERE applied_at <= now()") == "3")

        #expect(try await migrator.migrate().isEmpty)
        #expect(try pg.psql("SELECT count(*) FROM herald.schema_migrations") == "3")

        // A later binary brings one more.
        let next = PostgresMigrator(
            client: client, schema: "herald",
            migrations: Self.migrations + [PostgresMigration(version: 4, name: "more", sql: "CREATE TABLE {schema}.more (id int)")],
            logger: PostgresTests.quietLogger)
        #expect(try await next.pending().map(\.version) == [4])
        #expect(try await next.migrate().map(\.version) == [4])
        #expect(try await migrator.pending().isEmpty, "versions unknown to an older binary are ignored")
        // The advisory lock was released.
        #expect(try pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0")
    }

    @Test("two instances migrating at once apply each migration exactly once")
    func concurrentMigrate() async throws {
        let pg = try await PostgresServer.start()
        let first = PostgresTests.client(pg.url)
        let second = PostgresTests.client(pg.url)
        defer {
            first.close()
            second.close()
        }
        let one = PostgresMigrator(client: first, schema: "shared", migrations: Self.migrations, logger: PostgresTests.quietLogger)
        let two = PostgresMigrator(client: second, schema: "shared", migrations: Self.migrations, logger: PostgresTests.quietLogger)

        async let appliedByOne = one.migrate()
        async let appliedByTwo = two.migrate()
        let (a, b) = try await (appliedByOne, appliedByTwo)

        #expect((a + b).map(\.version).sorted() == [1, 2, 3])
        #expect(try pg.psql("SELECT count(*), count(DISTINCT version) FROM shared.schema_migrations") == "3|3")
        #expect(try pg.psql("SELECT count(*) FROM shared.things") == "1")
        #expect(try await one.pending().isEmpty)
        #expect(try await two.pending().isEmpty)
    }

    @Test("a failing migration is rolled back and stops the run; the ones before it stay")
    func failingMigration() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        let broken = [
            Self.migrations[0],
            PostgresMigration(version: 2, name: "broken", sql: "CREATE TABLE {schema}.half (id int); CREATE TABLE oops ("),
            Self.migrations[2],
        ]
        let migrator = PostgresMigrator(client: client, schema: "herald", migrations: broken, logger: PostgresTests.quietLogger)

        let error = await PostgresTests.postgresError { try await migrator.migrate() }
        #expect(error?.sqlState == "42601")
        #expect(error?.isTransient == false)
        #expect(try await migrator.pending().map(\.version) == [2, 3])
        #expect(try pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'herald'") == "2", "things and schema_migrations only")
        #expect(try pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0")
    }

    @Test("a role that owns a ready-made schema but may not create schemas can migrate it")
    func readyMadeSchema() async throws {
        let pg = try await PostgresServer.start()
        _ = try pg.psql("CREATE ROLE herald_app LOGIN; CREATE SCHEMA app AUTHORIZATION herald_app")
        let client = PostgresTests.client("postgresql://herald_app@127.0.0.1:\(pg.port)/postgres")
        defer { client.close() }
        let migrator = PostgresMigrator(client: client, schema: "app", migrations: Self.migrations, logger: PostgresTests.quietLogger)

        #expect(try await migrator.pending().count == 3)
        #expect(try await migrator.migrate().count == 3)
        #expect(try pg.psql("SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'things'") == "herald_app")
        // The same role cannot create a schema of its own: the check above mattered.
        let other = PostgresMigrator(client: client, schema: "other", migrations: Self.migrations, logger: PostgresTests.quietLogger)
        let denied = await PostgresTests.postgresError { try await other.migrate() }
        #expect(denied?.sqlState == "42501")
        #expect(denied?.isTransient == true, "a GRANT from an operator ends it")
    }

    @Test("the schema name is validated and quoted")
    func schemaNames() async throws {
        let pg = try await PostgresServer.start()
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        for bad in ["", "Herald", "1abc", "her-ald", "x\"; DROP SCHEMA public; --", String(repeating: "a", count: 64), "ü"] {
            let migrator = PostgresMigrator(client: client, schema: bad, migrations: Self.migrations, logger: PostgresTests.quietLogger)
            let error = await PostgresTests.postgresError { try await migrator.migrate() }
            #expect(error?.code == .invalidMigration, "\(bad)")
            #expect(error?.isTransient == false)
            let pendingError = await PostgresTests.postgresError { _ = try await migrator.pending() }
            #expect(pendingError?.code == .invalidMigration)
        }
        let duplicate = PostgresMigrator(
            client: client, schema: "herald", migrations: [Self.migrations[0], Self.migrations[0]], logger: PostgresTests.quietLogger)
        #expect(await PostgresTests.postgresError { try await duplicate.migrate() }?.code == .invalidMigration)

        // A reserved word is a valid schema name once quoted.
        let reserved = PostgresMigrator(client: client, schema: "user", migrations: Self.migrations, logger: PostgresTests.quietLogger)
        #expect(try await reserved.migrate().count == 3)
        #expect(try pg.psql("SELECT count(*) FROM \"user\".things") == "1")
        #expect(try pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'x%'") == "0")
    }

    @Test(
        "Herald's migration 5 on a populated queue: rows kept, a legacy second row per (event, kind) renamed, expired allowed, one mail per (event, kind)"
    )
    func notificationsMigration() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let client = PostgresTests.client(pg.url)
        defer { client.close() }
        let released = HeraldSchema.migrations.filter { $0.version <= 4 }
        _ = try await PostgresMigrator(client: client, schema: "herald", migrations: released, logger: PostgresTests.quietLogger)
            .migrate()
        // The same reset queued by two consumer groups to two addresses, and a welcome.
        _ = try pg.psql(
            """
            INSERT INTO herald.notifications (event_id, kind, user_id, recipient, requested_at, created_at, status) VALUES
                ('r1', 'password_reset', 'u1', 'old@example.com', now(), now() - interval '1 minute', 'sent'),
                ('r1', 'password_reset', 'u1', 'new@example.com', now(), now(), 'queued'),
                ('w1', 'welcome', 'u1', 'old@example.com', now(), now(), 'queued')
            """)
        let applied = try await PostgresMigrator(
            client: client, schema: "herald", migrations: HeraldSchema.migrations.filter { $0.version <= 5 },
            logger: PostgresTests.quietLogger
        ).migrate()
        #expect(applied.map(\.version) == [5])
        #expect(try pg.psql("SELECT count(*) FROM herald.notifications") == "3")
        #expect(try pg.psql("SELECT recipient FROM herald.notifications WHERE event_id = 'r1'") == "old@example.com")
        #expect(
            try pg.psql("SELECT recipient FROM herald.notifications WHERE event_id LIKE 'r1 (duplicate %)'") == "new@example.com")
        #expect(
            try pg.psql("SELECT DISTINCT address_from || ' ' || claim_number || ' ' || (claimed_by IS NULL) FROM herald.notifications")
                == "event 0 true")
        _ = try pg.psql("UPDATE herald.notifications SET status = 'expired' WHERE event_id = 'w1'")
        #expect(throws: (any Error).self, "one mail per (event, kind)") {
            try pg.psql(
                "INSERT INTO herald.notifications (event_id, kind, user_id, recipient, requested_at) VALUES ('w1', 'welcome', 'u1', 'x@example.com', now())"
            )
        }
        #expect(throws: (any Error).self, "statuses are still checked") {
            try pg.psql("UPDATE herald.notifications SET status = 'lost' WHERE event_id = 'w1'")
        }

        // Migration 6 on the populated queue: an empty mail_outbox, and its trigger NOTIFYs
        // only for a statement that inserted rows.
        let sixth = try await PostgresMigrator(
            client: client, schema: "herald", migrations: HeraldSchema.migrations, logger: PostgresTests.quietLogger
        ).migrate()
        #expect(sixth.map(\.version) == [6])
        #expect(try pg.psql("SELECT count(*) FROM herald.mail_outbox") == "0")
        #expect(try pg.psql("SELECT count(*) FROM herald.notifications") == "3")
        #expect(
            try pg.psql("SELECT tgname FROM pg_trigger WHERE tgrelid = 'herald.mail_outbox'::regclass AND NOT tgisinternal")
                == "mail_outbox_notify")
    }
}
