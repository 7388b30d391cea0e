import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import HeraldPostgres
import Synchronization
import Testing

/// Mail outcomes as events (HERALD_MAIL_EVENTS_ENABLED): each status change writes its
/// `MailStatusChanged` row to `mail_outbox` in the statement that changes the status, against
/// a real PostgreSQL, Redis and SMTP server; then the outbox relay publishes the table.
@Suite("Mail events: outcomes in mail_outbox, relayed", .timeLimit(.minutes(10)))
struct MailEventTests {
    /// One `mail_outbox` row, its payload parsed.
    struct Row {
        let aggregateType: String
        let aggregateID: String
        let eventType: String
        let status: String
        let raw: String
        let data: [String: Any]

        func string(_ key: String) -> String? { data[key] as? String }
        func int(_ key: String) -> Int? { data[key] as? Int }
    }

    /// The fields a payload may carry: nothing else (no address, no token, no text).
    static let allowedKeys: Set<String> = [
        "version", "notification_id", "kind", "user_id", "event_id", "status", "attempts", "reply_code", "reply_class",
        "enhanced_status", "occurred_at",
    ]

    /// `mail_outbox`, oldest first.
    static func rows(_ pg: PostgresServer) throws -> [Row] {
        let json = try pg.psql(
            """
            SELECT coalesce(json_agg(json_build_object('aggregate_type', aggregate_type, 'aggregate_id', aggregate_id,
                'event_type', event_type, 'status', status, 'data', event_data::text) ORDER BY created_at, id), '[]')
            FROM herald.mail_outbox
            """)
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        return try array.map { row in
            let raw = try #require(row["data"] as? String)
            return Row(
                aggregateType: row["aggregate_type"] as? String ?? "", aggregateID: row["aggregate_id"] as? String ?? "",
                eventType: row["event_type"] as? String ?? "", status: row["status"] as? String ?? "", raw: raw,
                data: try #require(try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any]))
        }
    }

    static func notificationID(_ pg: PostgresServer, event: String) throws -> String {
        try pg.psql("SELECT id FROM herald.notifications WHERE event_id = '\(event)'")
    }

    /// The fields every row has, for the notification of `event`.
    static func expectRow(
        _ row: Row, _ pg: PostgresServer, event: String, user: String, kind: NotificationKind, status: String, attempts: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let id = try notificationID(pg, event: event)
        #expect(row.aggregateType == "Notification", sourceLocation: sourceLocation)
        #expect(row.aggregateID == id, sourceLocation: sourceLocation)
        #expect(row.eventType == "MailStatusChanged", sourceLocation: sourceLocation)
        #expect(row.status == "pending", sourceLocation: sourceLocation)
        #expect(row.int("version") == 1, sourceLocation: sourceLocation)
        #expect(row.string("notification_id") == id, sourceLocation: sourceLocation)
        #expect(row.string("event_id") == event, sourceLocation: sourceLocation)
        #expect(row.string("user_id") == user, sourceLocation: sourceLocation)
        #expect(row.string("kind") == kind.rawValue, sourceLocation: sourceLocation)
        #expect(row.string("status") == status, sourceLocation: sourceLocation)
        #expect(row.int("attempts") == attempts, sourceLocation: sourceLocation)
        #expect(row.string("occurred_at")?.hasSuffix("Z") == true, sourceLocation: sourceLocation)
        #expect(Set(row.data.keys).isSubset(of: allowedKeys), "\(row.raw)", sourceLocation: sourceLocation)
        #expect(!row.raw.contains("@"), "no address in \(row.raw)", sourceLocation: sourceLocation)
    }

    @Test("sent: exactly one row, with the ids, the attempt count and the reply class; no address, token or text")
    func sent() async throws {
        let rig = try await CourierTests.Rig(mailEvents: true)
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([CourierTests.welcome(40)])
        #expect(try Self.rows(rig.pg).isEmpty, "queued: no event")
        try await rig.courier(mailer).sendDue()
        #expect(try rig.status(.welcome) == "sent")
        let rows = try Self.rows(rig.pg)
        try #require(rows.count == 1)
        try Self.expectRow(rows[0], rig.pg, event: "w-40", user: "w40", kind: .welcome, status: "sent", attempts: 1)
        #expect(rows[0].int("reply_code") == 250 && rows[0].string("reply_class") == "2xx", "\(rows[0].raw)")
        #expect(!rows[0].raw.lowercased().contains("token") && !rows[0].raw.contains("https://"))
    }

    @Test("a claim no longer current records nothing; a status change that fails writes no row; the row commits with the status")
    func sameStatement() async throws {
        let rig = try await CourierTests.Rig(mailEvents: true)
        defer { rig.shutdown() }
        try await rig.record([CourierTests.welcome(41)])
        let claimed = try await rig.queue.claim(limit: 1, owner: "courier-a")
        let claim = try #require(claimed.first?.claim)
        // Another claim number: the claim is not current, nothing changes, no row.
        let stale = NotificationClaim(id: claim.id, owner: claim.owner, number: claim.number + 1)
        #expect(try await rig.queue.complete(stale, .sent(messageID: "<m@herald.test>", reply: "250 OK"), recipient: nil) == false)
        #expect(try Self.rows(rig.pg).isEmpty)
        // The outbox refuses the row: the status change fails with it (one statement).
        _ = try rig.pg.psql("ALTER TABLE herald.mail_outbox ADD CONSTRAINT refuse CHECK (event_type <> 'MailStatusChanged')")
        await #expect(throws: (any Error).self) {
            try await rig.queue.complete(claim, .sent(messageID: "<m@herald.test>", reply: "250 OK"), recipient: nil)
        }
        #expect(try rig.status(.welcome) == "sending")
        #expect(try Self.rows(rig.pg).isEmpty)
        _ = try rig.pg.psql("ALTER TABLE herald.mail_outbox DROP CONSTRAINT refuse")
        #expect(try await rig.queue.complete(claim, .sent(messageID: "<m@herald.test>", reply: "250 2.0.0 Ok"), recipient: nil))
        let rows = try Self.rows(rig.pg)
        try #require(rows.count == 1)
        try Self.expectRow(rows[0], rig.pg, event: "w-41", user: "w41", kind: .welcome, status: "sent", attempts: 1)
        #expect(rows[0].string("enhanced_status") == "2.0.0")
        // An outage's requeue (no attempt used, no server reached) is not an event.
        try await rig.record([CourierTests.welcome(51)])
        let next = try #require(try await rig.queue.claim(limit: 1, owner: "courier-a").first?.claim)
        #expect(
            try await rig.queue.complete(next, .retry(reason: "SMTP unreachable", delay: .zero, countsAsAttempt: false), recipient: nil))
        #expect(try Self.rows(rig.pg).count == 1)
    }

    @Test("451 then 250: a deferred row with the attempt and the reply, then a sent row")
    func deferredThenSent() async throws {
        let rig = try await CourierTests.Rig(smtp: .init(script: ["451", "250"]), mailEvents: true)
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([CourierTests.welcome(42)])
        let courier = rig.courier(mailer)
        try await courier.sendDue()
        try await TestCluster.eventually("the retry", timeout: .seconds(180)) {
            try await courier.sendDue()
            return try rig.status(.welcome) == "sent"
        }
        let rows = try Self.rows(rig.pg)
        try #require(rows.count == 2, "\(rows.map(\.raw))")
        try Self.expectRow(rows[0], rig.pg, event: "w-42", user: "w42", kind: .welcome, status: "deferred", attempts: 1)
        #expect(rows[0].int("reply_code") == 451 && rows[0].string("reply_class") == "4xx", "\(rows[0].raw)")
        #expect(rows[0].string("enhanced_status") == "4.3.0", "\(rows[0].raw)")
        try Self.expectRow(rows[1], rig.pg, event: "w-42", user: "w42", kind: .welcome, status: "sent", attempts: 2)
    }

    @Test("550: a failed row with reply code 550 and its enhanced status, no server text")
    func failed() async throws {
        let rig = try await CourierTests.Rig(smtp: .init(script: ["550"]), mailEvents: true)
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([CourierTests.welcome(43)])
        try await rig.courier(mailer).sendDue()
        #expect(try rig.status(.welcome) == "failed")
        let rows = try Self.rows(rig.pg)
        try #require(rows.count == 1)
        try Self.expectRow(rows[0], rig.pg, event: "w-43", user: "w43", kind: .welcome, status: "failed", attempts: 1)
        #expect(rows[0].int("reply_code") == 550 && rows[0].string("reply_class") == "5xx", "\(rows[0].raw)")
        #expect(rows[0].string("enhanced_status") == "5.7.1", "\(rows[0].raw)")
        #expect(!rows[0].raw.contains("Herald test server"))
    }

    @Test("always 451: deferred, then abandoned at the maximum number of attempts")
    func abandoned() async throws {
        let rig = try await CourierTests.Rig(smtp: .init(script: ["451", "451"]), mailEvents: true)
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([CourierTests.welcome(44)])
        let courier = rig.courier(mailer, maxAttempts: 2)
        try await TestCluster.eventually("abandoned", timeout: .seconds(180)) {
            try await courier.sendDue()
            return try rig.status(.welcome) == "abandoned"
        }
        let rows = try Self.rows(rig.pg)
        try #require(rows.count == 2, "\(rows.map(\.raw))")
        try Self.expectRow(rows[0], rig.pg, event: "w-44", user: "w44", kind: .welcome, status: "deferred", attempts: 1)
        try Self.expectRow(rows[1], rig.pg, event: "w-44", user: "w44", kind: .welcome, status: "abandoned", attempts: 2)
        #expect(rows[1].int("reply_code") == 451, "\(rows[1].raw)")
    }

    @Test("the inbox: a mail over the rate limit is suppressed and one older than its maximum age expired, each with its row")
    func inboxDecisions() async throws {
        let rig = try await CourierTests.Rig(
            rateLimits: [.passwordReset: MailRateLimit(count: 1, window: .seconds(3600))], mailEvents: true)
        defer { rig.shutdown() }
        try await rig.record([CourierTests.registered("u45", "kim@example.com", name: "kim")])
        let queuedRows = try Self.rows(rig.pg).count
        #expect(queuedRows == 0, "queued mail is no event")
        try await rig.record([CourierTests.reset("u45", id: "reset-45-a")])
        try await rig.record([CourierTests.reset("u45", id: "reset-45-b")])
        try await rig.record([CourierTests.reset("u45", id: "reset-45-old", at: CourierTests.ago(.seconds(2 * 86_400)))])
        #expect(try rig.pg.psql("SELECT status FROM herald.notifications WHERE event_id = 'reset-45-b'") == "suppressed")
        #expect(try rig.pg.psql("SELECT status FROM herald.notifications WHERE event_id = 'reset-45-old'") == "expired")
        let rows = try Self.rows(rig.pg)
        try #require(rows.count == 2, "\(rows.map(\.raw))")
        try Self.expectRow(rows[0], rig.pg, event: "reset-45-b", user: "u45", kind: .passwordReset, status: "suppressed", attempts: 0)
        try Self.expectRow(rows[1], rig.pg, event: "reset-45-old", user: "u45", kind: .passwordReset, status: "expired", attempts: 0)
        #expect(rows.allSatisfy { $0.data["reply_code"] == nil })
    }

    @Test("the courier: a mail whose turn comes after its maximum age is expired with its row")
    func expiredAtSend() async throws {
        let rig = try await CourierTests.Rig(mailEvents: true)
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        let requested = EventTime.now()
        try await rig.record([CourierTests.welcome(46)])
        try await rig.record([CourierTests.reset("w46", id: "reset-46", at: RFC3339.format(requested))])
        let courier = rig.courier(mailer, maxAges: MailMaxAges.defaults.merging([.passwordReset: .seconds(1)]))
        try await TestCluster.eventually("the request older than its maximum age", timeout: .seconds(180)) {
            EventTime.now().millisecondsSinceEpoch - requested.millisecondsSinceEpoch > 1_100
        }
        try await courier.sendDue()
        let rows = try Self.rows(rig.pg).filter { $0.string("kind") == NotificationKind.passwordReset.rawValue }
        try #require(rows.count == 1, "\(rows.map(\.raw))")
        try Self.expectRow(rows[0], rig.pg, event: "reset-46", user: "w46", kind: .passwordReset, status: "expired", attempts: 0)
    }

    @Test("switched off (the default): sent and failed mail leave mail_outbox empty")
    func switchedOff() async throws {
        let rig = try await CourierTests.Rig(smtp: .init(script: ["550"]))
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([CourierTests.welcome(47)])
        try await rig.courier(mailer).sendDue()
        try await rig.record([CourierTests.welcome(48)])
        try await rig.courier(mailer).sendDue()
        #expect(try rig.pg.psql("SELECT string_agg(status, ',' ORDER BY event_id) FROM herald.notifications") == "failed,sent")
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.mail_outbox") == "0")
    }

    @Test("the outbox relay publishes mail_outbox to herald.mail.events: key the notification id, ce_type MailStatusChanged")
    func relayed() async throws {
        let rig = try await CourierTests.Rig(smtp: .init(script: ["550"]), mailEvents: true)
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([CourierTests.welcome(49)])
        try await rig.courier(mailer).sendDue()
        try await rig.record([CourierTests.welcome(50)])
        try await rig.courier(mailer).sendDue()
        let cluster = try TestCluster(partitions: 2)
        try cluster.broker.createTopic("herald.mail.events", partitions: 2)
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrap, logger: TestLogging.logger("test.mail-events"))
        let relay = OutboxRelay(
            store: PostgresOutboxStore(
                client: rig.database, layout: MailEventOutbox.layout(schema: "herald"), logger: TestLogging.logger("test.mail-events")),
            publisher: KafkaOutboxPublisher(producer: producer),
            settings: OutboxRelaySettings(
                topics: OutboxTopicMapping(topics: ["Notification": "herald.mail.events"], defaultPattern: nil),
                backoff: Backoff(initial: .milliseconds(20), cap: .milliseconds(200))),
            logger: TestLogging.logger("test.mail-events"))
        let report = try await relay.drain()
        #expect(report.published == 2 && report.failed == 0)
        #expect(try rig.pg.psql("SELECT string_agg(status, ',') FROM herald.mail_outbox") == "processed,processed")
        let messages = try await cluster.inspector().readAll("herald.mail.events")
        try #require(messages.count == 2)
        let failedID = try Self.notificationID(rig.pg, event: "w-49")
        let sentID = try Self.notificationID(rig.pg, event: "w-50")
        #expect(Set(messages.map(\.keyString)) == [failedID, sentID])
        for message in messages {
            #expect(message.header("ce_type")?.stringValue == "MailStatusChanged")
            #expect(message.header("aggregate_type")?.stringValue == "Notification")
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(message.value ?? [])) as? [String: Any])
            #expect(payload["notification_id"] as? String == message.keyString)
            #expect(payload["status"] as? String == (message.keyString == failedID ? "failed" : "sent"))
        }
        await producer.close()
    }

    @Test("a 63-character schema: the mail_outbox trigger NOTIFYs the channel the relay LISTENs on when an outcome is committed")
    func notifyLongSchema() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let schema = "herald_" + String(repeating: "y", count: 55) + "2"
        let client = PostgresClient(conninfo: pg.url, poolSize: 2, connectTimeout: .seconds(2), logger: TestLogging.logger("test.pg"))
        defer { client.close() }
        try await PostgresMigrator(
            client: client, schema: schema, migrations: HeraldSchema.migrations, logger: TestLogging.logger("test.pg")
        ).migrate()
        let inbox = PostgresEventInbox(client: client, schema: schema, mailEvents: true, logger: TestLogging.logger("test.inbox"))
        let queue = PostgresMailQueue(client: client, schema: schema, mailEvents: true)
        let wakeups = Mutex(0)
        let listener = PostgresListener(
            conninfo: pg.url, channel: MailEventOutbox.channel(schema: schema), applicationName: "test-mail-events-listen",
            logger: TestLogging.logger("test.listen"), onNotify: { wakeups.withLock { $0 += 1 } })
        listener.start()
        defer { Task { await listener.stop() } }
        try await TestCluster.eventually("the listener connected", timeout: .seconds(180)) {
            let connected = try pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test-mail-events-listen'")
            return wakeups.withLock { $0 } >= 1 && connected == "1"
        }
        let before = wakeups.withLock { $0 }
        _ = try await inbox.record([try InboxTests.accepted(CourierTests.welcome(60))], consumerGroup: "g")
        let claim = try #require(try await queue.claim(limit: 1, owner: "c").first?.claim)
        #expect(try await queue.complete(claim, .sent(messageID: "<m@herald.test>", reply: "250 OK"), recipient: nil))
        #expect(try pg.psql("SELECT count(*) FROM \"\(schema)\".mail_outbox") == "1")
        try await TestCluster.eventually("the relay's listener was notified", timeout: .seconds(180)) {
            wakeups.withLock { $0 } > before
        }
        await listener.stop()
    }
}
