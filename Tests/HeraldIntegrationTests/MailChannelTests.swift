import Foundation
import HeraldCore
import HeraldPostgres
import Synchronization
import Testing

/// The NOTIFY channel for queued mail (`<schema>_mail`) is an identifier: at most 63 bytes.
@Suite("The mail NOTIFY channel", .timeLimit(.minutes(10)))
struct MailChannelTests {
    @Test("short schemas keep <schema>_mail; long ones get a cut name with a hash, always 63 bytes or fewer")
    func names() {
        #expect(PostgresEventInbox.mailChannel(schema: "herald") == "herald_mail")
        let fits = String(repeating: "s", count: 58)
        #expect(PostgresEventInbox.mailChannel(schema: fits) == fits + "_mail")
        var seen: Set<String> = []
        for length in 59...63 {
            for last in ["a", "b"] {
                let schema = String(repeating: "s", count: length - 1) + last
                let channel = PostgresEventInbox.mailChannel(schema: schema)
                #expect(channel.utf8.count <= 63, "\(channel)")
                #expect(channel.hasSuffix("_mail") && channel.hasPrefix(String(repeating: "s", count: 40)))
                #expect(OutboxTableLayout.isIdentifier(channel), "\(channel)")
                #expect(PostgresEventInbox.mailChannel(schema: schema) == channel, "the same name every time")
                seen.insert(channel)
            }
        }
        #expect(seen.count == 10, "different schemas, different channels")
    }

    @Test("a 63-character schema: mail is queued in the inbox transaction and a LISTENing courier is notified")
    func longSchema() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let schema = "herald_" + String(repeating: "x", count: 55) + "1"
        #expect(schema.utf8.count == 63)
        let client = PostgresClient(conninfo: pg.url, poolSize: 2, connectTimeout: .seconds(2), logger: TestLogging.logger("test.pg"))
        defer { client.close() }
        try await PostgresMigrator(
            client: client, schema: schema, migrations: HeraldSchema.migrations, logger: TestLogging.logger("test.pg")
        ).migrate()
        let inbox = PostgresEventInbox(client: client, schema: schema, logger: TestLogging.logger("test.inbox"))

        // The courier's side: the same function names the channel it LISTENs on.
        let wakeups = WakeupCounter()
        let listener = PostgresListener(
            conninfo: pg.url, channel: PostgresEventInbox.mailChannel(schema: schema), applicationName: "test-long-listen",
            logger: TestLogging.logger("test.listen"), onNotify: { wakeups.increment() })
        listener.start()
        defer { Task { await listener.stop() } }
        try await TestCluster.eventually("the listener connected", timeout: .seconds(180)) {
            let connected = try pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test-long-listen'")
            return wakeups.value >= 1 && connected == "1"
        }
        let before = wakeups.value

        let welcome = try InboxTests.accepted(
            #"{"event_type":"UserCreated","event_id":"long-1","user_id":"u1","username":"ada","email":"ada@example.com"}"#)
        let recorded = try await inbox.record([welcome], consumerGroup: "g")
        #expect(recorded.count == 1)
        #expect(try pg.psql("SELECT count(*) FROM \"\(schema)\".notifications WHERE status = 'queued'") == "1")
        try await TestCluster.eventually("the courier's listener was notified", timeout: .seconds(180)) {
            wakeups.value > before
        }
        await listener.stop()
    }
}

/// A thread-safe counter for callbacks.
private final class WakeupCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
