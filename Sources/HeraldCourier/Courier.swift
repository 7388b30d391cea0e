import HeraldCore
import HeraldMail
import HeraldSMTP
import Logging
import Synchronization

/// How the courier works through the queue.
public struct CourierSettings: Sendable {
    /// Notifications claimed per round trip (`HERALD_MAIL_BATCH`).
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
    /// Longest wait between two looks at the queue when nothing rang the doorbell
    /// (`HERALD_MAIL_POLL_INTERVAL`): mail queued by another instance, or due for a retry.
    public var pollInterval: Duration = .seconds(5)
    /// A notification `sending` for longer than this is requeued: its courier died
    /// (`HERALD_MAIL_CLAIM_TIMEOUT`). Must exceed the SMTP transfer timeout.
    public var claimTimeout: Duration = .seconds(600)

    public init() {}
}

/// Notified of each outcome, for metrics (issue 5) and benchmarks.
public protocol CourierObserver: Sendable {
    func courier(sent notification: ClaimedNotification, outcome: NotificationOutcome, duration: Duration)
}

/// Sends the queued mail: claims due notifications in batches (`FOR UPDATE SKIP LOCKED`, so
/// several instances share the queue), mints a one-time token for link kinds (only its hash
/// goes to Redis, before the mail leaves, so the link works as soon as it arrives), renders
/// the templates, sends, and records each outcome:
///
/// - accepted → `sent`, with the Message-ID;
/// - 5xx or a message that cannot be sent → `failed`, with the server's reply;
/// - 4xx, a timeout → queued again with exponential backoff, `abandoned` after
///   `maxAttempts` attempts;
/// - the SMTP server, Redis or the database unreachable, or refusing Herald's TLS or
///   credentials → the mail goes back to the queue without using an attempt and the courier
///   pauses, with growing pauses while the outage lasts: an outage delays mail, it never
///   abandons it;
/// - recipient deleted since the mail was queued → `suppressed`.
///
/// A token minted for a mail that was then not sent is removed from Redis again.
public final class Courier: Sendable {
    let queue: any MailQueue
    let tokens: any LinkTokenStore
    let transport: any MailTransport
    let composer: MailComposer
    let settings: CourierSettings
    let doorbell: Doorbell
    let observer: (any CourierObserver)?
    let logger: Logger
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
    }

    /// Asks `run` to return after the batch in flight.
    public func triggerShutdown() {
        stopping.store(true, ordering: .relaxed)
        stopSignal.ring()
        doorbell.ring()
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Works through the queue until `triggerShutdown`.
    public func run() async {
        logger.info("courier started", metadata: ["batch": "\(settings.batchSize)", "concurrency": "\(settings.concurrency)"])
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
                if let reason = pass.outage {
                    outage = reason
                } else {
                    outages = 0
                    if pass.claimed < settings.batchSize { await doorbell.wait(timeout: settings.pollInterval) }
                    continue
                }
            } catch {
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
        /// Set when a dependency was down: the rest of the batch went back to the queue.
        public var outage: String?
    }

    /// One pass: claims a batch, sends it and records the outcomes. Throws when the queue
    /// cannot be read (nothing was claimed then).
    @discardableResult
    public func sendDue() async throws -> Pass {
        let claimed = try await queue.claim(limit: settings.batchSize)
        var pass = Pass(claimed: claimed.count)
        if claimed.isEmpty { return pass }
        let results = await send(claimed)
        var outcomes: [(id: String, outcome: NotificationOutcome)] = []
        for (notification, result) in zip(claimed, results) {
            let outcome: NotificationOutcome
            switch result {
            case .done(let o):
                outcome = o
            case .outage(let reason):
                pass.outage = pass.outage ?? reason
                outcome = .retry(reason: reason, delay: .zero, countsAsAttempt: false)
            case .notStarted:
                outcome = .retry(reason: pass.outage ?? "not attempted", delay: .zero, countsAsAttempt: false)
            }
            pass.outcomes[outcome.status, default: 0] += 1
            outcomes.append((notification.id, outcome))
        }
        await record(outcomes)
        return pass
    }

    /// Records outcomes, retrying while the database is unreachable. Sent mail whose outcome
    /// cannot be recorded before shutdown stays `sending` and is requeued after the claim
    /// timeout (sent again once, with the same Message-ID).
    private func record(_ outcomes: [(id: String, outcome: NotificationOutcome)]) async {
        var attempt = 0
        while true {
            do {
                try await queue.complete(outcomes)
                return
            } catch {
                attempt += 1
                if isStopping && attempt > 3 {
                    logger.error(
                        "outcomes of sent mail not recorded at shutdown; they will be requeued after the claim timeout",
                        metadata: ["count": "\(outcomes.count)", "error": "\(error)"])
                    return
                }
                let delay = settings.outage.delay(attempt: attempt)
                logger.warning(
                    "cannot record mail outcomes; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    enum SendResult: Sendable {
        case done(NotificationOutcome)
        /// A dependency is down: stop starting sends, return the mail to the queue.
        case outage(String)
        case notStarted
    }

    /// Sends the batch with at most `concurrency` sends in flight; after an outage no new
    /// send starts.
    private func send(_ batch: [ClaimedNotification]) async -> [SendResult] {
        var results = [SendResult](repeating: .notStarted, count: batch.count)
        await withTaskGroup(of: (Int, SendResult).self) { group in
            var next = 0
            var inFlight = 0
            var outage = false
            while true {
                while !outage && inFlight < max(1, settings.concurrency) && next < batch.count {
                    let index = next
                    let notification = batch[index]
                    group.addTask { (index, await self.deliver(notification)) }
                    next += 1
                    inFlight += 1
                }
                guard let (index, result) = await group.next() else { break }
                inFlight -= 1
                results[index] = result
                if case .outage = result { outage = true }
            }
        }
        return results
    }

    /// One notification, start to end.
    func deliver(_ notification: ClaimedNotification) async -> SendResult {
        let started = ContinuousClock.now
        let result = await attempt(notification)
        if case .done(let outcome) = result {
            log(notification, outcome)
            observer?.courier(sent: notification, outcome: outcome, duration: ContinuousClock.now - started)
        }
        return result
    }

    private func attempt(_ notification: ClaimedNotification) async -> SendResult {
        if notification.recipientDeleted {
            return .done(.suppressed(reason: "the recipient was deleted after the mail was queued"))
        }
        let now = EventTime.now()
        // The token: minted here, its hash stored before the mail leaves.
        var token: LinkToken?
        let grant = composer.grant(for: notification)
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
            message = try composer.compose(notification, token: token, now: now)
        } catch {
            await forget(token, grant)
            return .done(.failed(reason: "cannot render the mail: \(error)"))
        }
        do {
            let receipt = try await transport.send(message)
            return .done(.sent(messageID: receipt.messageID, reply: receipt.reply))
        } catch let error as MailError {
            await forget(token, grant)
            return classify(error, notification)
        } catch {
            await forget(token, grant)
            return classify(MailError.make(.failed, "\(error)"), notification)
        }
    }

    /// The outcome of a send that failed with `error`.
    func classify(_ error: MailError, _ notification: ClaimedNotification) -> SendResult {
        let reason = error.serverReply.map { "\(error.summary): \($0)" } ?? "\(error)"
        switch error.code {
        case .invalidMessage, .rejected:
            return .done(.failed(reason: reason))
        case .connectionFailed, .tlsFailed, .certificateRejected, .authenticationFailed, .mailerClosed, .writeFailed:
            // Every mail would fail the same way: pause instead of using up attempts.
            return .outage(reason)
        default:
            // 4xx, timeouts, other transfer failures: this mail's attempt counts.
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
        }
    }
}
