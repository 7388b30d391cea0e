import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import HeraldRedis
import Testing

/// The PostgreSQL inbox and recipients against a real server.
@Suite("Inbox and recipients in PostgreSQL", .timeLimit(.minutes(10)))
struct InboxTests {
    static func database(_ pg: PostgresServer) async throws -> (PostgresClient, PostgresEventInbox) {
        let client = PostgresClient(conninfo: pg.url, poolSize: 4, connectTimeout: .seconds(2), logger: TestLogging.logger("test.pg"))
        try await PostgresMigrator(
            client: client, schema: "herald", migrations: HeraldSchema.migrations, logger: TestLogging.logger("test.pg")
        ).migrate()
        return (client, PostgresEventInbox(client: client, schema: "herald", logger: TestLogging.logger("test.inbox")))
    }

    static func accepted(_ body: String, offset: Int64 = 0, partition: Int32 = 0) throws -> AcceptedEvent {
        let dispatcher = EventDispatcher(handlers: StandardHandlers.all)
        let message = InboundMessage(topic: "auth_service_topic", partition: partition, offset: offset, value: Array(body.utf8))
        guard case .accept(let event) = dispatcher.decide(message) else {
            Issue.record("not accepted: \(body)")
            throw CancellationError()
        }
        return event
    }

    static func registered(_ id: String, user: String, email: String, name: String, at: String) throws -> AcceptedEvent {
        try accepted(
            #"{"event_type":"UserRegistered","event_id":"\#(id)","user_id":"\#(user)","username":"\#(name)","email":"\#(email)","occurred_at":"\#(at)"}"#
        )
    }

    @Test("an event is recorded once per consumer group; a redelivery changes nothing")
    func recordsOnce() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await Self.database(pg)
        defer { client.close() }
        let first = try Self.registered("e1", user: "u1", email: "ada@example.com", name: "ada", at: "2024-01-01T00:00:00Z")
        let second = try Self.registered("e2", user: "u2", email: "bob@example.com", name: "bob", at: "2024-01-01T00:00:00Z")

        #expect(try await inbox.record([first, second], consumerGroup: "g").count == 2)
        #expect(try await inbox.record([first, second], consumerGroup: "g").isEmpty)
        #expect(try await inbox.record([first], consumerGroup: "other-group").count == 1)
        #expect(try pg.psql("SELECT count(*) FROM herald.processed_events") == "3")
        #expect(try pg.psql("SELECT email || ' ' || username FROM herald.recipients WHERE user_id = 'u1'") == "ada@example.com ada")
    }

    @Test("the same event on two partitions at once is applied once")
    func concurrentDuplicates() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await Self.database(pg)
        defer { client.close() }
        let events = try (0..<200).map { i in
            try Self.registered("dup-\(i)", user: "u\(i)", email: "u\(i)@example.com", name: "user\(i)", at: "2024-01-01T00:00:00Z")
        }
        async let a = inbox.record(events, consumerGroup: "g")
        async let b = inbox.record(events.reversed(), consumerGroup: "g")
        let (ra, rb) = try await (a, b)
        #expect(ra.count + rb.count == 200)
        #expect(ra.isDisjoint(with: rb))
        #expect(try pg.psql("SELECT count(*) FROM herald.processed_events") == "200")
        #expect(try pg.psql("SELECT count(*) FROM herald.recipients") == "200")
    }

    @Test("out-of-order recipient events never overwrite newer data with older data")
    func outOfOrder() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await Self.database(pg)
        defer { client.close() }
        let changed = try Self.accepted(
            #"{"event_type":"EmailChanged","event_id":"c1","user_id":"u1","old_email":"ada@example.com","new_email":"ada@new.example","occurred_at":"2024-02-01T00:00:00Z"}"#
        )
        let registered = try Self.registered("r1", user: "u1", email: "ada@example.com", name: "ada", at: "2024-01-01T00:00:00Z")
        _ = try await inbox.record([changed], consumerGroup: "g")
        _ = try await inbox.record([registered], consumerGroup: "g")
        // The newer address stays; the older event still fills the name it alone knew.
        #expect(try pg.psql("SELECT email || ' ' || username FROM herald.recipients WHERE user_id = 'u1'") == "ada@new.example ada")

        let olderChange = try Self.accepted(
            #"{"event_type":"EmailChanged","event_id":"c0","user_id":"u1","old_email":"x@example.com","new_email":"old@example.com","occurred_at":"2024-01-15T00:00:00Z"}"#
        )
        _ = try await inbox.record([olderChange], consumerGroup: "g")
        #expect(try pg.psql("SELECT email FROM herald.recipients WHERE user_id = 'u1'") == "ada@new.example")

        let deleted = try Self.accepted(
            #"{"event_type":"UserDeleted","event_id":"d1","user_id":"u1","occurred_at":"2024-03-01T00:00:00Z"}"#)
        let lateRegistration = try Self.registered("r0", user: "u1", email: "ada@example.com", name: "ada", at: "2023-12-01T00:00:00Z")
        _ = try await inbox.record([deleted], consumerGroup: "g")
        _ = try await inbox.record([lateRegistration], consumerGroup: "g")
        #expect(try pg.psql("SELECT deleted_at IS NOT NULL FROM herald.recipients WHERE user_id = 'u1'") == "t")
    }

    @Test(
        "mail is queued once per event and kind (also for another group after an address change); deleted recipients get nothing; no address is permanent"
    )
    func queuesMail() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await Self.database(pg)
        defer { client.close() }
        let mail = EventDispatcher(handlers: [RecipientHandler(), MailHandler()])
        func event(_ body: String) throws -> AcceptedEvent {
            guard
                case .accept(let e) = mail.decide(
                    InboundMessage(topic: "auth_service_topic", partition: 0, offset: 0, value: Array(body.utf8)))
            else { throw CancellationError() }
            return e
        }
        _ = try await inbox.record(
            [try Self.registered("r1", user: "u1", email: "ada@example.com", name: "ada", at: "2024-01-01T00:00:00Z")], consumerGroup: "g")
        let change = try event(
            #"{"event_type":"EmailChangeRequested","event_id":"c1","user_id":"u1","old_email":"ada@example.com","new_email":"ada@new.example"}"#
        )
        _ = try await inbox.record([change], consumerGroup: "g")
        _ = try await inbox.record([change], consumerGroup: "other")  // another group: the unique key still holds
        #expect(
            try pg.psql("SELECT string_agg(kind || '>' || recipient || '>' || status, ',' ORDER BY kind) FROM herald.notifications")
                == "email_change_confirm>ada@new.example>queued,email_change_requested>ada@example.com>queued")
        // The stored address is used when the event has none.
        _ = try await inbox.record(
            [try event(#"{"event_type":"PasswordResetRequested","event_id":"p1","user_id":"u1"}"#)], consumerGroup: "g")
        #expect(
            try pg.psql("SELECT recipient || ' ' || address_from FROM herald.notifications WHERE kind = 'password_reset'")
                == "ada@example.com user")
        // Mail is unique per (event, kind): the same reset read by another group after the
        // address changed queues nothing new (its address is taken when it is sent).
        _ = try await inbox.record(
            [
                try event(
                    #"{"event_type":"EmailChanged","event_id":"e1","user_id":"u1","old_email":"ada@example.com","new_email":"ada@elsewhere.example"}"#
                )
            ], consumerGroup: "g")
        _ = try await inbox.record(
            [try event(#"{"event_type":"PasswordResetRequested","event_id":"p1","user_id":"u1"}"#)], consumerGroup: "other")
        #expect(try pg.psql("SELECT count(*) FROM herald.notifications WHERE kind = 'password_reset'") == "1")
        // Deleted: nothing queued.
        _ = try await inbox.record([try event(#"{"event_type":"UserDeleted","event_id":"d1","user_id":"u1"}"#)], consumerGroup: "g")
        _ = try await inbox.record(
            [try event(#"{"event_type":"PasswordResetRequested","event_id":"p2","user_id":"u1"}"#)], consumerGroup: "g")
        #expect(try pg.psql("SELECT count(*) FROM herald.notifications WHERE event_id = 'p2'") == "0")
        // Unknown user, no address: the event's own content fails (it is dead-lettered), and
        // nothing of the batch is kept.
        await #expect(throws: EventContentError.self) {
            _ = try await inbox.record(
                [try event(#"{"event_type":"PasswordResetRequested","event_id":"p3","user_id":"nobody"}"#)], consumerGroup: "g")
        }
        #expect(try pg.psql("SELECT count(*) FROM herald.processed_events WHERE event_id = 'p3'") == "0")
    }

    @Test(
        "a batch's effects, applied in runs (one statement per kind of change, one read, one insert), leave the recipients and mail one event at a time would"
    )
    func batchedEffectsMatchOneAtATime() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let client = PostgresClient(conninfo: pg.url, poolSize: 2, connectTimeout: .seconds(2), logger: TestLogging.logger("test.pg"))
        defer { client.close() }
        // One reset and one confirmation per address and hour: the shared address is limited.
        let policy = MailPolicy(rateLimits: [
            .passwordReset: MailRateLimit(count: 1, window: .seconds(3600)),
            .emailChangeConfirm: MailRateLimit(count: 1, window: .seconds(3600)),
        ])
        func inbox(_ schema: String) async throws -> PostgresEventInbox {
            try await PostgresMigrator(
                client: client, schema: schema, migrations: HeraldSchema.migrations, logger: TestLogging.logger("test.pg")
            )
            .migrate()
            return PostgresEventInbox(client: client, schema: schema, mailPolicy: policy, logger: TestLogging.logger("test.inbox"))
        }
        let together = try await inbox("together")
        let alone = try await inbox("alone")

        // 30 users registered, then 400 events about them in a fixed pseudo-random order:
        // address changes (some to one shared address, which the rate limits count across
        // users), deletions, resets and registrations again, dated 5 minutes, 10 hours or 40
        // hours ago (so some mail expires, none near a limit), out of order.
        let mail = EventDispatcher(handlers: [RecipientHandler(), MailHandler()])
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        let now = Date()
        func at() -> String {
            let age = [300.0, 36_000, 144_000][next(3)] + Double(next(60))
            return ISO8601DateFormatter().string(from: now.addingTimeInterval(-age))
        }
        func address() -> String { next(4) == 0 ? "shared@example.com" : "a\(next(1000))@example.com" }
        var bodies: [String] = (0..<30).map { u in
            #"{"event_type":"UserRegistered","event_id":"reg-\#(u)","user_id":"u\#(u)","username":"user\#(u)","email":"u\#(u)@example.com","occurred_at":"\#(at())"}"#
        }
        for i in 0..<400 {
            let user = "u\(next(30))"
            switch next(6) {
            case 0:
                bodies.append(
                    #"{"event_type":"EmailChangeRequested","event_id":"e\#(i)","user_id":"\#(user)","old_email":"\#(address())","new_email":"\#(address())","occurred_at":"\#(at())"}"#
                )
            case 1:
                bodies.append(
                    #"{"event_type":"EmailChanged","event_id":"e\#(i)","user_id":"\#(user)","old_email":"\#(address())","new_email":"\#(address())","occurred_at":"\#(at())"}"#
                )
            case 2:
                bodies.append(#"{"event_type":"UserDeleted","event_id":"e\#(i)","user_id":"\#(user)","occurred_at":"\#(at())"}"#)
            case 3:
                bodies.append(
                    #"{"event_type":"UserRegistered","event_id":"e\#(i)","user_id":"\#(user)","username":"n\#(i)","email":"\#(address())","occurred_at":"\#(at())"}"#
                )
            default:
                bodies.append(#"{"event_type":"PasswordResetRequested","event_id":"e\#(i)","user_id":"\#(user)","occurred_at":"\#(at())"}"#)
            }
        }
        let events = try bodies.enumerated().map { offset, body in
            guard
                case .accept(let event) = mail.decide(
                    InboundMessage(topic: "auth_service_topic", partition: 0, offset: Int64(offset), value: Array(body.utf8)))
            else { throw CancellationError() }
            return event
        }
        #expect(try await together.record(events, consumerGroup: "g").count == events.count)
        for event in events { _ = try await alone.record([event], consumerGroup: "g") }

        func state(_ schema: String) throws -> [String] {
            [
                try pg.psql(
                    """
                    SELECT string_agg(concat_ws('|', user_id, email, username, locale, deleted_at, updated_at), ',' ORDER BY user_id)
                    FROM \(schema).recipients
                    """),
                try pg.psql(
                    """
                    SELECT string_agg(concat_ws('|', event_id, kind, user_id, recipient, address_from, event_email, locale, variables,
                        requested_at, status, regexp_replace(last_error, ', [^:]* ago', ''), attempts), ',' ORDER BY event_id, kind)
                    FROM \(schema).notifications
                    """),
                try pg.psql(
                    "SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM (SELECT status, count(*) n FROM \(schema).notifications GROUP BY status) s"
                ),
            ]
        }
        let (batched, single) = (try state("together"), try state("alone"))
        #expect(batched[0] == single[0], "recipients differ")
        #expect(batched[1] == single[1], "notifications differ")
        // The workload reaches every path: queued, expired, suppressed (the shared address).
        #expect(single[2].contains("queued:") && single[2].contains("expired:") && single[2].contains("suppressed:"), "\(single[2])")
    }

    @Test("rows past the retention are pruned in batches; newer ones stay")
    func prune() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await Self.database(pg)
        defer { client.close() }
        let events = try (0..<30).map { i in
            try Self.registered("p\(i)", user: "u\(i)", email: "u\(i)@example.com", name: "user\(i)", at: "2024-01-01T00:00:00Z")
        }
        _ = try await inbox.record(events, consumerGroup: "g")
        _ = try pg.psql("UPDATE herald.processed_events SET processed_at = now() - interval '20 days' WHERE event_id <> 'p0'")
        #expect(try await inbox.prune(olderThan: .seconds(14 * 86_400), batchSize: 7) == 29)
        #expect(try pg.psql("SELECT string_agg(event_id, ',') FROM herald.processed_events") == "p0")
    }
}

/// Kafka (mock cluster) → dispatch → Redis and PostgreSQL, with bad input and a database outage.
@Suite("Events to PostgreSQL", .timeLimit(.minutes(10)))
struct PostgresPipelineTests {
    @Test("SQL-looking strings are stored verbatim; NUL bytes, invalid UTF-8, over-long values and bad addresses go to the DLQ")
    func hostileInput() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let redis = try await RedisServer.start()
        defer { redis.shutdown() }
        let (client, inbox) = try await InboxTests.database(pg)
        defer { client.close() }
        let cluster = try TestCluster(partitions: 1)
        let sneaky = "'; DROP TABLE herald.recipients; --"
        let good = TestCluster.event(
            ["event_type": "UserRegistered", "event_id": "ok", "user_id": "u1", "username": sneaky, "email": "o'hara@example.com"],
            key: "u1")
        let topic = TestCluster.authTopic
        func raw(_ s: String) -> OutboundRecord { OutboundRecord(topic: topic, key: Array("k".utf8), value: Array(s.utf8)) }
        var invalidUTF8 = Array(#"{"event_type":"UserRegistered","user_id":"u2","username":"a"#.utf8)
        invalidUTF8 += [0xC3, 0x28]
        invalidUTF8 += Array(#"","email":"a@example.com"}"#.utf8)
        let bad: [(OutboundRecord, Rejection.Class)] = [
            (raw(#"{"event_type":"UserRegistered","user_id":"u3","username":"nul\u0000byte","email":"n@example.com"}"#), .validationFailed),
            (OutboundRecord(topic: topic, key: nil, value: invalidUTF8), .notJSON),
            (
                raw(
                    #"{"event_type":"UserRegistered","user_id":"u4","username":"\#(String(repeating: "x", count: 151))","email":"l@example.com"}"#
                ), .validationFailed
            ),
            (raw(#"{"event_type":"UserRegistered","user_id":"u5","username":"bob","email":"not an address"}"#), .validationFailed),
            (
                raw(
                    #"{"event_type":"EmailChanged","user_id":"u6","old_email":"a@example.com","new_email":"b@example.com\r\nBcc: c@example.com"}"#
                ), .validationFailed
            ),
        ]
        try await cluster.send([good] + bad.map(\.0))
        let store = RedisRevocationStore(
            client: RedisClient(endpoint: try RedisEndpoint(url: redis.url), logger: TestLogging.logger("test.redis")),
            roleInvalidationTTL: .seconds(60), userRevocationTTL: .seconds(60), logger: TestLogging.logger("test.redis"))
        let consumer = try TestConsumer(
            cluster: cluster, group: "g-hostile",
            applier: InboxEffectApplier(inbox: inbox, revocations: RevocationEffectApplier(store: store), consumerGroup: "g-hostile"),
            handlers: StandardHandlers.all)
        let inspector = try cluster.inspector()
        var letters: [InboundMessage] = []
        try await TestCluster.eventually("dead letters") {
            letters = try await inspector.readAll(topic + ".dlq")
            return letters.count >= bad.count
        }
        try await TestCluster.eventually("the good event") { (try pg.psql("SELECT count(*) FROM herald.recipients")) == "1" }
        try await consumer.stop()
        #expect(try pg.psql("SELECT username FROM herald.recipients WHERE user_id = 'u1'") == sneaky)
        #expect(try pg.psql("SELECT email FROM herald.recipients WHERE user_id = 'u1'") == "o'hara@example.com")
        #expect(letters.map { $0.header("herald.error.class")?.stringValue ?? "" } == bad.map(\.1.rawValue))
    }

    @Test("PostgreSQL stopped and restarted mid-stream: nothing dead-lettered, every event applied exactly once")
    func databaseOutage() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await InboxTests.database(pg)
        defer { client.close() }
        let cluster = try TestCluster(partitions: 2)
        let applier = InboxEffectApplier(
            inbox: inbox, revocations: RevocationEffectApplier(store: NoRevocations()), consumerGroup: "g-pg-outage")
        let consumer = try TestConsumer(
            cluster: cluster, group: "g-pg-outage", applier: applier, backoff: Backoff(initial: .milliseconds(50), cap: .milliseconds(500)),
            handlers: StandardHandlers.all)
        func registrations(_ range: Range<Int>) -> [OutboundRecord] {
            range.map { i in
                TestCluster.event(
                    [
                        "event_type": "UserRegistered", "event_id": "reg-\(i)", "user_id": "u\(i)", "username": "user\(i)",
                        "email": "u\(i)@example.com",
                    ],
                    key: "u\(i)")
            }
        }
        try await cluster.send(registrations(0..<100))
        try await TestCluster.eventually("first events") { (try pg.psql("SELECT count(*) FROM herald.processed_events")) == "100" }
        try await pg.stop()
        try await cluster.send(registrations(100..<400))
        // Redeliver some of the earlier ones too: they must not be applied twice.
        try await cluster.send(registrations(50..<80))
        try await Task.sleep(for: .seconds(2))
        try await pg.start()
        try await TestCluster.eventually("all events after the outage", timeout: .seconds(180)) {
            (try? pg.psql("SELECT count(*) FROM herald.processed_events")) == "400"
        }
        try await Task.sleep(for: .milliseconds(500))
        try await consumer.stop()
        #expect(try pg.psql("SELECT count(*) FROM herald.recipients") == "400")
        #expect(try pg.psql("SELECT count(*) FROM herald.processed_events") == "400")
        #expect(try await cluster.inspector().readAll(TestCluster.authTopic + ".dlq").isEmpty)
    }
}

/// A revocation store that does nothing (the database is under test).
struct NoRevocations: RevocationStore {
    func advance(_ marks: [RevocationMark]) async throws {}
}
