import Foundation
import HeraldCore
import HeraldCourier
import HeraldMail
import Logging
import Synchronization

// In-memory fakes of the courier's ports (the queue, the token store, the transport): the
// courier's outcome table is tested without PostgreSQL, Redis or an SMTP server.

let quietLogger = Logger(label: "herald.courier.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// The repository's Templates/ folder.
let templatesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("Templates").path
}()

func email(_ text: String) -> EmailAddress { try! EmailAddress(text) }

/// A composer over the repository's templates, links under https://auth.herald.test.
func testComposer() throws -> MailComposer {
    MailComposer(
        templates: try MailTemplates(directory: templatesDirectory),
        sender: SenderSettings(
            from: try MailAddress(parsing: "Herald Tests <no-reply@herald.test>"), productName: "Acme Cloud",
            supportEmail: "help@herald.test"),
        links: LinkSettings(baseURL: "https://auth.herald.test"))
}

/// Fast backoffs, so that retries come due within the tests' polling.
func testSettings(concurrency: Int = 2, maxAttempts: Int = 8, policy: MailPolicy = MailPolicy()) -> CourierSettings {
    var settings = CourierSettings()
    settings.concurrency = concurrency
    settings.maxAttempts = maxAttempts
    settings.retry = Backoff(initial: .milliseconds(1), cap: .milliseconds(2))
    settings.outage = Backoff(initial: .milliseconds(20), cap: .milliseconds(50))
    settings.pollInterval = .milliseconds(50)
    settings.policy = policy
    return settings
}

/// Waits until `condition` holds, polling; fails the test after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            struct TimedOut: Error, CustomStringConvertible { let description: String }
            throw TimedOut(description: "timed out waiting for \(what)")
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// The mail queue in memory, with the claim rules of `PostgresMailQueue`: only due `queued`
/// rows are claimed, each claim numbered and owned; an outcome is recorded only under the
/// current claim.
final class FakeMailQueue: MailQueue {
    struct Row: Sendable {
        var id: String
        var eventID: String
        var kind: NotificationKind
        var userID: UserID
        var addressing: MailAddressing
        var recipient: EmailAddress
        var eventEmail: EmailAddress?
        var locale: LanguageTag?
        var variables: [String: String]
        var requestedAt: EventTime
        var status: NotificationStatus = .queued
        var attempts = 0
        var nextAttemptAt = ContinuousClock.now
        var lastError: String?
        var messageID: String?
        var claimedBy: String?
        var claimNumber = 0
        var claimedAt: ContinuousClock.Instant?
    }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "connection refused" }
    }

    private struct State {
        var rows: [Row] = []
        var recipients: [UserID: StoredRecipient] = [:]
        var claimsFailing = false
        var claimCalls: [Int] = []
    }

    private let state = Mutex(State())

    /// Queues a mail; returns its id.
    @discardableResult
    func add(
        _ kind: NotificationKind, user: String = "u1", to recipient: String = "ana@example.com",
        addressing: MailAddressing = .event, eventEmail: String? = nil, variables: [String: String] = [:],
        requestedAt: EventTime = .now()
    ) -> String {
        state.withLock { state in
            let id = "00000000-0000-4000-8000-\(String(state.rows.count + 1).leftPadded(to: 12))"
            state.rows.append(
                Row(
                    id: id, eventID: "event-\(state.rows.count + 1)", kind: kind, userID: try! UserID(user), addressing: addressing,
                    recipient: email(recipient), eventEmail: eventEmail.map(email), locale: nil, variables: variables,
                    requestedAt: requestedAt))
            return id
        }
    }

    /// The recipients model the claim reads.
    func setRecipient(_ user: String, _ recipient: StoredRecipient?) {
        state.withLock { $0.recipients[try! UserID(user)] = recipient }
    }

    /// While true, `claim` fails as PostgreSQL down would.
    func setClaimsFailing(_ failing: Bool) {
        state.withLock { $0.claimsFailing = failing }
    }

    func row(_ id: String) -> Row { state.withLock { $0.rows.first { $0.id == id }! } }
    var rows: [Row] { state.withLock { $0.rows } }
    /// The `limit` of every claim.
    var claimLimits: [Int] { state.withLock { $0.claimCalls } }
    func count(_ status: NotificationStatus) -> Int { rows.filter { $0.status == status }.count }

    func claim(limit: Int, owner: String) async throws -> [ClaimedNotification] {
        try state.withLock { state in
            state.claimCalls.append(limit)
            if state.claimsFailing { throw Unavailable() }
            let now = ContinuousClock.now
            let due = state.rows.indices.filter { state.rows[$0].status == .queued && state.rows[$0].nextAttemptAt <= now }
                .sorted { state.rows[$0].nextAttemptAt < state.rows[$1].nextAttemptAt }.prefix(limit)
            return due.map { index in
                state.rows[index].status = .sending
                state.rows[index].claimedBy = owner
                state.rows[index].claimNumber += 1
                state.rows[index].claimedAt = now
                let row = state.rows[index]
                return ClaimedNotification(
                    id: row.id, eventID: row.eventID, kind: row.kind, userID: row.userID, addressing: row.addressing,
                    recipient: row.recipient, eventEmail: row.eventEmail, locale: row.locale, variables: row.variables,
                    attempts: row.attempts, requestedAt: row.requestedAt, storedRecipient: state.recipients[row.userID],
                    claim: NotificationClaim(id: row.id, owner: owner, number: row.claimNumber))
            }
        }
    }

    func complete(_ claim: NotificationClaim, _ outcome: NotificationOutcome, recipient: EmailAddress?) async throws -> Bool {
        state.withLock { state in
            guard
                let index = state.rows.firstIndex(where: {
                    $0.id == claim.id && $0.status == .sending && $0.claimedBy == claim.owner && $0.claimNumber == claim.number
                })
            else { return false }
            if let recipient { state.rows[index].recipient = recipient }
            state.rows[index].status = outcome.status
            state.rows[index].claimedAt = nil
            switch outcome {
            case .sent(let messageID, _):
                state.rows[index].messageID = messageID
                state.rows[index].attempts += 1
                state.rows[index].lastError = nil
            case .retry(let reason, let delay, let countsAsAttempt):
                state.rows[index].lastError = reason
                state.rows[index].attempts += countsAsAttempt ? 1 : 0
                state.rows[index].nextAttemptAt = .now + delay
            case .failed(let reason), .abandoned(let reason):
                state.rows[index].lastError = reason
                state.rows[index].attempts += 1
            case .suppressed(let reason), .expired(let reason):
                state.rows[index].lastError = reason
            }
            return true
        }
    }

    func release(_ claims: [NotificationClaim]) async throws {
        state.withLock { state in
            for claim in claims {
                guard
                    let index = state.rows.firstIndex(where: {
                        $0.id == claim.id && $0.status == .sending && $0.claimedBy == claim.owner && $0.claimNumber == claim.number
                    })
                else { continue }
                state.rows[index].status = .queued
                state.rows[index].claimedAt = nil
            }
        }
    }

    func requeueStale(claimedLongerThan timeout: Duration) async throws -> Int {
        state.withLock { state in
            let now = ContinuousClock.now
            var requeued = 0
            for index in state.rows.indices where state.rows[index].status == .sending {
                guard let claimedAt = state.rows[index].claimedAt, now - claimedAt > timeout else { continue }
                state.rows[index].status = .queued
                state.rows[index].claimedAt = nil
                state.rows[index].nextAttemptAt = now
                state.rows[index].lastError = "requeued: its courier stopped while sending (it may have been sent once)"
                requeued += 1
            }
            return requeued
        }
    }
}

/// The token store in memory: the hashes stored and removed; `failing` as Redis down.
final class FakeTokens: LinkTokenStore {
    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "Redis connection refused" }
    }

    private struct State {
        var stored: [String: (grant: LinkGrant, ttl: Duration)] = [:]
        var removed: [String] = []
        var failing = false
    }

    private let state = Mutex(State())

    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }
    /// Hashes stored and not removed.
    var live: [String: LinkGrant] { state.withLock { $0.stored.mapValues(\.grant) } }
    var ttls: [String: Duration] { state.withLock { $0.stored.mapValues(\.ttl) } }
    var removed: [String] { state.withLock { $0.removed } }
    /// Every hash ever stored.
    var mintedCount: Int { state.withLock { $0.stored.count + $0.removed.count } }

    func store(_ grant: LinkGrant, tokenHash: String, ttl: Duration) async throws {
        try state.withLock { state in
            if state.failing { throw Unavailable() }
            state.stored[tokenHash] = (grant, ttl)
        }
    }

    func remove(_ purpose: LinkPurpose, tokenHash: String) async throws {
        try state.withLock { state in
            if state.failing { throw Unavailable() }
            if state.stored.removeValue(forKey: tokenHash) != nil { state.removed.append(tokenHash) }
        }
    }
}

/// A transport that answers each send as `script` says (per call, from 1), records what it
/// was given and, with `hold`, keeps each send waiting until `release`.
final class FakeTransport: MailTransport {
    typealias Answer = Result<String?, MailDeliveryFailure>

    private struct State {
        var delivered: [MailMessage] = []
        var attempts: [MailMessage] = []
        var held: [Int: CheckedContinuation<Answer?, Never>] = [:]
        var releasedEarly: [Int: Answer?] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let script: @Sendable (_ call: Int, _ message: MailMessage) -> Answer
    private let hold: Bool

    init(hold: Bool = false, script: @escaping @Sendable (_ call: Int, _ message: MailMessage) -> Answer = { _, _ in .success("250 OK") }) {
        self.hold = hold
        self.script = script
    }

    /// Messages accepted.
    var delivered: [MailMessage] { state.withLock { $0.delivered } }
    /// Every message given to `deliver`, accepted or not.
    var attempts: [MailMessage] { state.withLock { $0.attempts } }
    /// Sends waiting to be released.
    var heldCount: Int { state.withLock { $0.held.count } }
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Lets the held send number `call` (from 1) end, with `answer` (nil: as scripted).
    func release(_ call: Int, _ answer: Answer? = nil) {
        let waiter = state.withLock { state in
            guard let waiter = state.held.removeValue(forKey: call) else {
                state.releasedEarly[call] = answer
                return nil as CheckedContinuation<Answer?, Never>?
            }
            return waiter
        }
        waiter?.resume(returning: answer)
    }

    func releaseAll() {
        let waiters = state.withLock { state in
            defer { state.held.removeAll() }
            return state.held
        }
        for (_, waiter) in waiters { waiter.resume(returning: nil) }
    }

    func deliver(_ message: MailMessage) async throws(MailDeliveryFailure) -> MailReceipt {
        let (call, closed) = state.withLock { state in
            state.attempts.append(message)
            return (state.attempts.count, state.closed)
        }
        if closed { throw .unavailable(reason: "the transport is closed") }
        var answer = script(call, message)
        if hold {
            let released: Answer? = await withCheckedContinuation { continuation in
                let early = state.withLock { state -> Answer?? in
                    if let early = state.releasedEarly.removeValue(forKey: call) { return .some(early) }
                    state.held[call] = continuation
                    return .none
                }
                if let early { continuation.resume(returning: early) }
            }
            if let released { answer = released }
        }
        switch answer {
        case .success(let reply):
            state.withLock { $0.delivered.append(message) }
            return MailReceipt(messageID: message.messageID, reply: reply)
        case .failure(let failure):
            throw failure
        }
    }

    func close() async {
        state.withLock { $0.closed = true }
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - count)) + self
    }
}
