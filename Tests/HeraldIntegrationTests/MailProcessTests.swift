import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Mail end to end: events published to Kafka, two `herald run` processes in one group and
/// on one mail queue, a real SMTP server.
@Suite("mail end to end", .serialized, .timeLimit(.minutes(5)))
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
            try await TestCluster.eventually("\(expected) mails", timeout: .seconds(90)) {
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
}
