import Foundation
import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldPostgres
import HeraldRedis
import HeraldSMTP
import Logging
import Synchronization
import Testing

/// The courier against a real PostgreSQL queue, a real redis-server for the link tokens and
/// a real SMTP server (aiosmtpd): events go through the inbox, mail comes out of the server.
@Suite("Courier: queued mail to a real SMTP server", .timeLimit(.minutes(10)))
struct CourierTests {
    /// PostgreSQL, Redis and an SMTP server, with the inbox and the courier's parts.
    final class Rig: Sendable {
        let pg: PostgresServer
        let redisServer: RedisServer
        let smtp: SMTPServer
        let database: PostgresClient
        let redis: RedisClient
        let inbox: PostgresEventInbox
        let queue: PostgresMailQueue
        let composer: MailComposer
        /// What the inbox recorded as expired or suppressed at once (the metrics' feed).
        let decided = RecordingMailObserver()

        /// `mailEvents`: outcomes are recorded in `mail_outbox` too (HERALD_MAIL_EVENTS_ENABLED).
        init(
            smtp options: SMTPServer.Options = .init(), rateLimits: [NotificationKind: MailRateLimit] = [:], mailEvents: Bool = false
        ) async throws {
            pg = try await PostgresServer.start()
            redisServer = try await RedisServer.start()
            smtp = try await SMTPServer.start(options)
            let (client, _) = try await InboxTests.database(pg)
            database = client
            // The inbox checks the default maximum ages, as `herald run` does.
            inbox = PostgresEventInbox(
                client: client, schema: "herald", mailPolicy: MailPolicy(rateLimits: rateLimits, maxAges: .defaults),
                mailObserver: decided, mailEvents: mailEvents, logger: TestLogging.logger("test.inbox"))
            queue = PostgresMailQueue(client: client, schema: "herald", mailEvents: mailEvents)
            redis = RedisClient(
                endpoint: try RedisEndpoint(url: redisServer.url), connectTimeout: .seconds(2), commandTimeout: .seconds(2),
                poolSize: 2, logger: TestLogging.logger("test.redis"))
            composer = MailComposer(
                templates: try MailTemplates(directory: HeraldBinary.templates),
                sender: SenderSettings(
                    from: try MailAddress(parsing: "Herald Tests <no-reply@herald.test>"), productName: "Acme Cloud",
                    supportEmail: "help@herald.test"),
                links: LinkSettings(baseURL: "https://auth.herald.test/"))
        }

        /// `transferTimeout` bounds one send: the tests that hold messages at DATA raise it.
        func mailer(workers: Int = 2, transferTimeout: Duration = .seconds(10)) throws -> SMTPMailer {
            SMTPMailer(
                settings: try SMTPSettings(
                    url: "smtp://127.0.0.1:\(smtp.port)", allowPlaintext: true, transferTimeout: transferTimeout),
                workers: workers, logger: TestLogging.logger("test.smtp"))
        }

        func courier(
            _ transport: any MailTransport, maxAttempts: Int = 8, doorbell: Doorbell = Doorbell(),
            pollInterval: Duration = .milliseconds(200), concurrency: Int = 2, maxAges: MailMaxAges = .defaults,
            tokens: (any LinkTokenStore)? = nil
        ) -> Courier {
            var settings = CourierSettings()
            settings.maxAttempts = maxAttempts
            settings.retry = Backoff(initial: .milliseconds(50), cap: .milliseconds(100))
            settings.outage = Backoff(initial: .milliseconds(50), cap: .milliseconds(200))
            settings.pollInterval = pollInterval
            settings.concurrency = concurrency
            settings.policy = MailPolicy(maxAges: maxAges)
            return Courier(
                queue: queue, tokens: tokens ?? RedisLinkTokenStore(client: redis), transport: transport, composer: composer,
                settings: settings, doorbell: doorbell, logger: TestLogging.logger("test.courier"))
        }

        /// Records events (JSON bodies) through the inbox, as the consumer would.
        func record(_ bodies: [String], group: String = "g") async throws {
            let events = try bodies.enumerated().map { try InboxTests.accepted($1, offset: Int64($0)) }
            _ = try await inbox.record(events, consumerGroup: group)
        }

        func status(_ kind: NotificationKind) throws -> String {
            try pg.psql("SELECT string_agg(status, ',' ORDER BY recipient) FROM herald.notifications WHERE kind = '\(kind.rawValue)'")
        }

        func shutdown() {
            redis.close()
            database.close()
            smtp.shutdown()
            redisServer.shutdown()
            pg.shutdown()
        }
    }

    /// RFC 3339 for `age` before now: events are recent unless a test says otherwise (mail
    /// has a maximum age).
    static func ago(_ age: Duration) -> String {
        RFC3339.format(EventTime(millisecondsSinceEpoch: EventTime.now().millisecondsSinceEpoch - Int64(age.seconds * 1000)))
    }

    static func registered(_ user: String, _ email: String, name: String, id: String? = nil, at: String = ago(.seconds(60))) -> String {
        #"{"event_type":"UserRegistered","event_id":"\#(id ?? "reg-" + user)","user_id":"\#(user)","username":"\#(name)","email":"\#(email)","occurred_at":"\#(at)"}"#
    }

    static func reset(_ user: String, id: String, at: String = ago(.seconds(30))) -> String {
        #"{"event_type":"PasswordResetRequested","event_id":"\#(id)","user_id":"\#(user)","occurred_at":"\#(at)"}"#
    }

    /// The link in a mail's plain-text part, and its token.
    static func link(in text: String, path: String) throws -> (link: String, token: String) {
        let pattern = try Regex("https://auth\\.herald\\.test\(path)\\?token=([A-Za-z0-9_-]+)")
        let match = try #require(text.firstMatch(of: pattern), "no link to \(path) in:\n\(text)")
        return (String(match.output[0].substring!), String(match.output[1].substring!))
    }

    @Test("a password reset: sent once, both parts, a link whose token hashes to the Redis key; the token is stored nowhere")
    func passwordReset() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([Self.registered("u1", "ana@example.com", name: "ana"), Self.reset("u1", id: "reset-1")])
        let courier = rig.courier(mailer)
        let pass = try await courier.sendDue()
        #expect(pass.outcomes[.sent] == 1)

        let received = try await rig.smtp.waitForMessages(1)
        try #require(received.count == 1)
        #expect(received[0].to == ["ana@example.com"])
        #expect(received[0].from == "no-reply@herald.test")
        let mail = try await ParsedMail.parse(received[0].data)
        #expect(mail.defects.isEmpty)
        #expect(mail.contentType == "multipart/alternative")
        #expect(mail.parts.map(\.contentType) == ["text/plain", "text/html"])
        #expect(mail.parts.allSatisfy { $0.charset?.lowercased() == "utf-8" })
        #expect(mail.header("To") == "ana <ana@example.com>")
        #expect(mail.header("From") == "Herald Tests <no-reply@herald.test>")
        #expect(mail.header("Subject")?.contains("Acme Cloud") == true)
        #expect(mail.header("Auto-Submitted") == "auto-generated")
        let id = try rig.pg.psql("SELECT id FROM herald.notifications WHERE kind = 'password_reset'")
        #expect(mail.header("Message-ID") == "<\(id)@herald.test>")
        #expect(
            try rig.pg.psql("SELECT status || ' ' || attempts || ' ' || message_id FROM herald.notifications WHERE id = '\(id)'")
                == "sent 1 <\(id)@herald.test>")

        let (link, token) = try Self.link(in: mail.parts[0].text, path: "/auth/reset-password/confirm")
        #expect(token.count == 43, "32 bytes in base64url without padding")
        #expect(mail.parts[1].text.contains(link), "the HTML part carries the same link")
        let hash = LinkToken(secret: token).hash
        #expect(hash.count == 64)
        #expect(try rig.redisServer.probe(["GET", "reset_password_token:" + hash]).text == "u1")
        let ttl = try #require(try rig.redisServer.probe(["PTTL", "reset_password_token:" + hash]).integerValue)
        #expect(ttl > 880_000 && ttl <= 900_000, "15 minutes, got \(ttl) ms")
        // Only the hash is stored: not the token, in any key or in the queue.
        let keys = try rig.redisServer.probe(["KEYS", "*"])
        #expect(!"\(keys)".contains(token))
        let everything = try rig.pg.psql("SELECT string_agg(n::text, ' ') FROM herald.notifications n")
        #expect(!everything.contains(token))
        #expect(!everything.contains(hash))
    }

    @Test("an address change: a confirmation link to the new address, a notice to the old one")
    func emailChange() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([
            Self.registered("u2", "old@example.com", name: "bea"),
            #"{"event_type":"EmailChangeRequested","event_id":"chg-1","user_id":"u2","old_email":"old@example.com","new_email":"new@example.org","occurred_at":"\#(Self.ago(.seconds(10)))"}"#,
        ])
        try await rig.courier(mailer).sendDue()
        let received = try await rig.smtp.waitForMessages(2)
        try #require(received.count == 2)
        let byRecipient = Dictionary(uniqueKeysWithValues: received.map { ($0.to[0], $0) })
        let confirm = try await ParsedMail.parse(try #require(byRecipient["new@example.org"]).data)
        let notice = try await ParsedMail.parse(try #require(byRecipient["old@example.com"]).data)
        let (_, token) = try Self.link(in: confirm.parts[0].text, path: "/auth/email-change/confirm")
        let stored = try #require(
            try rig.redisServer.probe(["GET", "email_change_token:" + LinkToken(secret: token).hash]).text)
        let grant = try #require(try JSONSerialization.jsonObject(with: Data(stored.utf8)) as? [String: String])
        #expect(grant == ["user_id": "u2", "new_email": "new@example.org"])
        let ttl = try #require(
            try rig.redisServer.probe(["PTTL", "email_change_token:" + LinkToken(secret: token).hash]).integerValue)
        #expect(ttl > 86_000_000 && ttl <= 86_400_000)
        #expect(!notice.parts[0].text.contains("token="), "the notice to the old address carries no link")
        #expect(notice.parts[0].text.contains("new@example.org"))
    }

    @Test("mail queued by another instance's inbox wakes an idle courier through LISTEN/NOTIFY, not its poll")
    func notifyWakes() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        let doorbell = Doorbell()
        let listener = PostgresListener(
            conninfo: rig.pg.url, channel: rig.inbox.mailChannel, applicationName: "test-mail-listen",
            logger: TestLogging.logger("test.listen"), onNotify: { doorbell.ring() })
        listener.start()
        // Polls once an hour: only a notification can wake it in time.
        let courier = rig.courier(mailer, doorbell: doorbell, pollInterval: .seconds(3600))
        let running = Task { await courier.run() }
        try await TestCluster.eventually("the listener connected", timeout: .seconds(180)) {
            try rig.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test-mail-listen'") == "1"
        }
        // Its wake-up after connecting, and the courier's first look, found nothing.
        try await Task.sleep(for: .milliseconds(500))
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-n","user_id":"un","username":"nia","email":"nia@example.com"}"#])
        try await TestCluster.eventually("the mail sent", timeout: .seconds(180)) { try rig.status(.welcome) == "sent" }
        courier.triggerShutdown()
        await running.value
        await listener.stop()
        #expect(try rig.smtp.received().count == 1)
    }

    @Test("the same event delivered three times queues and sends one mail")
    func idempotent() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        let welcome = #"{"event_type":"UserCreated","event_id":"created-1","user_id":"u3","username":"cy","email":"cy@example.com"}"#
        for _ in 0..<3 { try await rig.record([welcome]) }
        // Also a redelivery to another consumer group's inbox: still one notification.
        try await rig.record([welcome], group: "other")
        let courier = rig.courier(mailer)
        try await courier.sendDue()
        try await courier.sendDue()
        let received = try await rig.smtp.waitForMessages(1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try rig.smtp.received().count == 1)
        #expect(received.first?.to == ["cy@example.com"])
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications") == "1")
    }

    @Test("two couriers on one queue send each of 200 mails exactly once")
    func twoCouriers() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let bodies = (0..<200).map { i in
            #"{"event_type":"UserCreated","event_id":"c-\#(i)","user_id":"u\#(i)","username":"user\#(i)","email":"user\#(i)@example.com"}"#
        }
        try await rig.record(bodies)
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'queued'") == "200")
        let mailerA = try rig.mailer()
        let mailerB = try rig.mailer()
        defer {
            mailerA.stop()
            mailerB.stop()
        }
        let a = rig.courier(mailerA)
        let b = rig.courier(mailerB)
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        try await TestCluster.eventually("200 mails sent", timeout: .seconds(180)) {
            try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'sent'") == "200"
        }
        a.triggerShutdown()
        b.triggerShutdown()
        await runA.value
        await runB.value
        let received = try rig.smtp.received()
        #expect(received.count == 200)
        var ids: [String: Int] = [:]
        for mail in received {
            let parsed = try await ParsedMail.parse(mail.data)
            ids[parsed.header("Message-ID") ?? "", default: 0] += 1
        }
        #expect(ids.count == 200, "each Message-ID once")
        #expect(ids.values.allSatisfy { $0 == 1 })
        #expect(Set(received.map(\.to[0])).count == 200)
    }

    @Test("451 then 250: retried with backoff and sent once")
    func deferredThenSent() async throws {
        let rig = try await Rig(smtp: .init(script: ["451", "250"]))
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([Self.registered("u4", "di@example.com", name: "di"), Self.reset("u4", id: "reset-4")])
        let courier = rig.courier(mailer)
        let first = try await courier.sendDue()
        #expect(first.outcomes[.queued] == 1)
        #expect(try rig.pg.psql("SELECT status || ' ' || attempts FROM herald.notifications") == "queued 1")
        #expect(try rig.pg.psql("SELECT last_error FROM herald.notifications").contains("451"))
        // The failed attempt's token was removed again.
        #expect(try rig.redisServer.probe(["KEYS", "reset_password_token:*"]).arrayCount == 0)
        try await TestCluster.eventually("the retry", timeout: .seconds(180)) {
            try await courier.sendDue()
            return try rig.status(.passwordReset) == "sent"
        }
        #expect(try rig.pg.psql("SELECT attempts FROM herald.notifications") == "2")
        #expect(try rig.smtp.received().count == 1)
        #expect(try rig.redisServer.probe(["KEYS", "reset_password_token:*"]).arrayCount == 1)
    }

    @Test("550: failed with the server's reply, not retried")
    func rejected() async throws {
        let rig = try await Rig(smtp: .init(script: ["550"]))
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-5","user_id":"u5","username":"ed","email":"ed@example.com"}"#])
        let courier = rig.courier(mailer)
        try await courier.sendDue()
        #expect(try rig.status(.welcome) == "failed")
        let error = try rig.pg.psql("SELECT last_error FROM herald.notifications")
        #expect(error.contains("550"), "\(error)")
        try await courier.sendDue()
        #expect(try rig.smtp.received().isEmpty)
        #expect(try rig.pg.psql("SELECT attempts FROM herald.notifications") == "1")
    }

    @Test("always 451: abandoned after the maximum number of attempts")
    func abandoned() async throws {
        let rig = try await Rig(smtp: .init(script: ["451", "451", "451", "451"]))
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-6","user_id":"u6","username":"flo","email":"flo@example.com"}"#])
        let courier = rig.courier(mailer, maxAttempts: 3)
        try await TestCluster.eventually("abandoned", timeout: .seconds(180)) {
            try await courier.sendDue()
            return try rig.status(.welcome) == "abandoned"
        }
        #expect(try rig.pg.psql("SELECT attempts FROM herald.notifications") == "3")
        #expect(try rig.pg.psql("SELECT last_error FROM herald.notifications").contains("after 3 attempts"))
    }

    @Test("SMTP server down for a while: the mail waits without using attempts and is sent when it is back")
    func serverDown() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        try await rig.smtp.stop()
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        let doorbell = Doorbell()
        let courier = rig.courier(mailer, maxAttempts: 2, doorbell: doorbell)
        let running = Task { await courier.run() }
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-7","user_id":"u7","username":"gus","email":"gus@example.com"}"#])
        doorbell.ring()
        // Passes fail to connect meanwhile (the pause is 50–200 ms); none uses an attempt.
        try await TestCluster.eventually("a failed connection recorded", timeout: .seconds(180)) {
            try rig.pg.psql("SELECT coalesce(last_error, '') FROM herald.notifications").contains("connection failed")
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try rig.pg.psql("SELECT attempts FROM herald.notifications") == "0")
        #expect(["queued", "sending"].contains(try rig.pg.psql("SELECT status FROM herald.notifications")))
        try await rig.smtp.start()
        try await TestCluster.eventually("sent after the server came back", timeout: .seconds(180)) {
            try rig.status(.welcome) == "sent"
        }
        courier.triggerShutdown()
        await running.value
        #expect(try rig.smtp.received().count == 1)
    }

    @Test("Redis down: a link mail waits without using attempts, then is sent with a working token")
    func redisDown() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([Self.registered("u8", "hal@example.com", name: "hal"), Self.reset("u8", id: "reset-8")])
        try await rig.redisServer.stop()
        let courier = rig.courier(mailer)
        let pass = try await courier.sendDue()
        #expect(pass.outage != nil)
        #expect(try rig.pg.psql("SELECT status || ' ' || attempts FROM herald.notifications") == "queued 0")
        #expect(try rig.smtp.received().isEmpty, "no mail with a link that would not work")
        try await rig.redisServer.start()
        try await TestCluster.eventually("sent once Redis is back", timeout: .seconds(180)) {
            try await courier.sendDue()
            return try rig.status(.passwordReset) == "sent"
        }
        let mail = try await ParsedMail.parse(try #require(try rig.smtp.received().first).data)
        let (_, token) = try Self.link(in: mail.parts[0].text, path: "/auth/reset-password/confirm")
        #expect(try rig.redisServer.probe(["GET", "reset_password_token:" + LinkToken(secret: token).hash]).text == "u8")
    }

    @Test("over the rate limit, the excess is recorded as suppressed and not sent")
    func rateLimited() async throws {
        let rig = try await Rig(rateLimits: [.passwordReset: MailRateLimit(count: 3, window: .seconds(3600))])
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([Self.registered("u9", "ivy@example.com", name: "ivy")])
        for i in 0..<5 { try await rig.record([Self.reset("u9", id: "reset-9-\(i)")]) }
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'queued'") == "3")
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'suppressed'") == "2")
        #expect(try rig.pg.psql("SELECT DISTINCT last_error FROM herald.notifications WHERE status = 'suppressed'").contains("rate limit"))
        // Other kinds to the same address are not limited by it.
        try await rig.record([
            #"{"event_type":"PasswordChanged","event_id":"pc-9","user_id":"u9","occurred_at":"\#(Self.ago(.seconds(5)))"}"#
        ])
        try await rig.courier(mailer).sendDue()
        #expect(try await rig.smtp.waitForMessages(4).count == 4)
    }

    @Test("a recipient deleted after the mail was queued gets nothing")
    func deletedRecipient() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-10","user_id":"u10","username":"jo","email":"jo@example.com"}"#])
        // A minute ahead: later than the creation, within the clock skew Herald allows.
        try await rig.record([
            #"{"event_type":"UserDeleted","event_id":"d-10","user_id":"u10","occurred_at":"\#(Self.ago(.seconds(-60)))"}"#
        ])
        try await rig.courier(mailer).sendDue()
        #expect(try rig.status(.welcome) == "suppressed")
        #expect(try rig.smtp.received().isEmpty)
    }

    @Test("mail left sending by a courier that died is requeued and sent, with the same Message-ID")
    func staleClaim() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-11","user_id":"u11","username":"kai","email":"kai@example.com"}"#]
        )
        // A courier claimed it an hour ago and was never heard of again.
        let claimed = try await rig.queue.claim(limit: 10, owner: "dead-courier")
        #expect(claimed.count == 1)
        _ = try rig.pg.psql("UPDATE herald.notifications SET claimed_at = now() - interval '1 hour'")
        #expect(try await rig.queue.claim(limit: 10, owner: "another").isEmpty, "a sending row is not claimed again")
        #expect(try await rig.queue.requeueStale(claimedLongerThan: .seconds(600)) == 1)
        try await rig.courier(mailer).sendDue()
        #expect(try rig.status(.welcome) == "sent")
        let mail = try await ParsedMail.parse(try #require(try await rig.smtp.waitForMessages(1).first).data)
        #expect(mail.header("Message-ID") == "<\(claimed[0].id)@herald.test>")
    }

    @Test("markup in a username is escaped in the HTML part and verbatim in the text part")
    func markupEscaped() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        try await rig.record([
            #"{"event_type":"UserCreated","event_id":"c-12","user_id":"u12","username":"<script>alert(1)</script>","email":"lu@example.com"}"#
        ])
        try await rig.courier(mailer).sendDue()
        let mail = try await ParsedMail.parse(try #require(try await rig.smtp.waitForMessages(1).first).data)
        #expect(mail.parts[0].text.contains("<script>alert(1)</script>"))
        #expect(!mail.parts[1].text.contains("<script>"))
        #expect(mail.parts[1].text.contains("&lt;script&gt;"))
        #expect(mail.header("To")?.hasSuffix("<lu@example.com>") == true)
        #expect(mail.headers.filter { $0.name.lowercased() == "to" }.count == 1)
    }

    @Test("operators list, show and requeue failed mail")
    func operatorRetry() async throws {
        let rig = try await Rig(smtp: .init(script: ["550"]))
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        try await rig.record([#"{"event_type":"UserCreated","event_id":"c-13","user_id":"u13","username":"max","email":"max@example.com"}"#]
        )
        let courier = rig.courier(mailer)
        try await courier.sendDue()
        let failed = try await rig.queue.list(status: .failed)
        try #require(failed.count == 1)
        #expect(failed[0].recipient == "max@example.com")
        #expect(try await rig.queue.find(id: failed[0].id)?.lastError?.contains("550") == true)
        #expect(try await rig.queue.retry(ids: ["00000000-0000-0000-0000-000000000000"]).isEmpty)
        #expect(try await rig.queue.retry(status: .failed) == [failed[0].id])
        #expect(try await rig.queue.countByStatus()[.queued] == 1)
        try await courier.sendDue()
        #expect(try rig.status(.welcome) == "sent")
        #expect(try rig.smtp.received().count == 1)
    }

    // MARK: - Maximum ages and addressing at send time

    @Test(
        "SMTP down: a reset waits and then goes only to the address the user changed to meanwhile; a three-day-old reset is expired, no token"
    )
    func resetFollowsAddressChange() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        try await rig.smtp.stop()
        let mailer = try rig.mailer(workers: 1)
        defer { mailer.stop() }
        let courier = rig.courier(mailer)
        let running = Task { await courier.run() }
        try await rig.record([
            Self.registered("u20", "old@example.com", name: "pat", at: Self.ago(.seconds(60))),
            Self.reset("u20", id: "reset-20", at: Self.ago(.seconds(30))),
            // Another user's reset, from three days ago (a new consumer group reading retention).
            Self.registered("u21", "sam@example.com", name: "sam", at: Self.ago(.seconds(4 * 86_400))),
            Self.reset("u21", id: "reset-21", at: Self.ago(.seconds(3 * 86_400))),
        ])
        #expect(try rig.pg.psql("SELECT status || ' ' || attempts FROM herald.notifications WHERE event_id = 'reset-21'") == "expired 0")
        #expect(rig.decided.seen.withLock { $0 } == ["password_reset expired"], "counted for the metrics")
        // The courier tries the fresh reset while the server is down: it stays queued.
        try await TestCluster.eventually("the reset attempted during the outage", timeout: .seconds(180)) {
            try rig.pg.psql("SELECT coalesce(last_error, '') FROM herald.notifications WHERE event_id = 'reset-20'")
                .contains("connection failed")
        }
        try await rig.record([
            #"{"event_type":"EmailChanged","event_id":"changed-20","user_id":"u20","old_email":"old@example.com","new_email":"new@example.com","occurred_at":"\#(Self.ago(.seconds(10)))"}"#
        ])
        try await rig.smtp.start()
        try await TestCluster.eventually("the reset and the change notice sent", timeout: .seconds(180)) {
            try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'sent'") == "2"
        }
        courier.triggerShutdown()
        await running.value

        var resets: [SMTPServer.ReceivedMail] = []
        var notices: [SMTPServer.ReceivedMail] = []
        for mail in try rig.smtp.received() {
            let kind = try await ParsedMail.parse(mail.data).header("X-Herald-Kind")
            if kind == "password_reset" { resets.append(mail) } else if kind == "email_changed" { notices.append(mail) }
        }
        try #require(resets.count == 1, "exactly one reset mail")
        #expect(resets[0].to == ["new@example.com"])
        #expect(try await ParsedMail.parse(resets[0].data).header("To") == "pat <new@example.com>")
        #expect(notices.map(\.to) == [["old@example.com"]], "the notice of the change goes to the old address, as the event says")
        #expect(
            try rig.pg.psql("SELECT recipient || ' ' || address_from FROM herald.notifications WHERE event_id = 'reset-20'")
                == "new@example.com user")
        // The old request: expired when queued, never claimed, no token.
        #expect(
            try rig.pg.psql("SELECT status || ' ' || attempts || ' ' || claim_number FROM herald.notifications WHERE event_id = 'reset-21'")
                == "expired 0 0")
        #expect(try rig.pg.psql("SELECT last_error FROM herald.notifications WHERE event_id = 'reset-21'").contains("maximum age"))
        let keys = try rig.redisServer.probe(["KEYS", "reset_password_token:*"])
        try #require(keys.arrayCount == 1, "one token, for the reset sent: \(keys)")
        if case .array(let items?) = keys, let key = items.first?.text {
            #expect(try rig.redisServer.probe(["GET", key]).text == "u20")
        }
    }

    final class RecordingMailObserver: MailQueueObserver {
        let seen = Mutex<[String]>([])

        func queued(kind: NotificationKind, status: NotificationStatus) {
            seen.withLock { $0.append("\(kind.rawValue) \(status.rawValue)") }
        }
    }

    /// Counts the tokens the courier stores.
    final class CountingTokens: LinkTokenStore {
        let inner: any LinkTokenStore
        let stored = Mutex(0)

        init(_ inner: any LinkTokenStore) { self.inner = inner }

        func store(_ grant: LinkGrant, tokenHash: String, ttl: Duration) async throws {
            stored.withLock { $0 += 1 }
            try await inner.store(grant, tokenHash: tokenHash, ttl: ttl)
        }

        func remove(_ purpose: LinkPurpose, tokenHash: String) async throws {
            try await inner.remove(purpose, tokenHash: tokenHash)
        }
    }

    @Test("a reset queued fresh whose turn comes after its maximum age is expired then, without minting a token")
    func expiredWhenSent() async throws {
        let rig = try await Rig()
        defer { rig.shutdown() }
        let mailer = try rig.mailer()
        defer { mailer.stop() }
        let requested = EventTime.now()
        try await rig.record([
            Self.registered("u22", "lee@example.com", name: "lee"), Self.reset("u22", id: "reset-22", at: RFC3339.format(requested)),
        ])
        #expect(try rig.status(.passwordReset) == "queued")
        let tokens = CountingTokens(RedisLinkTokenStore(client: rig.redis))
        let courier = rig.courier(mailer, maxAges: MailMaxAges.defaults.merging([.passwordReset: .seconds(1)]), tokens: tokens)
        // Its turn comes late (an SMTP outage, a long queue): past the one-second maximum age.
        try await TestCluster.eventually("the request older than its maximum age", timeout: .seconds(180)) {
            EventTime.now().millisecondsSinceEpoch - requested.millisecondsSinceEpoch > 1_100
        }
        let pass = try await courier.sendDue()
        #expect(pass.outcomes[.expired] == 1)
        #expect(try rig.pg.psql("SELECT status || ' ' || attempts FROM herald.notifications WHERE event_id = 'reset-22'") == "expired 0")
        #expect(try rig.pg.psql("SELECT last_error FROM herald.notifications WHERE event_id = 'reset-22'").contains("maximum age of 1s"))
        #expect(tokens.stored.withLock { $0 } == 0, "no token minted")
        #expect(try rig.redisServer.probe(["KEYS", "reset_password_token:*"]).arrayCount == 0)
        #expect(try rig.smtp.received().isEmpty)
    }

    // MARK: - Claims: leases, shutdown, ownership

    static func welcome(_ i: Int) -> String {
        #"{"event_type":"UserCreated","event_id":"w-\#(i)","user_id":"w\#(i)","username":"w\#(i)","email":"w\#(i)@example.com"}"#
    }

    @Test(
        "a courier claims only what its senders start; at shutdown the sends in flight finish and the rest stays queued, attempts unchanged"
    )
    func shutdownFinishesOnlyInFlight() async throws {
        let rig = try await Rig(smtp: .init(hold: true))
        defer { rig.shutdown() }
        let mailer = try rig.mailer(workers: 2, transferTimeout: .seconds(300))
        defer { mailer.stop() }
        try await rig.record((0..<6).map(Self.welcome))
        let courier = rig.courier(mailer, concurrency: 2)
        let running = Task { await courier.run() }
        try await TestCluster.eventually("two sends held at DATA", timeout: .seconds(180)) { try rig.smtp.held() == 2 }
        // The claim covers only the two sends in flight.
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'sending'") == "2")
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'queued' AND claim_number = 0") == "4")
        courier.triggerShutdown()
        try rig.smtp.releaseAll()
        await running.value
        #expect(try rig.smtp.held() == 2, "no send started after the shutdown began")
        #expect(try rig.smtp.received().count == 2)
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'sent' AND attempts = 1") == "2")
        #expect(
            try rig.pg.psql(
                "SELECT count(*) FROM herald.notifications WHERE status = 'queued' AND attempts = 0 AND claimed_at IS NULL AND last_error IS NULL"
            ) == "4")
        #expect(try rig.pg.psql("SELECT count(*) FROM herald.notifications WHERE status = 'sending'") == "0")
    }

    @Test("a courier whose claim was requeued and taken by another cannot record its stale outcome over the newer one")
    func staleOutcomeNotRecorded() async throws {
        let rig = try await Rig(smtp: .init(hold: true))
        defer { rig.shutdown() }
        let mailerA = try rig.mailer(workers: 1, transferTimeout: .seconds(300))
        let mailerB = try rig.mailer(workers: 1, transferTimeout: .seconds(300))
        defer {
            mailerA.stop()
            mailerB.stop()
        }
        try await rig.record([Self.welcome(30)])
        let a = rig.courier(mailerA, concurrency: 1)
        let b = rig.courier(mailerB, concurrency: 1)
        let passA = Task { try await a.sendDue() }
        try await TestCluster.eventually("A's send held at DATA", timeout: .seconds(180)) { try rig.smtp.held() == 1 }
        // A's claim outlives the claim timeout: another courier's sweep requeues the mail and B takes it.
        _ = try rig.pg.psql("UPDATE herald.notifications SET claimed_at = now() - interval '1 hour'")
        #expect(try await rig.queue.requeueStale(claimedLongerThan: .seconds(600)) == 1)
        let passB = Task { try await b.sendDue() }
        try await TestCluster.eventually("B's send held at DATA", timeout: .seconds(180)) { try rig.smtp.held() == 2 }
        #expect(
            try rig.pg.psql("SELECT status || ' ' || claim_number || ' ' || claimed_by FROM herald.notifications")
                == "sending 2 \(b.instanceID)")
        // A's send ends (refused) while B holds the claim: A's outcome must not count.
        try rig.smtp.release(1, reply: "550")
        #expect(try await passA.value.outcomes[.failed] == 1)
        #expect(try rig.pg.psql("SELECT status || ' ' || attempts FROM herald.notifications") == "sending 0")
        try rig.smtp.release(2)
        #expect(try await passB.value.outcomes[.sent] == 1)
        #expect(
            try rig.pg.psql(
                "SELECT status || ' ' || attempts || ' ' || coalesce(last_error, '-') || ' ' || claimed_by FROM herald.notifications")
                == "sent 1 - \(b.instanceID)")
        #expect(try rig.smtp.received().count == 1)
    }
}

extension RESPValue {
    var integerValue: Int? {
        if case .integer(let n) = self { return n }
        return nil
    }

    var arrayCount: Int? {
        if case .array(let items?) = self { return items.count }
        return nil
    }
}
