import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `herald outbox …` as a process.
@Suite("herald outbox as a process", .timeLimit(.minutes(10)))
struct OutboxProcessTests {
    static func environment(_ fixture: OutboxFixture, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "PATH": "/usr/bin:/bin", "HERALD_DATABASE_URL": fixture.pg.url, "HERALD_KAFKA_BROKERS": fixture.cluster.bootstrap,
            "HERALD_LOG_FORMAT": "json", "HERALD_OUTBOX_BATCH_SIZE": "200", "HERALD_RETRY_INITIAL": "20ms",
            "HERALD_RETRY_MAX": "200ms",
        ].merging(extra) { $1 }
    }

    @Test("kill -9 of a relay mid-run: nothing lost, order kept, anything published twice carries the same ce_id")
    func killNine() async throws {
        let fixture = try await OutboxFixture.start()
        let rows = 20_000
        let aggregates = 500
        try fixture.insertMany(rows, aggregates: aggregates)
        let dir = try HeraldBinary.temporaryDirectory()
        // One aggregate's first row is held by another session (as a replica would), so the
        // relay cannot finish before it is killed, however fast the machine.
        let holder = fixture.client()
        defer { holder.close() }
        let heldID = try fixture.pg.psql(
            "SELECT id FROM outbox_events WHERE aggregate_id = '00000000-0000-0000-0000-000000000000' ORDER BY created_at, id LIMIT 1")
        let processedBeforeKill = try await holder.transaction(spanning: { transaction in
            try await transaction.execute { connection in
                try connection.execute("SELECT id FROM outbox_events WHERE id = $1 FOR UPDATE", [.text(heldID)])
            }
            let relay = try ChildProcess(
                HeraldBinary.path, ["outbox", "relay"], environment: Self.environment(fixture), logPath: dir + "/relay.log")
            try await TestCluster.eventually("some rows processed") { try fixture.count("status = 'processed'") > 0 }
            relay.signal(SIGKILL)
            #expect(try await relay.waitForExit() == 128 + SIGKILL)
            return try fixture.count("status = 'processed'")
        })
        #expect(processedBeforeKill < rows, "the relay finished before it was killed; nothing was tested")

        let once = try ChildProcess(
            HeraldBinary.path, ["outbox", "relay", "--once"], environment: Self.environment(fixture), logPath: dir + "/once.log")
        #expect(try await once.waitForExit(timeout: .seconds(180)) == 0, "\(once.output.suffix(2000))")
        #expect(once.output.contains(#""failed":0"#))
        #expect(try fixture.count("status = 'processed'") == rows)

        let messages = try await fixture.read("user.events")
        let ids = messages.compactMap { $0.header("ce_id")?.stringValue }
        let tableIDs = Set(try fixture.pg.psql("SELECT id FROM outbox_events").split(separator: "\n").map(String.init))
        #expect(Set(ids) == tableIDs)
        #expect(ids.count >= rows)
        OutboxAssertions.perAggregateOrder(messages, expectedPerKey: rows / aggregates)
        await fixture.shutdown()
    }

    @Test("list, retry and install-trigger for operators; a bad outbox setting is named")
    func operatorCommands() async throws {
        let fixture = try await OutboxFixture.start()
        let ids = try await fixture.insert([
            ("Nope", "00000000-0000-0000-0000-000000000001", "E", "{}"), ("User", "00000000-0000-0000-0000-000000000002", "E", "{}"),
        ])
        let dir = try HeraldBinary.temporaryDirectory()
        func herald(_ arguments: [String], _ extra: [String: String] = [:]) async throws -> (Int32, String) {
            let process = try ChildProcess(
                HeraldBinary.path, arguments, environment: Self.environment(fixture, extra), logPath: dir + "/\(UUID().uuidString).log")
            let status = try await process.waitForExit(timeout: .seconds(180))
            return (status, process.output)
        }
        let noDefault = ["HERALD_OUTBOX_TOPIC_PATTERN": "", "HERALD_OUTBOX_TOPICS": "User=user.events", "HERALD_OUTBOX_MAX_ATTEMPTS": "1"]
        var (status, output) = try await herald(["outbox", "relay", "--once"], noDefault)
        #expect(status == 0, "\(output)")
        #expect(output.contains(#""published":1"#) && output.contains(#""failed":1"#), "\(output)")

        (status, output) = try await herald(["outbox", "list"])
        #expect(status == 0)
        #expect(output.contains("failed: 1, processed: 1"), "\(output)")
        #expect(output.contains(ids[0]) && output.contains("no topic for aggregate type \"Nope\""), "\(output)")
        #expect(!output.contains(ids[1]))
        (status, output) = try await herald(["outbox", "list", "--json"])
        #expect(status == 0, "\(output)")
        let row = try #require(
            try JSONSerialization.jsonObject(with: Data(output.split(separator: "\n").first.map(String.init)?.utf8 ?? "".utf8))
                as? [String: Any], "\(output)")
        #expect(
            Set(row.keys) == [
                "id", "aggregate_type", "aggregate_id", "event_type", "status", "retry_count", "created_at", "processed_at",
                "error_message",
            ])
        #expect(row["processed_at"] is NSNull, "an empty column is null, not left out")

        (status, output) = try await herald(["outbox", "retry", "--all"])
        #expect(status == 0 && output.contains("1 row(s) back to pending"), "\(output)")
        #expect(try fixture.count("status = 'pending' AND retry_count = 0") == 1)

        (status, output) = try await herald(["outbox", "install-trigger"])
        #expect(status == 0 && output.contains("applied: 1 outbox_notify_trigger, 2 outbox_relay_indexes"), "\(output)")
        #expect(try fixture.pg.psql("SELECT count(*) FROM pg_trigger WHERE tgname = 'herald_outbox_notify'") == "1")
        (status, output) = try await herald(["outbox", "install-trigger"])
        #expect(status == 0 && output.contains("already installed"), "\(output)")

        for (name, value) in [
            ("HERALD_OUTBOX_TABLE", "outbox-events"), ("HERALD_OUTBOX_TOPIC_PATTERN", "events"), ("HERALD_OUTBOX_COLUMNS", "id=x y"),
        ] {
            (status, output) = try await herald(["outbox", "list"], [name: value])
            #expect(status == 78, "\(name)")
            #expect(output.contains(name), "\(name): \(output)")
        }
        await fixture.shutdown()
    }
}
