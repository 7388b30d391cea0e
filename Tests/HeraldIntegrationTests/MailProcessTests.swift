import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import HeraldPostgres
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Mail end to end: events published to Kafka, two `herald run` processes in one group and
/// on one mail queue, a real SMTP server.
@Suite("mail end to end", .serialized, .timeLimit(.minutes(10)))
struct MailProcessTests {
    @Test("two herald processes: every event's mail arrives exactly once; the link works; no token in the logs or the database")
    func twoInstances() async throws {
        let setup = try await HeraldProcessTests.Setup(partitions: 4)
        defer { setup.teardown() }
        let smtp = try await SMTPServer.start()
        defer { smtp.shutdown() }
        let mailEnvironment = [
            "HERALD_SMTP_URL": "smtp://127.0.0.1:\(smtp.port)", "HERALD_SMTP_ALLOW_PLAINTEXT": "true",
            "HERALD_MAIL_POLL_INTERVAL": "200ms", "HERALD_LOG_LEVEL": "debug",
        ]
        let users = 60
        var records: [OutboundRecord] = []
        for i in 0..<users {
            records.append(
                TestCluster.event(
                    [
                        "event_type": "UserCreated", "event_id": "created-\(i)", "user_id": "user-\(i)", "username": "user\(i)",
                        "email": "user\(i)@example.com",
                    ], topic: TestCluster.userTopic, key: "user-\(i)"))
        }
        records.append(
            TestCluster.event(
                // With its address: the user topic's UserCreated may be consumed after it.
                ["event_type": "PasswordResetRequested", "event_id": "reset-0", "user_id": "user-0", "email": "user0@example.com"],
                key: "user-0"))
        // Delivered three times: still one mail.
        for _ in 0..<3 {
            records.append(
                TestCluster.event(
                    ["event_type": "PasswordChanged", "event_id": "changed-1", "user_id": "user-1", "email": "user1@example.com"],
                    key: "user-1"))
        }
        try await setup.producer.send(records)

        let a = try setup.herald("herald-a", group: "e2e-mail", environment: mailEnvironment)
        let b = try setup.herald("herald-b", group: "e2e-mail", environment: mailEnvironment)
        // The welcome mails, one reset and one notice.
        let expected = users + 2
        do {
            try await TestCluster.eventually("\(expected) mails", timeout: .seconds(180)) {
                (try? setup.postgres.psql("SELECT count(*) FROM herald.notifications WHERE status = 'sent'")) == String(expected)
            }
        } catch {
            Issue.record("herald-a:\n\(a.output.suffix(3000))\nherald-b:\n\(b.output.suffix(3000))")
            throw error
        }
        try await Task.sleep(for: .milliseconds(500))
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(try await a.waitForExit() == 0)
        #expect(try await b.waitForExit() == 0)

        let received = try smtp.received()
        #expect(received.count == expected, "each mail exactly once")
        var messageIDs = Set<String>()
        var resetLink: String?
        for mail in received {
            let parsed = try await ParsedMail.parse(mail.data)
            messageIDs.insert(parsed.header("Message-ID") ?? "")
            if parsed.header("X-Herald-Kind") == "password_reset" { resetLink = parsed.parts[0].text }
        }
        #expect(messageIDs.count == expected)
        #expect(received.filter { $0.to == ["user1@example.com"] }.count == 2, "a welcome and one password-changed notice")

        let text = try #require(resetLink)
        let match = try #require(text.firstMatch(of: try Regex("/auth/reset-password/confirm\\?token=([A-Za-z0-9_-]{43})")))
        let token = String(match.output[1].substring!)
        let hash = LinkToken(secret: token).hash
        #expect(try setup.redis.probe(["GET", "reset_password_token:" + hash]).text == "user-0")
        // Both processes log at debug level, and neither wrote the token or its link anywhere.
        #expect(!a.output.isEmpty && !b.output.isEmpty)
        #expect(!a.output.contains(token) && !b.output.contains(token))
        #expect(!(try setup.postgres.psql("SELECT string_agg(n::text, ' ') FROM herald.notifications n").contains(token)))
    }

    @Test("one herald polling once an hour: mail its own inbox queues is sent at once, woken by its own NOTIFY")
    func ownNotifyWakesTheCourier() async throws {
        let setup = try await HeraldProcessTests.Setup(partitions: 1)
        defer { setup.teardown() }
        let herald = try setup.herald("herald", group: "e2e-wake", environment: ["HERALD_MAIL_POLL_INTERVAL": "1h"])
        // Idle: its LISTEN connection is up, and its courier's first look (and the one the
        // connection's wake-up asks for) found nothing.
        try await TestCluster.eventually("the courier listening", timeout: .seconds(60)) {
            (try? setup.postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'herald-mail-listen'")) == "1"
                && herald.output.contains("courier started")
        }
        try await Task.sleep(for: .milliseconds(500))
        try await setup.producer.send([
            TestCluster.event(
                ["event_type": "UserCreated", "event_id": "wake-1", "user_id": "u1", "username": "ada", "email": "ada@example.com"],
                topic: TestCluster.userTopic, key: "u1")
        ])
        // Only a notification can wake it before its next poll, an hour away.
        do {
            try await TestCluster.eventually("the welcome sent", timeout: .seconds(60)) {
                (try? setup.postgres.psql("SELECT string_agg(status, ',') FROM herald.notifications")) == "sent"
            }
        } catch {
            Issue.record("herald:\n\(herald.output.suffix(3000))")
            throw error
        }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test(
        "herald mail list --json and mail show: snake_case keys, variables as an object, empty columns as null; expired mail is not requeued, with the reason"
    )
    func operatorJSON() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let (client, inbox) = try await InboxTests.database(pg)
        defer { client.close() }
        let threeDaysAgo = RFC3339.format(EventTime(millisecondsSinceEpoch: EventTime.now().millisecondsSinceEpoch - 3 * 86_400_000))
        _ = try await inbox.record(
            [
                try InboxTests.registered("r1", user: "u1", email: "ada@example.com", name: "ada", at: "2024-01-01T00:00:00Z"),
                try InboxTests.accepted(
                    #"{"event_type":"EmailChangeRequested","event_id":"c1","user_id":"u1","old_email":"ada@example.com","new_email":"ada@new.example"}"#,
                    offset: 1),
                try InboxTests.accepted(
                    #"{"event_type":"PasswordResetRequested","event_id":"p1","user_id":"u1","occurred_at":"\#(threeDaysAgo)"}"#, offset: 2),
            ], consumerGroup: "g")
        let dir = try HeraldBinary.temporaryDirectory()
        func herald(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            let process = try ChildProcess(
                HeraldBinary.path, arguments, environment: ["PATH": "/usr/bin:/bin", "HERALD_DATABASE_URL": pg.url],
                logPath: dir + "/\(UUID().uuidString).log")
            return (try await process.waitForExit(timeout: .seconds(180)), process.output)
        }
        func object(_ line: some StringProtocol) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        let columns: Set<String> = [
            "id", "event_id", "kind", "user_id", "recipient", "address_from", "event_email", "locale", "status", "attempts",
            "next_attempt_at", "last_error", "message_id", "requested_at", "created_at", "claimed_at", "claimed_by", "claim_number",
            "sent_at", "variables",
        ]

        var (status, output) = try await herald(["mail", "list", "--json"])
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n")
        #expect(lines.count == 3, "one object per line: \(output)")
        let rows = try lines.map { try object($0) }
        for row in rows { #expect(Set(row.keys) == columns, "\(row.keys.sorted())") }
        let byKind = Dictionary(uniqueKeysWithValues: rows.map { ($0["kind"] as? String ?? "", $0) })
        let confirm = try #require(byKind["email_change_confirm"])
        #expect(confirm["variables"] as? [String: String] == ["old_email": "ada@example.com", "new_email": "ada@new.example"])
        #expect(confirm["sent_at"] is NSNull && confirm["message_id"] is NSNull && confirm["claimed_by"] is NSNull)
        #expect(confirm["event_email"] as? String == "ada@new.example")
        #expect(confirm["address_from"] as? String == "event")
        #expect(confirm["attempts"] as? Int == 0)
        let reset = try #require(byKind["password_reset"])
        #expect(reset["status"] as? String == "expired")
        #expect(reset["address_from"] as? String == "user")
        #expect(reset["event_email"] is NSNull)
        #expect((reset["last_error"] as? String)?.contains("maximum age") == true)
        let resetID = try #require(reset["id"] as? String)

        (status, output) = try await herald(["mail", "show", resetID])
        #expect(status == 0, "\(output)")
        let shown = try object(output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(Set(shown.keys) == columns)
        #expect(shown["id"] as? String == resetID)

        (status, output) = try await herald(["mail", "list"])
        #expect(status == 0 && output.contains("expired 1"), "\(output)")

        (status, output) = try await herald(["mail", "retry", resetID])
        #expect(status != 0)
        #expect(output.contains("its link would be past its age"), "\(output)")
        (status, output) = try await herald(["mail", "retry", "--status", "expired"])
        #expect(status != 0)
        #expect(output.contains("expired mail cannot be requeued"), "\(output)")
        #expect(try pg.psql("SELECT status FROM herald.notifications WHERE event_id = 'p1'") == "expired")
    }
}
