import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The transactional outbox relay against a real PostgreSQL and the mock cluster.
@Suite("Outbox relay", .timeLimit(.minutes(10)))
struct OutboxRelayTests {
    @Test("rows of a committed API transaction are published once with key, headers and topic; a rolled-back one publishes nothing")
    func publishesCommittedRowsOnce() async throws {
        let fixture = try await OutboxFixture.start()
        let producer = try fixture.producer()
        let client = fixture.client()
        defer { client.close() }
        let user = "11111111-1111-1111-1111-111111111111"
        let order = "22222222-2222-2222-2222-222222222222"
        let ids = try await fixture.insert([
            ("User", user, "UserRegistered", #"{"user_id": "u1", "email": "ada@example.com"}"#),
            ("Order", order, "OrderPlaced", #"{"total": 12.5}"#),
            ("User", user, "EmailChanged", #"{"user_id": "u1", "new_email": "ada@new.example"}"#),
        ])
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await fixture.api.transaction { connection in
                try connection.execute(
                    """
                    INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, event_data)
                    VALUES (gen_random_uuid(), 'User', $1, 'UserDeleted', '{}')
                    """, [.text(user)])
                throw Abort()
            }
        }
        let mapping = OutboxTopicMapping(topics: ["Order": "order.events"], defaultPattern: "{aggregate_type}.events")
        let relay = fixture.relay(client: client, producer: producer, settings: OutboxFixture.settings(topics: mapping))
        let report = try await relay.drain()
        #expect(report.published == 3)
        #expect(report.failedAttempts == 0)
        #expect(try await relay.drain().claimed == 0)

        let users = try await fixture.read("user.events")
        let orders = try await fixture.read("order.events")
        #expect(users.map { $0.header("ce_id")?.stringValue } == [ids[0], ids[2]])
        #expect(users.map(\.keyString) == [user, user])
        #expect(users.map { $0.header("ce_type")?.stringValue } == ["UserRegistered", "EmailChanged"])
        #expect(users.first?.valueString == #"{"email": "ada@example.com", "user_id": "u1"}"#)  // jsonb's text form
        #expect(orders.map { $0.header("ce_id")?.stringValue } == [ids[1]])
        #expect(orders.first?.keyString == order)
        #expect(orders.first?.header("ce_type")?.stringValue == "OrderPlaced")
        let created = try fixture.pg.psql(
            "SELECT floor(extract(epoch FROM created_at::timestamptz) * 1000)::bigint FROM outbox_events WHERE id = '\(ids[1])'")
        let ceTime = try #require(orders.first?.header("ce_time")?.stringValue)
        #expect(RFC3339.parse(ceTime)?.millisecondsSinceEpoch == Int64(created))
        #expect(try fixture.count() == 3)
        #expect(try fixture.count("status = 'processed' AND processed_at IS NOT NULL") == 3)
        await producer.close()
        await fixture.shutdown()
    }

    @Test("ce_time is created_at truncated to the millisecond, as herald outbox list shows it: never rounded up past the row's time")
    func ceTimeTruncates() async throws {
        let fixture = try await OutboxFixture.start()
        let producer = try fixture.producer()
        let client = fixture.client()
        defer { client.close() }
        // Microseconds that a rounding cast would carry into the next millisecond, and the next second.
        _ = try fixture.pg.psql(
            """
            INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, event_data, created_at) VALUES
              ('00000000-0000-0000-0000-0000000000c1', 'User', '00000000-0000-0000-0000-00000000000c', 'A', '{}',
               timestamp '2024-05-01 12:00:00.242700'),
              ('00000000-0000-0000-0000-0000000000c2', 'User', '00000000-0000-0000-0000-00000000000c', 'B', '{}',
               timestamp '2024-05-01 12:00:00.999600')
            """)
        let relay = fixture.relay(client: client, producer: producer)
        #expect(try await relay.drain().published == 2)
        let times = try await fixture.read("user.events").map { $0.header("ce_time")?.stringValue }
        #expect(times == ["2024-05-01T12:00:00.242Z", "2024-05-01T12:00:00.999Z"])
        let listed = try await PostgresOutboxStore(client: client, layout: fixture.layout, logger: TestLogging.logger("test.outbox"))
            .list(status: nil, limit: 10).map(\.createdAt)
        #expect(listed == times.compactMap { $0 })
        await producer.close()
        await fixture.shutdown()
    }

    @Test("a row held by another relay blocks the later rows of its aggregate, and only those")
    func heldRowBlocksItsAggregate() async throws {
        let fixture = try await OutboxFixture.start()
        let producer = try fixture.producer()
        let client = fixture.client()
        let other = fixture.client()
        defer {
            client.close()
            other.close()
        }
        let x = "00000000-0000-0000-0000-00000000000a"
        let y = "00000000-0000-0000-0000-00000000000b"
        let ids = try await fixture.insert([
            ("User", x, "First", #"{"seq": 0}"#), ("User", y, "Only", #"{"seq": 0}"#), ("User", x, "Second", #"{"seq": 1}"#),
        ])
        let relay = fixture.relay(client: client, producer: producer)
        // Another replica has claimed x's first row and is waiting for the broker.
        try await other.transaction(spanning: { transaction in
            try await transaction.execute { connection in
                try connection.execute("SELECT id FROM outbox_events WHERE id = $1 FOR UPDATE", [.text(ids[0])])
            }
            let report = try await relay.drain()
            #expect(report.published == 1)
            #expect(try await fixture.read("user.events").map { $0.header("ce_id")?.stringValue } == [ids[1]])
            // It publishes x's first row and marks it processed in the same transaction.
            try await transaction.execute { connection in
                try connection.execute("UPDATE outbox_events SET status = 'processed' WHERE id = $1", [.text(ids[0])])
            }
        })
        #expect(try await relay.drain().published == 1)
        // x and y may be on different partitions, which are read in no particular order.
        let published = try await fixture.read("user.events").compactMap { $0.header("ce_id")?.stringValue }
        #expect(published.count == 2)
        #expect(Set(published) == [ids[1], ids[2]])
        await producer.close()
        await fixture.shutdown()
    }

    @Test("two relays at once over 10,000 rows: every row published exactly once, per-aggregate order kept")
    func twoRelaysExactlyOnce() async throws {
        let fixture = try await OutboxFixture.start(partitions: 8)
        let rows = 10_000
        let aggregates = 400
        try fixture.insertMany(rows, aggregates: aggregates)
        let (clientA, clientB) = (fixture.client(), fixture.client())
        let (producerA, producerB) = (try fixture.producer(), try fixture.producer())
        let relayA = fixture.relay(client: clientA, producer: producerA, settings: OutboxFixture.settings(batchSize: 150))
        let relayB = fixture.relay(client: clientB, producer: producerB, settings: OutboxFixture.settings(batchSize: 150))
        async let a = relayA.drain()
        async let b = relayB.drain()
        let (reportA, reportB) = try await (a, b)
        #expect(reportA.published + reportB.published == rows)
        #expect(reportA.published > 0 && reportB.published > 0, "A \(reportA.published), B \(reportB.published)")
        #expect(try fixture.count("status = 'processed'") == rows)

        let messages = try await fixture.read("user.events")
        let ids = messages.compactMap { $0.header("ce_id")?.stringValue }
        #expect(messages.count == rows)
        #expect(Set(ids).count == rows)
        let tableIDs = Set(try fixture.pg.psql("SELECT id FROM outbox_events").split(separator: "\n").map(String.init))
        #expect(Set(ids) == tableIDs)
        OutboxAssertions.perAggregateOrder(messages, expectedPerKey: rows / aggregates)
        clientA.close()
        clientB.close()
        await producerA.close()
        await producerB.close()
        await fixture.shutdown()
    }

    @Test(
        "few aggregates: one batch takes an aggregate's rows after its head and publishes them in order; two relays still once and in order"
    )
    func fewAggregates() async throws {
        let fixture = try await OutboxFixture.start(partitions: 4)
        try fixture.insertMany(400, aggregates: 10)
        let client = fixture.client()
        let producer = try fixture.producer()
        let relay = fixture.relay(client: client, producer: producer, settings: OutboxFixture.settings(batchSize: 500))
        // One claim: the 10 heads and the 390 rows behind them.
        #expect(try await relay.relayBatch().published == 400)
        #expect(try fixture.count("status = 'processed'") == 400)
        OutboxAssertions.perAggregateOrder(try await fixture.read("user.events"), expectedPerKey: 40)

        // Two relays over rows of 10 other aggregates (type Order: order.events), small batches:
        // each aggregate's rows go to one relay at a time, every row once, in order.
        try fixture.insertMany(2_000, aggregates: 10, type: "Order")
        let other = fixture.client()
        let otherProducer = try fixture.producer()
        let relayA = fixture.relay(client: client, producer: producer, settings: OutboxFixture.settings(batchSize: 60))
        let relayB = fixture.relay(client: other, producer: otherProducer, settings: OutboxFixture.settings(batchSize: 60))
        async let a = relayA.drain()
        async let b = relayB.drain()
        let (reportA, reportB) = try await (a, b)
        #expect(reportA.published + reportB.published == 2_000)
        #expect(try fixture.count("status = 'processed'") == 2_400)
        let messages = try await fixture.read("order.events")
        #expect(messages.count == 2_000)
        #expect(Set(messages.compactMap { $0.header("ce_id")?.stringValue }).count == 2_000)
        OutboxAssertions.perAggregateOrder(messages, expectedPerKey: 200)
        client.close()
        other.close()
        await producer.close()
        await otherProducer.close()
        await fixture.shutdown()
    }

    @Test("broker down mid-run: nothing is marked while it is down, nothing is lost, duplicates keep their ce_id")
    func brokerDown() async throws {
        let fixture = try await OutboxFixture.start()
        let rows = 3_000
        try fixture.insertMany(rows, aggregates: 100)
        let producer = try fixture.producer(["message.timeout.ms": "800", "retry.backoff.ms": "50"])
        let client = fixture.client()
        defer { client.close() }
        let observer = RecordingOutboxObserver()
        let relay = fixture.relay(client: client, producer: producer, settings: OutboxFixture.settings(batchSize: 50), observer: observer)
        // Unreachable for the producer (every response later than its 800 ms timeout), without
        // closing the mock broker's listener: bringing it back up would rebind its port.
        fixture.cluster.broker.setRoundTripTime(milliseconds: 10_000)
        let drain = Task { try await relay.drainRetrying() }
        try await TestCluster.eventually("the relay retrying") { observer.retries >= 1 }
        let processedWhileDown = try fixture.count("status <> 'pending'")
        try await TestCluster.eventually("two more failed attempts") { observer.retries >= 3 }
        #expect(try fixture.count("status <> 'pending'") == processedWhileDown)
        #expect(observer.published.isEmpty)
        fixture.cluster.broker.setRoundTripTime(milliseconds: 0)
        let report = try await drain.value
        #expect(report.published == rows)
        #expect(try fixture.count("status = 'processed'") == rows)

        let messages = try await fixture.read("user.events")
        let ids = messages.compactMap { $0.header("ce_id")?.stringValue }
        #expect(Set(ids).count == rows)
        #expect(ids.count >= rows)
        OutboxAssertions.perAggregateOrder(messages, expectedPerKey: rows / 100)
        await producer.close()
        await fixture.shutdown()
    }

    @Test(
        "the database connection lost between the broker's acknowledgement and the commit: the batch stays pending and goes out again, same ce_id, in order"
    )
    func databaseLostAfterPublish() async throws {
        let fixture = try await OutboxFixture.start()
        try fixture.insertMany(40, aggregates: 4)
        let producer = try fixture.producer()
        let client = fixture.client()
        defer { client.close() }
        // The first batch is acknowledged by the broker, then the relay's session is ended
        // before its claiming transaction commits (as a PostgreSQL restart does).
        let publisher = CuttingPublisher(inner: KafkaOutboxPublisher(producer: producer)) {
            _ = try? fixture.pg.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
        }
        let relay = OutboxRelay(
            store: PostgresOutboxStore(client: client, layout: fixture.layout, logger: TestLogging.logger("test.outbox")),
            publisher: publisher, settings: OutboxFixture.settings(batchSize: 4), logger: TestLogging.logger("test.outbox"))
        await #expect(throws: (any Error).self) { try await relay.relayBatch() }
        #expect(try fixture.count("status = 'pending'") == 40, "nothing marked")
        let published = try await fixture.read("user.events")
        #expect(published.count == 4, "the batch did go out")

        #expect(try await relay.drainRetrying().published == 40)
        #expect(try fixture.count("status = 'processed'") == 40)
        let messages = try await fixture.read("user.events")
        let ids = messages.compactMap { $0.header("ce_id")?.stringValue }
        #expect(ids.count == 44 && Set(ids).count == 40, "the first batch twice, with the same ce_id")
        OutboxAssertions.perAggregateOrder(messages, expectedPerKey: 10)
        await producer.close()
        await fixture.shutdown()
    }

    @Test("poison rows end failed with a reason after N attempts; other aggregates go on; later rows of theirs wait until retried")
    func poisonRows() async throws {
        // A table with other names and a text payload column.
        let table = """
            CREATE SCHEMA api;
            CREATE TABLE api.events_outbox (
                event_id uuid PRIMARY KEY, kind text NOT NULL, agg text NOT NULL, type text NOT NULL, payload text NOT NULL,
                state text NOT NULL DEFAULT 'pending', attempts integer NOT NULL DEFAULT 0,
                created timestamptz NOT NULL DEFAULT clock_timestamp(), done_at timestamptz, last_error text)
            """
        let layout = OutboxTableLayout(
            schema: "api", table: "events_outbox",
            renamed: [
                .id: "event_id", .aggregateType: "kind", .aggregateID: "agg", .eventType: "type", .eventData: "payload",
                .status: "state", .retryCount: "attempts", .createdAt: "created", .processedAt: "done_at", .errorMessage: "last_error",
            ])
        let fixture = try await OutboxFixture.start(table: table, layout: layout)
        let big = #"{"blob": ""# + String(repeating: "x", count: 1_100_000) + #""}"#
        let rows: [(String, String, String)] = [
            ("Mystery", "a1", "{}"), ("User", "a1", #"{"after": "mystery"}"#),
            ("User", "a2", "not json {"), ("User", "a2", "{}"),
            ("User", "a3", big), ("User", "a3", "{}"),
            ("User", "a4", #"{"seq": 0}"#), ("User", "a4", #"{"seq": 1}"#), ("User", "a4", #"{"seq": 2}"#),
        ]
        let ids = try await fixture.api.transaction { connection in
            try rows.map { row in
                try connection.execute(
                    "INSERT INTO api.events_outbox (event_id, kind, agg, type, payload) VALUES (gen_random_uuid(), $1, $2, 'T', $3) RETURNING event_id::text AS id",
                    [.text(row.0), .text(row.1), .text(row.2)]
                ).string(0, "id")!
            }
        }
        let producer = try fixture.producer()
        let client = fixture.client()
        defer { client.close() }
        let noDefault = OutboxTopicMapping(topics: ["User": "user.events"], defaultPattern: nil)
        let observer = RecordingOutboxObserver()
        let relay = fixture.relay(
            client: client, producer: producer, settings: OutboxFixture.settings(maxAttempts: 2, topics: noDefault), observer: observer)
        let report = try await relay.drain()
        #expect(report.published == 3)
        #expect(report.failed == 3)
        #expect(report.failedAttempts == 6)

        func row(_ id: String) throws -> String {
            try fixture.pg.psql(
                "SELECT state || '|' || attempts || '|' || coalesce(last_error, '') FROM api.events_outbox WHERE event_id = '\(id)'")
        }
        #expect(try row(ids[0]).hasPrefix("failed|2|no topic for aggregate type \"Mystery\""))
        #expect(try row(ids[2]).hasPrefix("failed|2|event_data is not valid JSON"))
        #expect(try row(ids[4]).hasPrefix("failed|2|the message would be"))
        for waiting in [ids[1], ids[3], ids[5]] { #expect(try row(waiting) == "pending|0|") }
        let published = try await fixture.read("user.events")
        #expect(published.map { $0.header("ce_id")?.stringValue } == Array(ids[6...8]))
        #expect(observer.failures.filter(\.final).count == 3)
        let backlog = try await PostgresOutboxStore(client: client, layout: layout, logger: TestLogging.logger("t")).backlog()
        #expect(backlog == OutboxBacklog(failedRows: 3, blockedAggregates: 3, waitingRows: 3))

        // The operator maps the type and retries the row: a1 goes on, in order.
        let store = PostgresOutboxStore(client: client, layout: layout, logger: TestLogging.logger("t"))
        #expect(try await store.retry(ids: [ids[0]], notify: "herald_outbox") == 1)
        let fixed = OutboxTopicMapping(topics: ["User": "user.events", "Mystery": "order.events"], defaultPattern: nil)
        let second = try await fixture.relay(client: client, producer: producer, settings: OutboxFixture.settings(topics: fixed)).drain()
        #expect(second.published == 2)
        #expect(try await fixture.read("order.events").map { $0.header("ce_id")?.stringValue } == [ids[0]])
        let users = try await fixture.read("user.events").compactMap { $0.header("ce_id")?.stringValue }
        #expect(users.count == 4 && users.contains(ids[1]))
        await producer.close()
        await fixture.shutdown()
    }

    @Test("the installed trigger's NOTIFY reaches the LISTEN connection, which wakes the relay long before its poll")
    func notifyWakesRelay() async throws {
        let fixture = try await OutboxFixture.start()
        let client = fixture.client()
        defer { client.close() }
        let applied = try await PostgresMigrator(
            client: client, schema: OutboxTriggerSchema.defaultSchema,
            migrations: OutboxTriggerSchema.migrations(layout: fixture.layout, channel: "herald_outbox"),
            logger: TestLogging.logger("t")
        ).migrate()
        #expect(applied.count == 2)
        #expect(
            try fixture.pg.psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'outbox_events' AND indexname LIKE 'herald_%'") == "3")

        let producer = try fixture.producer()
        let observer = RecordingOutboxObserver()
        let relay = fixture.relay(client: client, producer: producer, observer: observer)
        let wakeup = Doorbell()
        let notifications = Atomic<Int>(0)
        let listener = PostgresListener(
            conninfo: fixture.pg.url, channel: "herald_outbox", logger: TestLogging.logger("t"),
            onNotify: {
                notifications.add(1, ordering: .relaxed)
                wakeup.ring()
            })
        listener.start()
        let running = Task { try await relay.run(wakeup: wakeup, pollInterval: .seconds(3600)) }
        // The first call comes when the LISTEN is in place.
        try await TestCluster.eventually("listening") { notifications.load(ordering: .relaxed) >= 1 }
        let before = notifications.load(ordering: .relaxed)
        let ids = try await fixture.insert([("User", "00000000-0000-0000-0000-000000000001", "E", "{}")])
        try await TestCluster.eventually("a notification") { notifications.load(ordering: .relaxed) > before }
        try await TestCluster.eventually("published") { observer.published == ids }
        running.cancel()
        _ = try? await running.value
        await listener.stop()
        await producer.close()
        await fixture.shutdown()
    }

    @Test("retention deletes only processed rows older than the age, in small batches")
    func retention() async throws {
        let fixture = try await OutboxFixture.start()
        let client = fixture.client()
        defer { client.close() }
        try fixture.insertMany(20, aggregates: 20)
        _ = try fixture.pg.psql(
            """
            UPDATE outbox_events SET status = 'processed', processed_at = now() - interval '10 days'
            WHERE (event_data->>'seq')::int = 0 AND aggregate_id::text < '00000000-0000-0000-0000-00000000000a'
            """)
        _ = try fixture.pg.psql(
            "UPDATE outbox_events SET status = 'processed', processed_at = now() WHERE status = 'pending' AND aggregate_id::text >= '00000000-0000-0000-0000-00000000000f'"
        )
        _ = try fixture.pg.psql(
            "UPDATE outbox_events SET status = 'failed', created_at = now() - interval '30 days' WHERE status = 'pending' AND aggregate_id::text >= '00000000-0000-0000-0000-00000000000c'"
        )
        let store = PostgresOutboxStore(client: client, layout: fixture.layout, logger: TestLogging.logger("t"))
        #expect(try await store.deleteProcessed(olderThan: .seconds(7 * 86_400), batchSize: 3) == 10)
        #expect(try fixture.count() == 10)
        #expect(try fixture.count("status = 'processed'") == 5)
        #expect(try fixture.count("status = 'failed'") == 3)
        await fixture.shutdown()
    }
}

/// Publishes through `inner`, then, once, runs `cut` (which ends the relay's database session)
/// before returning the acknowledgements.
final class CuttingPublisher: OutboxPublisher {
    let inner: any OutboxPublisher
    let cut: @Sendable () -> Void
    private let done = Mutex(false)

    init(inner: any OutboxPublisher, cut: @escaping @Sendable () -> Void) {
        self.inner = inner
        self.cut = cut
    }

    func publish(_ messages: [OutboxMessage]) async throws -> [String?] {
        let result = try await inner.publish(messages)
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        if first { cut() }
        return result
    }
}
