import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import HeraldRuntime
import HeraldSettings
import Logging
import Synchronization

/// Relays a pre-filled outbox with one and with two relays (rows/s), then
/// measures commit-to-acknowledged latency at a steady insert rate, with the NOTIFY trigger
/// and indexes installed. In-process embedded broker; HERALD_DATABASE_URL's server.
struct BenchOutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox", abstract: "Benchmark the outbox relay: one and two relays, then latency at a steady rate.")

    @Option var rows = 100_000
    @Option var aggregates = 10_000
    @Option var batch = 500
    @Option var rate = 200
    @Option var seconds = 30
    @Option var pollMs = 1000
    @Flag(help: "Only the one- and two-relay throughput, no latency phase.") var throughputOnly = false
    @Option(help: "A librdkafka producer property, name=value (repeatable), to compare settings.")
    var producerProperty: [String] = []

    func run() async throws {
        let settings = try HeraldSettings.load(environment: ProcessInfo.processInfo.environment)
        HeraldLogging.bootstrap(format: settings.log.format, level: "warning")
        let logger = Logger(label: "herald.bench")
        let database = try settings.database.requireConnection().with(poolSize: 1)
        let schema = "herald_bench_outbox"
        let layout = OutboxTableLayout(schema: schema, table: "outbox_events")
        let admin = PostgresClient(settings: database, logger: logger)
        defer { admin.close() }
        try await admin.withConnection { connection in
            try connection.execute("DROP SCHEMA IF EXISTS herald_bench_outbox CASCADE")
            try connection.execute("DROP SCHEMA IF EXISTS herald_bench_outbox_meta CASCADE")
            try connection.execute("CREATE SCHEMA herald_bench_outbox")
            try connection.execute(
                """
                CREATE TABLE herald_bench_outbox.outbox_events (
                    id uuid PRIMARY KEY, aggregate_type varchar(100) NOT NULL, aggregate_id uuid NOT NULL,
                    event_type varchar(100) NOT NULL, event_data jsonb NOT NULL, status varchar(20) DEFAULT 'pending',
                    retry_count integer DEFAULT 0, created_at timestamp DEFAULT clock_timestamp(), processed_at timestamp NULL,
                    error_message text NULL)
                """)
        }
        try await PostgresMigrator(
            client: admin, schema: "herald_bench_outbox_meta",
            migrations: OutboxTriggerSchema.migrations(layout: layout, channel: "herald_bench"),
            logger: logger
        ).migrate()

        var producerProperties: [String: String] = [:]
        for property in producerProperty {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--producer-property expects name=value") }
            producerProperties[parts[0]] = parts[1]
        }
        let broker = try EmbeddedBroker(logger: logger)
        try broker.createTopic("user.events", partitions: 32)
        let relaySettings = OutboxRelaySettings(batchSize: batch, maxAttempts: 5, topics: OutboxTopicMapping())
        func relay(_ observer: any OutboxObserver = NoOutboxObserver()) throws -> (OutboxRelay, PostgresClient, KafkaProducer) {
            let client = PostgresClient(settings: database, logger: logger)
            let producer = try KafkaProducer(
                bootstrapServers: broker.bootstrapServers, properties: producerProperties, logger: logger)
            let store = PostgresOutboxStore(client: client, layout: layout, logger: logger)
            return (
                OutboxRelay(
                    store: store, publisher: KafkaOutboxPublisher(producer: producer), settings: relaySettings, observer: observer,
                    logger: logger), client, producer
            )
        }
        func fill() async throws {
            try await admin.withConnection { connection in
                try connection.execute("TRUNCATE herald_bench_outbox.outbox_events")
                try connection.execute(
                    """
                    INSERT INTO herald_bench_outbox.outbox_events (id, aggregate_type, aggregate_id, event_type, event_data, created_at)
                    SELECT gen_random_uuid(), 'User', ('00000000-0000-0000-0000-' || lpad(to_hex(i % $1), 12, '0'))::uuid,
                           'UserRegistered', jsonb_build_object('user_id', i, 'email', 'user' || i || '@example.com', 'seq', i / $1),
                           timestamp '2024-01-01' + i * interval '1 microsecond'
                    FROM generate_series(0, $2 - 1) AS i
                    """, [.int(Int64(aggregates)), .int(Int64(rows))])
                try connection.execute("VACUUM ANALYZE herald_bench_outbox.outbox_events")
            }
        }
        func dropSchemas() async throws {
            try await admin.withConnection { connection in
                try connection.execute("DROP SCHEMA herald_bench_outbox CASCADE")
                try connection.execute("DROP SCHEMA herald_bench_outbox_meta CASCADE")
            }
        }
        func pending() async throws -> Int64 {
            try await admin.withConnection {
                try $0.execute("SELECT count(*) AS n FROM herald_bench_outbox.outbox_events WHERE status <> 'processed'").int(0, "n") ?? -1
            }
        }
        let clock = ContinuousClock()

        // One relay.
        try await fill()
        let (one, oneClient, oneProducer) = try relay()
        var start = clock.now
        let oneReport = try await one.drain()
        let oneRate = Double(oneReport.published) / (clock.now - start).seconds
        guard try await pending() == 0, oneReport.published == rows else { throw BenchError("one relay left rows behind") }

        // Two relays.
        try await fill()
        let (two, twoClient, twoProducer) = try relay()
        start = clock.now
        async let a = one.drain()
        async let b = two.drain()
        let (reportA, reportB) = try await (a, b)
        let twoRate = Double(reportA.published + reportB.published) / (clock.now - start).seconds
        guard try await pending() == 0, reportA.published + reportB.published == rows else {
            throw BenchError("two relays left rows behind or published twice")
        }
        for client in [oneClient, twoClient] { client.close() }
        await oneProducer.close()
        await twoProducer.close()

        if throughputOnly {
            try await dropSchemas()
            print(
                #"{"rows":\#(rows),"aggregates":\#(aggregates),"batch":\#(batch),"one_relay_rows_per_second":\#(Int(oneRate)),"#
                    + #""two_relays_rows_per_second":\#(Int(twoRate)),"two_relays_split":[\#(reportA.published),\#(reportB.published)]}"#)
            return
        }

        // Latency at a steady rate, woken by NOTIFY.
        try await admin.withConnection { try $0.execute("TRUNCATE herald_bench_outbox.outbox_events") }
        let observer = AckTimes()
        let (steady, steadyClient, steadyProducer) = try relay(observer)
        let wakeup = Doorbell()
        let listener = PostgresListener(
            settings: database, channel: "herald_bench", applicationName: "herald-outbox-listen", logger: logger,
            onNotify: { wakeup.ring() })
        listener.start()
        let running = Task { try await steady.run(wakeup: wakeup, pollInterval: .milliseconds(pollMs)) }
        let api = PostgresClient(settings: database, logger: logger)
        // Warm-up: the producer's first record waits for its connection, metadata and
        // producer id; that is start-up, not steady-state latency.
        try await api.withConnection { connection in
            try connection.execute(
                """
                INSERT INTO herald_bench_outbox.outbox_events (id, aggregate_type, aggregate_id, event_type, event_data)
                VALUES (gen_random_uuid(), 'User', gen_random_uuid(), 'Warmup', '{}')
                """)
        }
        while observer.count < 1 { try await Task.sleep(for: .milliseconds(20)) }
        observer.reset()
        var committed: [String: ContinuousClock.Instant] = [:]
        let total = rate * seconds
        let interval = Duration.seconds(1) / rate
        start = clock.now
        for i in 0..<total {
            let due = start + interval * i
            if due > clock.now { try await Task.sleep(until: due) }
            let id = try await api.withConnection { connection in
                try connection.execute(
                    """
                    INSERT INTO herald_bench_outbox.outbox_events (id, aggregate_type, aggregate_id, event_type, event_data)
                    VALUES (gen_random_uuid(), 'User', gen_random_uuid(), 'UserRegistered', $1) RETURNING id::text AS id
                    """, [.text(#"{"seq": \#(i)}"#)]
                ).string(0, "id") ?? ""
            }
            committed[id] = clock.now
        }
        let achieved = Double(total) / (clock.now - start).seconds
        while observer.count < total { try await Task.sleep(for: .milliseconds(50)) }
        running.cancel()
        _ = try? await running.value
        await listener.stop()
        api.close()
        steadyClient.close()
        await steadyProducer.close()
        let acks = observer.times
        var latencies = committed.compactMap { id, at in acks[id].map { max(0, ($0 - at).seconds * 1000) } }.sorted()
        if latencies.isEmpty { latencies = [0] }
        func percentile(_ p: Double) -> Double { Percentile.of(latencies, p) }
        try await dropSchemas()
        print(
            #"{"rows":\#(rows),"aggregates":\#(aggregates),"batch":\#(batch),"one_relay_rows_per_second":\#(Int(oneRate)),"#
                + #""two_relays_rows_per_second":\#(Int(twoRate)),"two_relays_split":[\#(reportA.published),\#(reportB.published)],"#
                + #""latency_rate":\#(rate),"latency_achieved_rate":\#(String(format: "%.1f", achieved)),"latency_samples":\#(latencies.count),"#
                + #""latency_p50_ms":\#(String(format: "%.2f", percentile(0.5))),"latency_p99_ms":\#(String(format: "%.2f", percentile(0.99))),"#
                + #""latency_max_ms":\#(String(format: "%.2f", latencies.last!))}"#)
    }
}

/// When each row's acknowledgement arrived.
private final class AckTimes: OutboxObserver {
    private let state = Mutex<[String: ContinuousClock.Instant]>([:])

    func published(_ events: [OutboxEvent]) {
        let now = ContinuousClock.now
        state.withLock { times in for event in events { times[event.id] = now } }
    }

    var count: Int { state.withLock { $0.count } }
    func reset() { state.withLock { $0.removeAll() } }
    var times: [String: ContinuousClock.Instant] { state.withLock { $0 } }
}
