/// Where a notification is in its life. Raw values are the `notifications.status` column.
public enum NotificationStatus: String, Sendable, Hashable, CaseIterable {
    /// Waiting for its next attempt (`next_attempt_at`).
    case queued
    /// Claimed by a courier, which is sending it now.
    case sending
    /// Accepted by the SMTP server (or written to the mail directory).
    case sent
    /// Refused for good (an SMTP 5xx, an unrenderable or unsendable message).
    case failed
    /// Still not accepted after the maximum number of attempts.
    case abandoned
    /// Not sent on purpose: over the recipient's rate limit, or the recipient was deleted.
    case suppressed

    /// The statuses an operator may requeue.
    public var isRetryable: Bool { self == .failed || self == .abandoned || self == .suppressed }
}

/// A queued notification a courier claimed: everything it needs to render and send it.
public struct ClaimedNotification: Sendable, Hashable {
    /// The notification's UUID; also the local part of its stable `Message-ID`.
    public let id: String
    public let eventID: String
    public let kind: NotificationKind
    public let userID: UserID
    public let recipient: EmailAddress
    public let locale: LanguageTag?
    /// The variables queued with it (`old_email`, `new_email`): never secrets.
    public let variables: [String: String]
    /// Delivery attempts made before this one.
    public let attempts: Int
    /// When the event that asked for the mail happened.
    public let requestedAt: EventTime
    /// The recipient's username as stored now (how the mail greets them), if known.
    public let username: Username?
    /// The recipient was deleted after the mail was queued: it must not be sent.
    public let recipientDeleted: Bool

    public init(
        id: String, eventID: String, kind: NotificationKind, userID: UserID, recipient: EmailAddress, locale: LanguageTag?,
        variables: [String: String], attempts: Int, requestedAt: EventTime, username: Username?, recipientDeleted: Bool
    ) {
        self.id = id
        self.eventID = eventID
        self.kind = kind
        self.userID = userID
        self.recipient = recipient
        self.locale = locale
        self.variables = variables
        self.attempts = attempts
        self.requestedAt = requestedAt
        self.username = username
        self.recipientDeleted = recipientDeleted
    }
}

/// What became of one attempt to send a claimed notification.
public enum NotificationOutcome: Sendable, Hashable {
    /// Accepted: `messageID` as sent, `reply` the server's answer (or the file written).
    case sent(messageID: String, reply: String?)
    /// Not accepted yet: try again after `delay`. `countsAsAttempt` is false when the mail
    /// never reached a server (the courier was paused because a dependency is down), so an
    /// outage does not use up the mail's attempts.
    case retry(reason: String, delay: Duration, countsAsAttempt: Bool)
    /// Refused for good, with the server's reply or the reason.
    case failed(reason: String)
    /// Out of attempts; `reason` is the last failure.
    case abandoned(reason: String)
    /// Deliberately not sent.
    case suppressed(reason: String)

    public var status: NotificationStatus {
        switch self {
        case .sent: .sent
        case .retry: .queued
        case .failed: .failed
        case .abandoned: .abandoned
        case .suppressed: .suppressed
        }
    }
}

/// The durable mail queue (PostgreSQL `notifications`), shared by every Herald instance.
public protocol MailQueue: Sendable {
    /// Claims up to `limit` due notifications, oldest due first, and marks them `sending`
    /// in a committed transaction (rows another courier holds are skipped, never waited for),
    /// so two couriers never claim the same notification.
    func claim(limit: Int) async throws -> [ClaimedNotification]

    /// Records the outcomes of claimed notifications, in one transaction.
    func complete(_ outcomes: [(id: String, outcome: NotificationOutcome)]) async throws

    /// Puts notifications left `sending` for longer than `timeout` (their courier crashed or
    /// lost its connection) back in the queue; returns how many.
    func requeueStale(claimedLongerThan timeout: Duration) async throws -> Int
}

/// What a one-time link grants, as the auth API reads it from Redis under the token's hash.
public enum LinkGrant: Sendable, Hashable {
    case verifyEmail(UserID)
    case resetPassword(UserID)
    case confirmEmailChange(UserID, newEmail: EmailAddress)

    public var purpose: LinkPurpose {
        switch self {
        case .verifyEmail: .verifyEmail
        case .resetPassword: .resetPassword
        case .confirmEmailChange: .confirmEmailChange
        }
    }
}

/// Where the hashes of one-time link tokens live (Redis). Only the SHA-256 of a token is
/// ever passed here, never the token.
public protocol LinkTokenStore: Sendable {
    /// Stores `grant` under `tokenHash` (lower-case hex SHA-256) for `ttl`.
    func store(_ grant: LinkGrant, tokenHash: String, ttl: Duration) async throws
    /// Removes a hash stored for a mail that was then not sent.
    func remove(_ purpose: LinkPurpose, tokenHash: String) async throws
}

/// At most `count` mails of one kind to one address per `window`; the excess is queued as
/// `suppressed`.
public struct MailRateLimit: Sendable, Hashable, CustomStringConvertible {
    public var count: Int
    public var window: Duration

    public init(count: Int, window: Duration) {
        self.count = count
        self.window = window
    }

    public var description: String { "\(count) per \(window.components.seconds)s" }
}
