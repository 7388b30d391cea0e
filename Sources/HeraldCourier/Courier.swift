import HeraldCore
import HeraldMail
import Logging
import Synchronization

/// How the courier works through the queue.
public struct CourierSettings: Sendable {
    /// Most notifications one pass over the queue works through before the courier looks for
    /// stale claims again (`HERALD_MAIL_BATCH`). A notification is claimed only when a sender
    /// is free to start it, so at most `concurrency` are claimed at once.
    public var batchSize = 32
    /// Sends in flight at once; match the mailer's workers (`HERALD_SMTP_WORKERS`).
    public var concurrency = 4
    /// Delivery attempts before a mail is `abandoned` (`HERALD_MAIL_MAX_ATTEMPTS`).
    public var maxAttempts = 8
    /// Delay before the next attempt of a deferred mail: doubles per attempt, with jitter
    /// (`HERALD_MAIL_RETRY_INITIAL`, `HERALD_MAIL_RETRY_MAX`).
    public var retry = Backoff(initial: .seconds(30), cap: .seconds(3600))
    /// Pause of the whole courier while the SMTP server, Redis or PostgreSQL is unreachable:
    /// grows from `initial` to `cap` while the outage lasts.
    public var outage = Backoff(initial: .seconds(1), cap: .seconds(60))
    /// Longest wait between two looks at the queue when nothing rang the doorbell (which the
    /// LISTEN connection rings when any instance's inbox queued mail)
    /// (`HERALD_MAIL_POLL_INTERVAL`): mail due for a retry, or queued while that connection
    /// was down.
    public var pollInterval: Duration = .seconds(5)
    /// A notification `sending` for longer than this is requeued: its courier died
    /// (`HERALD_MAIL_CLAIM_TIMEOUT`). Must exceed the SMTP transfer timeout: a claim covers
    /// one send, started as soon as it is claimed.
    public var claimTimeout: Duration = .seconds(600)
    /// Who gets mail (`MailPolicy.sendDecision`): a recipient deleted since the mail was
    /// queued, mail older than its kind's maximum age (`HERALD_MAIL_MAX_AGE`), the address at
    /// send time. Asked before a token is minted.
    public var policy = MailPolicy()

    public init() {}
}

/// Notified of each outcome, for metrics (issue 5) and benchmarks.
public protocol CourierObserver: Sendable {
    func courier(sent notification: ClaimedNotification, outcome: NotificationOutcome, duration: Duration)
}

/// Sends the queued mail: claims due notifications as senders come free
/// (`FOR UPDATE SKIP LOCKED`, so several instances share the queue), asks the `MailPolicy`
/// whether each still goes and to which address, mints a one-time token for link kinds (only
/// its hash goes to Redis, before the mail leaves, so the link works as soon as it arrives),
/// renders the templates, sends, and records each outcome as soon as its send ends, with the
/// address it went to:
///
/// - accepted → `sent`, with the Message-ID;
/// - refused for good (SMTP 5xx) or a message that cannot be sent → `failed`, with the
///   server's reply;
/// - deferred (SMTP 4xx, a timeout) → queued again with exponential backoff, `abandoned`
///   after `maxAttempts` attempts;
/// - the transport unavailable (the SMTP server unreachable, refusing Herald's TLS or
///   credentials), Redis or the database unreachable → the mail goes back to the queue
///   without using an attempt and the courier pauses, with growing pauses while the outage
///   lasts: an outage delays mail, it never abandons it;
/// - recipient deleted since the mail was queued → `suppressed`;
/// - older than its kind's maximum age → `expired`, no token minted.
///
/// A token minted for a mail that was then not sent is removed from Redis again. Every claim
/// carries this courier's `instanceID` and a claim number, and an outcome is recorded only
/// under the claim that is still current: a courier that outlived its claim (requeued after
/// the claim timeout and taken by another) cannot overwrite the newer outcome.
public final class Courier: Sendable {
    let queue: any MailQueue
    let tokens: any LinkTokenStore
    let transport: any MailTransport
    let composer: MailComposer
    let settings: CourierSettings
    let doorbell: Doorbell
    let observer: (any CourierObserver)?
    let logger: Logger
    /// This courier's id (a random UUID), stamped on its claims (`claimed_by`).
    public let instanceID: String
    private let stopping = Atomic<Bool>(false)
    private let stopSignal = Doorbell()

    public init(
        queue: any MailQueue, tokens: any LinkTokenStore, transport: any MailTransport, composer: MailComposer,
        settings: CourierSettings = CourierSettings(), doorbell: Doorbell = Doorbell(), observer: (any CourierObserver)? = nil,
        logger: Logger
    ) {
        self.queue = queue
        self.tokens = tokens
        self.transport = transport
        self.composer = composer
        self.settings = settings
        self.doorbell = doorbell
        self.observer = observer
        self.logger = logger
        self.instanceID = Self.randomUUID()
    }

    /// Asks the courier to start no new send: sends in flight finish and their outcomes are
    /// recorded, anything claimed and not started goes back to the queue, then `run` (and a
    /// `sendDue` in progress) returns.
    public func triggerShutdown() {
        stopping.store(true, ordering: .relaxed)
        stopSignal.ring()
        doorbell.ring()
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Works through the queue until `triggerShutdown`.
    public func run() async {
        logger.info(
            "courier started",
            metadata: [
                "instance": "\(instanceID)", "batch": "\(settings.batchSize)", "concurrency": "\(settings.concurrency)",
            ])
        var outages = 0
        var lastRequeue = ContinuousClock.now - .seconds(3600)
        while !isStopping {
            if ContinuousClock.now - lastRequeue >= min(settings.claimTimeout / 2, .seconds(60)) {
                lastRequeue = .now
                do {
                    let requeued = try await queue.requeueStale(claimedLongerThan: settings.claimTimeout)
                    if requeued > 0 {
                        logger.warning(
                            "requeued mail left sending by a stopped courier; it may be sent twice (same Message-ID)",
                            metadata: ["count": "\(requeued)"])
                    }
                } catch {
                    logger.warning("cannot requeue stale mail; will try again", metadata: ["error": "\(error)"])
                }
            }
            let outage: String
            do {
                let pass = try await sendDue()
                if isStopping { break }
                if let reason = pass.outage {
                    outage = reason
                } else {
                    outages = 0
                    if pass.claimed < settings.batchSize { await doorbell.wait(timeout: settings.pollInterval) }
                    continue
                }
            } catch {
                if isStopping { break }
                outage = "the mail queue is unavailable: \(error)"
            }
            // A dependency is down: the mail stays queued, the courier waits longer each time.
            outages += 1
            let delay = settings.outage.delay(attempt: outages)
            logger.warning(
                "courier paused: a dependency is unavailable; the mail stays queued",
                metadata: ["error": "\(outage)", "retry_in": "\(delay)", "attempt": "\(outages)"])
            await stopSignal.wait(timeout: delay)
        }
        logger.info("courier stopped")
    }

    /// What one pass over the queue did.
    public struct Pass: Sendable {
        /// Notifications claimed.
        public var claimed = 0
        /// Outcomes by status.
        public var outcomes: [NotificationStatus: Int] = [:]
        /// Claimed as the courier was asked to stop, and put back in the queue unsent.
        public var released = 0
        /// Set when a dependency was down: no further mail was claimed.
        public var outage: String?
    }

    /// One pass: claims due notifications as senders come free (never more than
    /// `concurrency` held at once, each started as soon as it is claimed), sends them and
    /// records each outcome as its send ends; returns when the queue has nothing due,
    /// `batchSize` were claimed, a dependency is down or the courier is stopping, and the
    /// sends in flight have ended. Throws when the queue cannot be read (nothing was claimed
    /// then).
    @discardableResult
    public func sendDue() async throws -> Pass {
        var pass = Pass()
        var failure: (any Error)?
        let concurrency = max(1, settings.concurrency)
        await withTaskGroup(of: Delivery.self) { group in
            var inFlight = 0
            var drained = false
            while true {
                while !isStopping && pass.outage == nil && !drained && inFlight < concurrency && pass.claimed < settings.batchSize {
                    let wanted = min(concurrency - inFlight, settings.batchSize - pass.claimed)
                    let claimed: [ClaimedNotification]
                    do {
                        claimed = try await queue.claim(limit: wanted, owner: instanceID)
                    } catch {
                        // Nothing claimed yet: the caller pauses. Else let the sends in flight end.
                        if pass.claimed == 0 { failure = error } else { pass.outage = "the mail queue is unavailable: \(error)" }
                        drained = true
                        break
                    }
                    pass.claimed += claimed.count
                    if claimed.count < wanted { drained = true }
                    if isStopping {
                        // Asked to stop while claiming: these never start.
                        await release(claimed)
                        pass.released += claimed.count
                        break
                    }
                    for notification in claimed {
                        group.addTask { await self.deliver(notification) }
                    }
                    inFlight += claimed.count
                }
                guard let delivery = await group.next() else { break }
                inFlight -= 1
                pass.outcomes[delivery.status, default: 0] += 1
                if let outage = delivery.outage { pass.outage = pass.outage ?? outage }
            }
        }
        if let failure { throw failure }
        return pass
    }

    /// Puts notifications claimed and not started back in the queue, attempts unchanged. If
    /// the database is unreachable they stay `sending` until the claim timeout requeues them.
    private func release(_ claimed: [ClaimedNotification]) async {
        if claimed.isEmpty { return }
        do {
            try await queue.release(claimed.map(\.claim))
        } catch {
            logger.warning(
                "cannot put unsent mail back in the queue; it is requeued after the claim timeout",
                metadata: ["count": "\(claimed.count)", "error": "\(error)"])
        }
    }

    /// Records one outcome, retrying while the database is unreachable. Sent mail whose outcome
    /// cannot be recorded before shutdown stays `sending` and is requeued after the claim
    /// timeout (sent again once, with the same Message-ID).
    private func record(_ notification: ClaimedNotification, _ outcome: NotificationOutcome, recipient: EmailAddress?) async {
        var attempt = 0
        while true {
            do {
                if try await queue.complete(notification.claim, outcome, recipient: recipient) == false {
                    logger.warning(
                        "mail outcome not recorded: the claim outlived HERALD_MAIL_CLAIM_TIMEOUT, the mail was requeued and another courier's outcome counts",
                        metadata: [
                            "notification": "\(notification.id)", "claim": "\(notification.claim.number)",
                            "status": "\(outcome.status.rawValue)",
                        ])
                }
                return
            } catch {
                attempt += 1
                if isStopping && attempt > 3 {
                    logger.error(
                        "outcome of a mail not recorded at shutdown; it will be requeued after the claim timeout",
                        metadata: ["notification": "\(notification.id)", "error": "\(error)"])
                    return
                }
                let delay = settings.outage.delay(attempt: attempt)
                logger.warning(
                    "cannot record a mail outcome; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    enum SendResult: Sendable {
        case done(NotificationOutcome)
        /// A dependency is down: stop claiming, return the mail to the queue.
        case outage(String)
    }

    /// What one send came to, and the address the policy chose (nil when it was not sent:
    /// suppressed or expired).
    struct Attempt: Sendable {
        let result: SendResult
        let recipient: EmailAddress?
    }

    /// One finished send: the status recorded, and the outage that stopped it, if any.
    struct Delivery: Sendable {
        let status: NotificationStatus
        let outage: String?
    }

    /// One notification, start to end: sent (or not) and its outcome recorded.
    func deliver(_ notification: ClaimedNotification) async -> Delivery {
        let started = ContinuousClock.now
        let outcome: NotificationOutcome
        var outage: String?
        let tried = await attempt(notification)
        switch tried.result {
        case .done(let done):
            outcome = done
            log(notification, done)
            observer?.courier(sent: notification, outcome: done, duration: ContinuousClock.now - started)
        case .outage(let reason):
            // Not this mail's fault: back to the queue without using an attempt.
            outcome = .retry(reason: reason, delay: .zero, countsAsAttempt: false)
            outage = reason
        }
        await record(notification, outcome, recipient: tried.recipient)
        return Delivery(status: outcome.status, outage: outage)
    }

    private func attempt(_ notification: ClaimedNotification) async -> Attempt {
        let now = EventTime.now()
        // Asked before a token exists: a request that waited too long, or whose recipient is
        // gone, gets no link.
        let recipient: EmailAddress
        switch settings.policy.sendDecision(for: notification, now: now) {
        case .suppressed(let reason):
            return Attempt(result: .done(.suppressed(reason: reason)), recipient: nil)
        case .expired(let reason):
            return Attempt(result: .done(.expired(reason: reason)), recipient: nil)
        case .send(let to):
            recipient = to
        }
        return Attempt(result: await send(notification, to: recipient, now: now), recipient: recipient)
    }

    private func send(_ notification: ClaimedNotification, to recipient: EmailAddress, now: EventTime) async -> SendResult {
        // The token: minted here, its hash stored before the mail leaves.
        var token: LinkToken?
        let grant = composer.grant(for: notification, to: recipient)
        if let grant, let lifetime = notification.kind.link?.lifetime {
            let minted = LinkToken()
            do {
                try await tokens.store(grant, tokenHash: minted.hash, ttl: lifetime)
            } catch {
                return .outage("cannot store the link token: \(error)")
            }
            token = minted
        }
        let message: MailMessage
        do {
            message = try composer.compose(notification, to: recipient, token: token, now: now)
        } catch {
            await forget(token, grant)
            return .done(.failed(reason: "cannot render the mail: \(error)"))
        }
        do {
            let receipt = try await transport.deliver(message)
            return .done(.sent(messageID: receipt.messageID, reply: receipt.reply))
        } catch {
            await forget(token, grant)
            return classify(error, notification)
        }
    }

    /// The outcome of a send the transport did not deliver.
    func classify(_ failure: MailDeliveryFailure, _ notification: ClaimedNotification) -> SendResult {
        switch failure {
        case .refused(let reason):
            return .done(.failed(reason: reason))
        case .unavailable(let reason):
            // Every mail would fail the same way: pause instead of using up attempts.
            return .outage(reason)
        case .deferred(let reason):
            // This mail's attempt counts.
            let attempts = notification.attempts + 1
            if attempts >= settings.maxAttempts {
                return .done(.abandoned(reason: "after \(attempts) attempts: \(reason)"))
            }
            return .done(.retry(reason: reason, delay: settings.retry.delay(attempt: attempts), countsAsAttempt: true))
        }
    }

    /// Removes the hash of a token whose mail was not sent (best effort: it expires anyway).
    private func forget(_ token: LinkToken?, _ grant: LinkGrant?) async {
        guard let token, let grant else { return }
        try? await tokens.remove(grant.purpose, tokenHash: token.hash)
    }

    private func log(_ notification: ClaimedNotification, _ outcome: NotificationOutcome) {
        var metadata: Logger.Metadata = [
            "notification": "\(notification.id)", "kind": "\(notification.kind.rawValue)", "event_id": "\(notification.eventID)",
            "attempt": "\(notification.attempts + 1)",
        ]
        switch outcome {
        case .sent(let messageID, _):
            metadata["message_id"] = "\(messageID)"
            logger.info("mail sent", metadata: metadata)
        case .retry(let reason, let delay, _):
            metadata["error"] = "\(reason)"
            metadata["retry_in"] = "\(delay)"
            logger.warning("mail deferred; will retry", metadata: metadata)
        case .failed(let reason):
            metadata["error"] = "\(reason)"
            logger.error("mail failed", metadata: metadata)
        case .abandoned(let reason):
            metadata["error"] = "\(reason)"
            logger.error("mail abandoned", metadata: metadata)
        case .suppressed(let reason):
            metadata["reason"] = "\(reason)"
            logger.notice("mail suppressed", metadata: metadata)
        case .expired(let reason):
            metadata["reason"] = "\(reason)"
            logger.notice("mail expired: too old to send", metadata: metadata)
        }
    }

    /// A random (version 4) UUID, lower-case.
    static func randomUUID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }
}
