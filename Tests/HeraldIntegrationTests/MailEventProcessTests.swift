import Foundation
import HeraldCore
import HeraldKafka
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Mail events end to end: `herald run` with HERALD_MAIL_EVENTS_ENABLED=true against a broker
/// process (the embedded broker, `herald broker`), a real PostgreSQL and the SMTP test server.
@Suite("mail events end to end", .serialized, .timeLimit(.minutes(10)))
struct MailEventProcessTests {
    @Test(
        "herald run: a refused (550) and a sent welcome mail each publish their event on herald.mail.events, with the ids and no address or token; the records validate against Topics/asyncapi.yaml"
    )
    func sentAndFailed() async throws {
        let topic = "herald.mail.events"
        let setup = try await HeraldProcessTests.Setup(partitions: 2, topics: [topic])
        defer { setup.teardown() }
        let smtp = try await SMTPServer.start(.init(script: ["550"]))
        defer { smtp.shutdown() }
        let port = try TestPorts.free()
        let probe = OperationsProbe(port: port)
        let herald = try setup.herald(
            "herald", group: "e2e-mail-events",
            environment: [
                "HERALD_HTTP_ADDRESS": "127.0.0.1:\(port)",
                "HERALD_SMTP_URL": "smtp://127.0.0.1:\(smtp.port)", "HERALD_SMTP_ALLOW_PLAINTEXT": "true",
                "HERALD_MAIL_POLL_INTERVAL": "200ms", "HERALD_MAIL_EVENTS_ENABLED": "true", "HERALD_OUTBOX_POLL_INTERVAL": "200ms",
            ])
        func created(_ user: String) -> OutboundRecord {
            TestCluster.event(
                [
                    "event_type": "UserCreated", "event_id": "created-\(user)", "user_id": user, "username": user,
                    "email": "\(user)@example.com",
                ],
                topic: TestCluster.userTopic, key: user)
        }
        func count(_ status: String) -> String? {
            try? setup.postgres.psql("SELECT count(*) FROM herald.notifications WHERE status = '\(status)'")
        }
        var messages: [InboundMessage] = []
        do {
            // The script refuses the first message: one mail after the other.
            try await setup.producer.send([created("refused")])
            try await TestCluster.eventually("the refused mail", timeout: .seconds(180)) { count("failed") == "1" }
            try await setup.producer.send([created("welcomed")])
            try await TestCluster.eventually("the sent mail", timeout: .seconds(180)) { count("sent") == "1" }
            let inspector = try setup.inspector("e2e-mail-events-reader")
            try await TestCluster.eventually("both events on \(topic)", timeout: .seconds(180)) {
                messages = try await inspector.readAll(topic)
                return messages.count >= 2
            }
            // The relay's own metrics series, apart from the API outbox relay's.
            try await TestCluster.eventually("the mail events relay's metrics", every: OperationsProbe.pollInterval) {
                let metrics = try probe.metrics()
                return metrics.value("herald_outbox_published_total", ["relay": "mail_events"]) == 2
                    && metrics.value("herald_outbox_published_total", ["relay": "outbox"]) == 0
            }
        } catch {
            Issue.record("herald:\n\(herald.output.suffix(4000))")
            throw error
        }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)

        #expect(messages.count == 2, "each outcome once (no relay restarted)")
        var statuses: [String: String] = [:]
        var records: [[String: Any]] = []
        for message in messages {
            let value = String(decoding: message.value ?? [], as: UTF8.self)
            let payload = try #require(try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any])
            let user = try #require(payload["user_id"] as? String)
            statuses[user] = payload["status"] as? String
            let id = try setup.postgres.psql("SELECT id FROM herald.notifications WHERE user_id = '\(user)'")
            #expect(message.keyString == id && payload["notification_id"] as? String == id)
            #expect(payload["event_id"] as? String == "created-\(user)")
            #expect(payload["kind"] as? String == "welcome" && payload["attempts"] as? Int == 1)
            #expect(message.header("ce_type")?.stringValue == "MailStatusChanged")
            #expect(!value.contains("@") && !value.lowercased().contains("token") && !value.contains("Herald test server"), "\(value)")
            var headers: [String: String] = [:]
            for header in message.headers { headers[header.key] = String(decoding: header.value ?? [], as: UTF8.self) }
            records.append(["topic": topic, "headers": headers, "payload": payload])
        }
        #expect(statuses == ["refused": "failed", "welcomed": "sent"])
        #expect(try setup.postgres.psql("SELECT string_agg(status, ',') FROM herald.mail_outbox") == "processed,processed")

        // The records as published, against the contract.
        let file = setup.dir + "/published.json"
        try JSONSerialization.data(withJSONObject: records).write(to: URL(fileURLWithPath: file))
        let contract = try ChildProcess(
            "/usr/bin/env", ["python3", HeraldBinary.repository + "/Topics/contract.py", "--validate-published", file],
            environment: ["PATH": "/usr/bin:/bin"], logPath: setup.dir + "/contract.log")
        #expect(try await contract.waitForExit() == 0, "\(contract.output)")
    }
}
