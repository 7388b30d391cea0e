import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres
import HeraldRuntime
import HeraldSettings
import Logging

/// Inbox inserts batched (one multi-row INSERT per batch, in a transaction,
/// as `herald run` does) against one autocommit INSERT per row, on the same server.
struct BenchInboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbox", abstract: "Benchmark inbox inserts: batched against one autocommit INSERT per row.")

    @Option var rows = 100_000
    @Option var singleRows = 10_000
    @Option var batch = 500

    func run() async throws {
        let settings = try HeraldSettings.load(environment: ProcessInfo.processInfo.environment)
        HeraldLogging.bootstrap(format: settings.log.format, level: "warning")
        let logger = Logger(label: "herald.bench")
        let schema = "herald_bench"
        let client = try await BenchDatabase.fresh(schema: schema, poolSize: 1, settings.database, logger: logger)
        defer { client.close() }
        let inbox = PostgresEventInbox(client: client, schema: schema, logger: logger)

        func events(_ range: Range<Int>) throws -> [AcceptedEvent] {
            try range.map { i in
                let metadata = EventMetadata(
                    type: "RolePermissionsChanged", id: try EventID("bench-\(i)"),
                    occurredAt: EventTime(millisecondsSinceEpoch: 1_700_000_000_000), topic: "auth_service_topic",
                    partition: Int32(i % 32), offset: Int64(i))
                return AcceptedEvent(metadata: metadata, event: nil, effects: [])
            }
        }

        let clock = ContinuousClock()
        var start = clock.now
        var done = 0
        while done < rows {
            let n = min(batch, rows - done)
            _ = try await inbox.record(try events(done..<(done + n)), consumerGroup: "bench")
            done += n
        }
        let batched = Double(rows) / (clock.now - start).seconds

        start = clock.now
        let singles = try events(rows..<(rows + singleRows))
        try await client.withConnection { connection in
            for e in singles {
                try connection.execute(
                    """
                    INSERT INTO herald_bench.processed_events (consumer_group, event_id, event_type, topic, "partition", "offset")
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
                    """,
                    [
                        .text("bench"), .text(e.metadata.id.rawValue), .text(e.metadata.type.rawValue), .text(e.metadata.topic),
                        .int(Int64(e.metadata.partition)), .int(e.metadata.offset),
                    ])
            }
        }
        let single = Double(singleRows) / (clock.now - start).seconds
        _ = try await client.withConnection { try $0.execute("DROP SCHEMA herald_bench CASCADE") }
        print(#"{"batched_rows_per_second":\#(Int(batched)),"single_rows_per_second":\#(Int(single)),"batch":\#(batch)}"#)
    }
}

/// Herald's schema for a benchmark, dropped and migrated afresh on HERALD_DATABASE_URL's
/// server.
enum BenchDatabase {
    static func fresh(schema: String, poolSize: Int, _ database: DatabaseSettings, logger: Logger) async throws -> PostgresClient {
        let client = PostgresClient(settings: try database.requireConnection().with(poolSize: poolSize), logger: logger)
        _ = try await client.withConnection { try $0.execute("DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE") }
        try await PostgresMigrator(client: client, schema: schema, migrations: HeraldSchema.migrations, logger: logger).migrate()
        return client
    }
}
