import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import Logging
import Synchronization
import Testing

/// The outbox table of docs/integration.md in a throwaway PostgreSQL, rows written as the API writes them,
/// and relays wired to an in-process mock cluster.
struct OutboxFixture {
    let pg: PostgresServer
    let cluster: TestCluster
    /// The "API": writes rows in its own transactions.
    let api: PostgresClient
    let layout: OutboxTableLayout

    static let topics = ["user.events", "order.events"]

    /// docs/integration.md's `outbox_events` (with a nullable status and counters, as an older
    /// table may have them), except `created_at` defaults to `clock_timestamp()` so that
    /// rows written by one transaction keep their order.
    static let seedsTable = """
        CREATE TABLE outbox_events (
            id UUID PRIMARY KEY,
            aggregate_type VARCHAR(100) NOT NULL,
            aggregate_id UUID NOT NULL,
            event_type VARCHAR(100) NOT NULL,
            event_data JSONB NOT NULL,
            status VARCHAR(20) DEFAULT 'pending',
            retry_count INTEGER DEFAULT 0,
            created_at TIMESTAMP DEFAULT clock_timestamp(),
            processed_at TIMESTAMP NULL,
            error_message TEXT NULL
        )
        """

    static func start(table: String = seedsTable, layout: OutboxTableLayout = OutboxTableLayout(), partitions: Int = 4)
        async throws -> OutboxFixture
    {
        let pg = try await PostgresServer.start()
        _ = try pg.psql(table)
        let cluster = try TestCluster(partitions: partitions)
        for topic in topics { try cluster.broker.createTopic(topic, partitions: partitions) }
        let api = PostgresTests.client(pg.url, poolSize: 2, statementTimeout: .seconds(60))
        return OutboxFixture(pg: pg, cluster: cluster, api: api, layout: layout)
    }

    func shutdown() async {
        api.close()
        await cluster.producer.close()
        pg.shutdown()
    }

    /// A producer of its own, as each relay replica has.
    func producer(_ properties: [String: String] = [:]) throws -> KafkaProducer {
        try KafkaProducer(bootstrapServers: cluster.bootstrap, properties: properties, logger: TestLogging.logger("test.outbox.producer"))
    }

    func relay(
        client: PostgresClient, producer: KafkaProducer, settings: OutboxRelaySettings = Self.settings(),
        observer: any OutboxObserver = NoOutboxObserver()
    ) -> OutboxRelay {
        OutboxRelay(
            store: PostgresOutboxStore(client: client, layout: layout, logger: TestLogging.logger("test.outbox")),
            publisher: KafkaOutboxPublisher(producer: producer), settings: settings, observer: observer,
            logger: TestLogging.logger("test.outbox"))
    }

    func client(poolSize: Int = 2) -> PostgresClient {
        PostgresTests.client(pg.url, poolSize: poolSize, statementTimeout: .seconds(60))
    }

    static func settings(
        batchSize: Int = 100, maxAttempts: Int = 3, maxMessageBytes: Int = 1_000_000,
        topics: OutboxTopicMapping = OutboxTopicMapping()
    ) -> OutboxRelaySettings {
        OutboxRelaySettings(
            batchSize: batchSize, maxAttempts: maxAttempts, maxMessageBytes: maxMessageBytes, topics: topics,
            backoff: Backoff(initial: .milliseconds(20), cap: .milliseconds(200)))
    }

    /// Inserts `rows` (aggregate type, aggregate id, event type, JSON) in one API
    /// transaction and returns their ids, in order.
    @discardableResult
    func insert(_ rows: [(type: String, aggregate: String, event: String, data: String)]) async throws -> [String] {
        try await api.transaction { connection in
            try rows.map { row in
                try connection.execute(
                    """
                    INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, event_data)
                    VALUES (gen_random_uuid(), $1, $2, $3, $4) RETURNING id::text AS id
                    """, [.text(row.type), .text(row.aggregate), .text(row.event), .text(row.data)]
                ).string(0, "id") ?? ""
            }
        }
    }

    /// `count` rows over `aggregates` aggregates (round robin), each with `{"seq": n}`, n
    /// counting per aggregate from 0; strictly increasing `created_at`. One statement.
    func insertMany(_ count: Int, aggregates: Int, type: String = "User") throws {
        _ = try pg.psql(
            """
            INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, event_data, created_at)
            SELECT gen_random_uuid(), '\(type)', ('00000000-0000-0000-0000-' || lpad(to_hex(i % \(aggregates)), 12, '0'))::uuid,
                   'Seq', jsonb_build_object('seq', i / \(aggregates)), timestamp '2024-01-01' + i * interval '1 millisecond'
            FROM generate_series(0, \(count - 1)) AS i
            """)
    }

    func count(_ condition: String = "true") throws -> Int {
        Int(try pg.psql("SELECT count(*) FROM outbox_events WHERE \(condition)")) ?? -1
    }

    func read(_ topic: String) async throws -> [InboundMessage] {
        try await cluster.inspector().readAll(topic)
    }
}

extension InboundMessage {
    var keyString: String { key.map { String(decoding: $0, as: UTF8.self) } ?? "" }
    var valueString: String { value.map { String(decoding: $0, as: UTF8.self) } ?? "" }
    /// The `seq` of a payload written by `insertMany`.
    var sequence: Int? {
        (try? JSONSerialization.jsonObject(with: Data(value ?? [])) as? [String: Any])?["seq"] as? Int
    }
}

/// Checks the topic's messages against the table: every id at most `duplicatesAllowed`…
enum OutboxAssertions {
    /// Per key, in offset order: the sequence starts at 0, and every step repeats the previous
    /// value (a duplicate) or adds one. So nothing is missing, reordered or skipped.
    static func perAggregateOrder(_ messages: [InboundMessage], expectedPerKey: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        var byKey: [String: [Int]] = [:]
        for message in messages { byKey[message.keyString, default: []].append(message.sequence ?? -1) }
        var violations: [String] = []
        for (key, sequence) in byKey {
            var previous = -1
            for value in sequence {
                if value != previous && value != previous + 1 {
                    violations.append("\(key): \(previous) then \(value)")
                    break
                }
                previous = value
            }
            if previous != expectedPerKey - 1 { violations.append("\(key): ends at \(previous)") }
        }
        #expect(violations.isEmpty, "order violations: \(violations.prefix(5))", sourceLocation: sourceLocation)
    }
}

/// Records what the relay reports.
final class RecordingOutboxObserver: OutboxObserver {
    private struct State {
        var published: [String] = []
        var failures: [(id: String, reason: String, final: Bool)] = []
        var retries = 0
        var backlogs: [OutboxBacklog] = []
    }
    private let state = Mutex(State())

    func published(_ events: [OutboxEvent]) { state.withLock { $0.published += events.map(\.id) } }
    func rowFailed(_ event: OutboxEvent, reason: String, final: Bool) {
        state.withLock { $0.failures.append((event.id, reason, final)) }
    }
    func retrying(attempt: Int, delay: Duration, error: any Error) { state.withLock { $0.retries += 1 } }
    func backlog(_ backlog: OutboxBacklog) { state.withLock { $0.backlogs.append(backlog) } }

    var published: [String] { state.withLock { $0.published } }
    var retries: Int { state.withLock { $0.retries } }
    var failures: [(id: String, reason: String, final: Bool)] { state.withLock { $0.failures } }
}
