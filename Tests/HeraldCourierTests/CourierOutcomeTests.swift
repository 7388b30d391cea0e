import HeraldCore
import HeraldCourier
import Synchronization
import Testing

/// The courier's outcome table with in-memory ports: no PostgreSQL, Redis or SMTP server.
/// (`HeraldIntegrationTests/CourierTests` runs the same courier against real ones.)
@Suite("Courier outcomes, with in-memory ports", .timeLimit(.minutes(1)))
struct CourierOutcomeTests {
    let queue = FakeMailQueue()
    let tokens = FakeTokens()

    func courier(_ transport: FakeTransport, _ settings: CourierSettings = testSettings()) throws -> Courier {
        Courier(queue: queue, tokens: tokens, transport: transport, composer: try testComposer(), settings: settings, logger: quietLogger)
    }

    /// The token in a message's plain-text link to `path`.
    static func token(in message: MailMessage, path: String) throws -> String {
        let match = try #require(
            message.textBody.firstMatch(of: try Regex("https://auth\\.herald\\.test\(path)\\?token=([A-Za-z0-9_-]{43})")),
            "no link in:\n\(message.textBody)")
        return String(try #require(match.output[1].substring))
    }

    @Test("accepted: sent with its Message-ID; a link's token is stored before the mail leaves, and only its hash")
    func sent() async throws {
        let id = queue.add(.passwordReset, to: "ana@example.com")
        let tokens = self.tokens
        let storedFirst = Mutex(false)
        let transport = FakeTransport { _, _ in
            storedFirst.withLock { $0 = tokens.live.count == 1 }
            return .success("250 2.0.0 queued")
        }
        let pass = try await courier(transport).sendDue()
        #expect(pass.claimed == 1)
        #expect(pass.outcomes == [.sent: 1])
        let row = queue.row(id)
        #expect(row.status == .sent && row.attempts == 1 && row.lastError == nil)
        #expect(row.messageID == "<\(id)@herald.test>")
        let message = try #require(transport.delivered.first)
        #expect(message.messageID == row.messageID)
        #expect(message.to.address == email("ana@example.com"))
        #expect(storedFirst.withLock { $0 }, "the hash was in the store when the mail left")
        let token = try Self.token(in: message, path: "/auth/reset-password/confirm")
        let hash = LinkToken(secret: token).hash
        #expect(tokens.live == [hash: .resetPassword(try UserID("u1"))])
        #expect(tokens.ttls[hash] == .seconds(15 * 60))
    }

    @Test("refused for good (SMTP 5xx): failed with the server's reply, an attempt used, not retried; the token removed")
    func refused() async throws {
        let id = queue.add(.verifyEmail)
        let transport = FakeTransport { _, _ in .failure(.refused(reason: "rejected: 550 5.7.1 rejected by policy")) }
        let courier = try courier(transport)
        #expect(try await courier.sendDue().outcomes == [.failed: 1])
        let row = queue.row(id)
        #expect(row.status == .failed && row.attempts == 1)
        #expect(row.lastError == "rejected: 550 5.7.1 rejected by policy")
        #expect(tokens.mintedCount == 1 && tokens.live.isEmpty, "the unsent mail's token was removed")
        #expect(try await courier.sendDue().claimed == 0)
        #expect(transport.attempts.count == 1)
    }

    @Test("deferred (SMTP 4xx): queued again with backoff, each attempt counted, abandoned after the maximum")
    func deferredThenAbandoned() async throws {
        let id = queue.add(.welcome)
        let transport = FakeTransport { _, _ in .failure(.deferred(reason: "deferred: 451 4.3.0 try again later")) }
        let courier = try courier(transport, testSettings(maxAttempts: 3))
        #expect(try await courier.sendDue().outcomes == [.queued: 1])
        #expect(queue.row(id).status == .queued && queue.row(id).attempts == 1)
        #expect(queue.row(id).lastError == "deferred: 451 4.3.0 try again later")
        try await eventually("abandoned") {
            try await courier.sendDue()
            return queue.row(id).status == .abandoned
        }
        #expect(queue.row(id).attempts == 3)
        #expect(queue.row(id).lastError == "after 3 attempts: deferred: 451 4.3.0 try again later")
        #expect(transport.attempts.count == 3)
    }

    @Test("deferred, then accepted: sent on its second attempt")
    func deferredThenSent() async throws {
        let id = queue.add(.passwordReset)
        let transport = FakeTransport { call, _ in call == 1 ? .failure(.deferred(reason: "451")) : .success("250") }
        let courier = try courier(transport)
        try await eventually("sent") {
            try await courier.sendDue()
            return queue.row(id).status == .sent
        }
        #expect(queue.row(id).attempts == 2)
        #expect(tokens.live.count == 1 && tokens.removed.count == 1, "one token per attempt; the deferred one's removed")
    }

    @Test(
        "transport unavailable: the mail goes back without using an attempt, the pass claims no more, the courier pauses and sends once it is back"
    )
    func unavailablePauses() async throws {
        let ids = (0..<3).map { _ in queue.add(.welcome) }
        let down = Atomic<Bool>(true)
        let transport = FakeTransport { _, _ in
            down.load(ordering: .relaxed) ? .failure(.unavailable(reason: "connection failed: Connection refused")) : .success("250")
        }
        let courier = try courier(transport, testSettings(concurrency: 1))
        let pass = try await courier.sendDue()
        #expect(pass.claimed == 1, "no further mail claimed during the outage")
        #expect(pass.outage == "connection failed: Connection refused")
        #expect(queue.count(.queued) == 3)
        #expect(queue.rows.allSatisfy { $0.attempts == 0 })
        #expect(queue.rows.filter { $0.claimNumber == 0 }.count == 2)

        let running = Task { await courier.run() }
        try await eventually("attempted again while paused") { transport.attempts.count >= 3 }
        #expect(queue.rows.allSatisfy { $0.attempts == 0 && $0.status != .abandoned })
        down.store(false, ordering: .relaxed)
        try await eventually("all sent once it is back") { queue.count(.sent) == 3 }
        courier.triggerShutdown()
        await running.value
        #expect(ids.allSatisfy { queue.row($0).attempts == 1 })
        #expect(transport.delivered.count == 3)
    }

    @Test("the token store unavailable: an outage too; nothing is sent without its link working")
    func tokenStoreDown() async throws {
        let id = queue.add(.passwordReset)
        tokens.setFailing(true)
        let transport = FakeTransport()
        let courier = try courier(transport)
        let pass = try await courier.sendDue()
        #expect(pass.outage?.contains("cannot store the link token") == true)
        #expect(queue.row(id).status == .queued && queue.row(id).attempts == 0)
        #expect(transport.attempts.isEmpty)
        tokens.setFailing(false)
        try await eventually("sent") {
            try await courier.sendDue()
            return queue.row(id).status == .sent
        }
    }

    @Test("the queue unavailable: the pass throws, nothing claimed")
    func queueDown() async throws {
        queue.add(.welcome)
        queue.setClaimsFailing(true)
        let transport = FakeTransport()
        await #expect(throws: FakeMailQueue.Unavailable.self) { try await courier(transport).sendDue() }
        #expect(transport.attempts.isEmpty)
    }

    @Test("older than its kind's maximum age when its turn comes: expired, no token minted, nothing sent")
    func expired() async throws {
        let old = EventTime(millisecondsSinceEpoch: EventTime.now().millisecondsSinceEpoch - 2 * 3_600_000)
        let id = queue.add(.passwordReset, requestedAt: old)
        let transport = FakeTransport()
        #expect(try await courier(transport).sendDue().outcomes == [.expired: 1])
        let row = queue.row(id)
        #expect(row.status == .expired && row.attempts == 0)
        #expect(row.lastError?.contains("older than the password_reset maximum age of 1h") == true, "\(row.lastError ?? "")")
        #expect(tokens.mintedCount == 0)
        #expect(transport.attempts.isEmpty)
    }

    @Test("the recipient deleted after the mail was queued: suppressed, no token, nothing sent")
    func deletedRecipient() async throws {
        let id = queue.add(.passwordReset, addressing: .user)
        queue.setRecipient("u1", StoredRecipient(email: email("ana@example.com"), deleted: true))
        let transport = FakeTransport()
        #expect(try await courier(transport).sendDue().outcomes == [.suppressed: 1])
        #expect(queue.row(id).status == .suppressed && queue.row(id).attempts == 0)
        #expect(queue.row(id).lastError == "the recipient was deleted after the mail was queued")
        #expect(tokens.mintedCount == 0)
        #expect(transport.attempts.isEmpty)
    }

    @Test("mail to the user's address goes to the address stored at the claim, recorded in the row; a notice goes where the event said")
    func addressAtSend() async throws {
        let reset = queue.add(.passwordReset, to: "old@example.com", addressing: .user, eventEmail: "old@example.com")
        let notice = queue.add(
            .emailChanged, to: "old@example.com", variables: ["old_email": "old@example.com", "new_email": "new@example.com"])
        queue.setRecipient("u1", StoredRecipient(email: email("new@example.com"), username: try Username("pat")))
        let transport = FakeTransport()
        #expect(try await courier(transport).sendDue().outcomes == [.sent: 2])
        let byKind = Dictionary(
            uniqueKeysWithValues: transport.delivered.map { ($0.headers.first { $0.name == "X-Herald-Kind" }!.value, $0) })
        #expect(byKind["password_reset"]?.to == MailAddress(email("new@example.com"), displayName: "pat"))
        #expect(byKind["email_changed"]?.to.address == email("old@example.com"))
        #expect(queue.row(reset).recipient == email("new@example.com"), "the row shows where it went")
        #expect(queue.row(notice).recipient == email("old@example.com"))
    }

    @Test("a courier whose claim was requeued and taken by another cannot record its outcome over the newer claim's")
    func staleClaimNotRecorded() async throws {
        let id = queue.add(.welcome)
        let transport = FakeTransport(hold: true)
        let a = try courier(transport, testSettings(concurrency: 1))
        let b = try courier(transport, testSettings(concurrency: 1))
        let passA = Task { try await a.sendDue() }
        try await eventually("A's send in flight") { transport.heldCount == 1 }
        // A's claim outlives the claim timeout: the sweep requeues the mail and B takes it.
        #expect(try await queue.requeueStale(claimedLongerThan: .zero) == 1)
        let passB = Task { try await b.sendDue() }
        try await eventually("B's send in flight") { transport.heldCount == 2 }
        #expect(queue.row(id).claimedBy == b.instanceID && queue.row(id).claimNumber == 2)
        transport.release(1, .failure(.refused(reason: "550 refused")))
        #expect(try await passA.value.outcomes == [.failed: 1])
        #expect(queue.row(id).status == .sending && queue.row(id).attempts == 0, "A's outcome did not count")
        transport.release(2)
        #expect(try await passB.value.outcomes == [.sent: 1])
        let row = queue.row(id)
        #expect(row.status == .sent && row.attempts == 1 && row.lastError == nil && row.claimedBy == b.instanceID)
    }

    @Test("claims only as many as it has free senders, each started at once")
    func claimsOnlyFreeSenders() async throws {
        for _ in 0..<5 { queue.add(.welcome) }
        let transport = FakeTransport(hold: true)
        let courier = try courier(transport, testSettings(concurrency: 2))
        let pass = Task { try await courier.sendDue() }
        try await eventually("two sends in flight") { transport.heldCount == 2 }
        #expect(queue.count(.sending) == 2 && queue.count(.queued) == 3)
        for call in 1...5 { transport.release(call) }
        #expect(try await pass.value.outcomes == [.sent: 5])
        #expect(queue.claimLimits.allSatisfy { $0 <= 2 }, "\(queue.claimLimits)")
    }

    @Test("shutdown: the sends in flight finish and are recorded; nothing else is claimed or started")
    func shutdownFinishesOnlyInFlight() async throws {
        for _ in 0..<6 { queue.add(.welcome) }
        let transport = FakeTransport(hold: true)
        let courier = try courier(transport, testSettings(concurrency: 2))
        let running = Task { await courier.run() }
        try await eventually("two sends in flight") { transport.heldCount == 2 }
        courier.triggerShutdown()
        transport.releaseAll()
        await running.value
        #expect(transport.attempts.count == 2, "no send started after the shutdown began")
        #expect(queue.rows.filter { $0.status == .sent && $0.attempts == 1 }.count == 2)
        #expect(queue.rows.filter { $0.status == .queued && $0.attempts == 0 && $0.claimNumber == 0 }.count == 4)
        #expect(queue.count(.sending) == 0)
    }
}
