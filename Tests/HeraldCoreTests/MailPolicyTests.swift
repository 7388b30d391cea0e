import HeraldCore
import Testing

/// Who gets mail: the rules the inbox asks when it records an event and the courier asks
/// before it mints a token.
@Suite("Mail policy: whether a mail is queued or sent, and to whom")
struct MailPolicyTests {
    static let now = mayFirstNoon
    static func ago(_ seconds: Int64) -> EventTime {
        EventTime(millisecondsSinceEpoch: now.millisecondsSinceEpoch - seconds * 1000)
    }

    static func address(_ text: String) -> EmailAddress { try! EmailAddress(text) }

    static func request(
        _ kind: NotificationKind = .passwordReset, to: String? = "event@example.com", addressing: MailAddressing = .event,
        locale: String? = nil, requestedAt: EventTime = ago(60)
    ) -> MailRequest {
        MailRequest(
            kind: kind, userID: try! UserID("u1"), to: to.map(address), addressing: addressing,
            locale: locale.map { try! LanguageTag($0) }, requestedAt: requestedAt)
    }

    static func stored(_ email: String? = "stored@example.com", locale: String? = nil, deleted: Bool = false) -> StoredRecipient {
        StoredRecipient(
            email: email.map(address), username: try! Username("ana"), locale: locale.map { try! LanguageTag($0) }, deleted: deleted)
    }

    /// Decides with `policy`; fails the test if the recent count is asked for although `counted` is nil.
    static func decide(
        _ request: MailRequest, _ recipient: StoredRecipient?, policy: MailPolicy = MailPolicy(), counted: Int? = nil
    ) -> (MailQueueDecision, [String]) {
        var asked: [String] = []
        let decision = policy.queueDecision(for: request, recipient: recipient, now: now) { address, window in
            asked.append("\(address) \(Int(window.seconds))s")
            if counted == nil { Issue.record("the recent count was asked for") }
            return counted ?? 0
        }
        return (decision, asked)
    }

    // MARK: - When queued

    @Test("a deleted recipient gets nothing, whatever the event names")
    func deletedGetsNothing() {
        for addressing in [MailAddressing.event, .user] {
            let (decision, _) = Self.decide(Self.request(addressing: addressing), Self.stored(deleted: true))
            #expect(decision == .recipientDeleted)
            #expect(decision.notification == nil)
        }
    }

    @Test("mail addressed by the event goes to the event's address, else the stored one")
    func eventAddressing() {
        #expect(
            Self.decide(Self.request(to: "event@example.com"), Self.stored()).0
                == .queue(MailAddressee(address: Self.address("event@example.com"), locale: nil)))
        #expect(
            Self.decide(Self.request(to: nil), Self.stored()).0
                == .queue(MailAddressee(address: Self.address("stored@example.com"), locale: nil)))
    }

    @Test("mail to the user's address records the stored one, else the event's")
    func userAddressing() {
        #expect(
            Self.decide(Self.request(addressing: .user), Self.stored()).0.notification?.addressee.address
                == Self.address("stored@example.com"))
        #expect(
            Self.decide(Self.request(addressing: .user), nil).0.notification?.addressee.address == Self.address("event@example.com"))
        #expect(
            Self.decide(Self.request(addressing: .user), Self.stored(nil)).0.notification?.addressee.address
                == Self.address("event@example.com"))
    }

    @Test("no address in the event and none stored: the event's own content fails")
    func noAddress() {
        for recipient in [nil, Self.stored(nil)] {
            let (decision, asked) = Self.decide(Self.request(to: nil), recipient)
            guard case .noAddress(let reason) = decision else {
                Issue.record("\(decision)")
                continue
            }
            #expect(reason == "no address for user u1: the event carries none and no recipient is stored (password_reset mail)")
            #expect(asked.isEmpty)
        }
    }

    @Test("the locale is the event's, else the stored one")
    func locale() {
        #expect(Self.decide(Self.request(locale: "pt-BR"), Self.stored(locale: "en")).0.notification?.addressee.locale?.rawValue == "pt-BR")
        #expect(Self.decide(Self.request(locale: nil), Self.stored(locale: "en")).0.notification?.addressee.locale?.rawValue == "en")
        #expect(Self.decide(Self.request(locale: nil), nil).0.notification?.addressee.locale == nil)
    }

    @Test("an event older than its kind's maximum age is recorded expired, with the reason, without counting")
    func expiredWhenQueued() throws {
        let policy = MailPolicy(rateLimits: [.passwordReset: MailRateLimit(count: 1, window: .seconds(3600))])
        let (decision, asked) = Self.decide(Self.request(requestedAt: Self.ago(2 * 3600)), Self.stored(), policy: policy)
        let notification = try #require(decision.notification)
        #expect(notification.status == .expired)
        #expect(notification.addressee.address == Self.address("event@example.com"))
        #expect(notification.reason?.contains("older than the password_reset maximum age of 1h") == true, "\(decision)")
        #expect(asked.isEmpty)
        // A notice lives a day.
        #expect(Self.decide(Self.request(.passwordChanged, requestedAt: Self.ago(2 * 3600)), nil).0.notification?.status == .queued)
    }

    @Test("over the rate limit to the address, the mail is recorded suppressed; under it, queued")
    func rateLimit() throws {
        let policy = MailPolicy(rateLimits: [.passwordReset: MailRateLimit(count: 3, window: .seconds(3600))])
        let (over, asked) = Self.decide(Self.request(addressing: .user), Self.stored(), policy: policy, counted: 3)
        #expect(asked == ["stored@example.com 3600s"], "counted for the address the mail goes to, over the kind's window")
        let notification = try #require(over.notification)
        #expect(notification.status == .suppressed)
        #expect(notification.reason == "rate limit: at most 3 password_reset mails per 3600s to one address")
        #expect(Self.decide(Self.request(), nil, policy: policy, counted: 2).0.notification?.status == .queued)
        // Kinds without a limit are never counted.
        #expect(Self.decide(Self.request(.passwordChanged), nil, policy: policy).0.notification?.status == .queued)
    }

    @Test("a failing count is thrown as it is (the inbox's outage)")
    func countFails() {
        struct Down: Error {}
        let policy = MailPolicy(rateLimits: [.passwordReset: MailRateLimit(count: 3, window: .seconds(3600))])
        #expect(throws: Down.self) {
            _ = try policy.queueDecision(for: Self.request(), recipient: nil, now: Self.now) { _, _ in throw Down() }
        }
    }

    // MARK: - When sent

    static func claimed(
        _ kind: NotificationKind = .passwordReset, addressing: MailAddressing = .user, recipient: String = "queued@example.com",
        eventEmail: String? = "event@example.com", stored: StoredRecipient? = stored(), requestedAt: EventTime = ago(60)
    ) -> ClaimedNotification {
        ClaimedNotification(
            id: "n1", eventID: "e1", kind: kind, userID: try! UserID("u1"), addressing: addressing, recipient: address(recipient),
            eventEmail: eventEmail.map(address), locale: nil, variables: [:], attempts: 0, requestedAt: requestedAt,
            storedRecipient: stored, claim: NotificationClaim(id: "n1", owner: "courier", number: 1))
    }

    @Test("mail to the user's address goes to the address stored now, else the event's, else the one recorded when queued")
    func userAddressAtSend() {
        let policy = MailPolicy()
        #expect(policy.sendDecision(for: Self.claimed(), now: Self.now) == .send(to: Self.address("stored@example.com")))
        #expect(policy.sendDecision(for: Self.claimed(stored: nil), now: Self.now) == .send(to: Self.address("event@example.com")))
        #expect(
            policy.sendDecision(for: Self.claimed(eventEmail: nil, stored: Self.stored(nil)), now: Self.now)
                == .send(to: Self.address("queued@example.com")))
    }

    @Test("mail addressed by the event goes where it was queued to, whatever is stored now")
    func eventAddressAtSend() {
        #expect(
            MailPolicy().sendDecision(for: Self.claimed(.emailChanged, addressing: .event), now: Self.now)
                == .send(to: Self.address("queued@example.com")))
    }

    @Test("a recipient deleted since it was queued: suppressed, before the age is looked at")
    func deletedAtSend() {
        let decision = MailPolicy().sendDecision(
            for: Self.claimed(stored: Self.stored(deleted: true), requestedAt: Self.ago(3 * 86_400)), now: Self.now)
        #expect(decision == .suppressed(reason: "the recipient was deleted after the mail was queued"))
    }

    @Test("past its kind's maximum age when its turn comes: expired")
    func expiredAtSend() {
        let policy = MailPolicy(maxAges: MailMaxAges.defaults.merging([.passwordReset: .seconds(30)]))
        guard case .expired(let reason) = policy.sendDecision(for: Self.claimed(requestedAt: Self.ago(31)), now: Self.now) else {
            Issue.record("not expired")
            return
        }
        #expect(reason.contains("maximum age of 30s"), "\(reason)")
        #expect(
            policy.sendDecision(for: Self.claimed(requestedAt: Self.ago(30)), now: Self.now)
                == .send(to: Self.address("stored@example.com")))
    }
}
