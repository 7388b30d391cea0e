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
    /// Not sent, and no token minted: its event was older than the kind's maximum age
    /// (`MailMaxAges`) when it was queued or when its turn to be sent came.
    case expired

    /// The statuses an operator may requeue. Expired mail is final: the request is too old to
    /// act on (a link in it would be past its age; a notice would arrive as stale news).
    public var isRetryable: Bool { self == .failed || self == .abandoned || self == .suppressed }
}

/// Whose address a notification goes to.
public enum MailAddressing: String, Sendable, Hashable {
    /// The address the event named (`recipient`, fixed when the mail is queued): a notice
    /// about an address change goes to the address it is about.
    case event
    /// The user's address when the mail is sent, from the recipients model (the event's
    /// address only when none is stored): a password reset that waited out an SMTP outage
    /// follows an address change made meanwhile.
    case user
}

/// One claim on a notification: the courier instance that holds it and the claim's number
/// (counted per notification). An outcome is recorded only under the claim that is current.
public struct NotificationClaim: Sendable, Hashable {
    /// The notification's UUID.
    public let id: String
    /// The claiming courier instance's id.
    public let owner: String
    /// 1 for the notification's first claim, 2 for its next, …
    public let number: Int

    public init(id: String, owner: String, number: Int) {
        self.id = id
        self.owner = owner
        self.number = number
    }
}

/// A queued notification a courier claimed: everything it needs to decide whether and where
/// it goes (`MailPolicy.sendDecision`), and to render and send it.
public struct ClaimedNotification: Sendable, Hashable {
    /// The notification's UUID; also the local part of its stable `Message-ID`.
    public let id: String
    public let eventID: String
    public let kind: NotificationKind
    public let userID: UserID
    /// Whose address it goes to: the one the event named, or the user's when it is sent.
    public let addressing: MailAddressing
    /// The address recorded in the queue: where `MailAddressing.event` mail goes; for
    /// `MailAddressing.user` mail, the address known when it was queued (or last attempted).
    public let recipient: EmailAddress
    /// The address the event carried, if any.
    public let eventEmail: EmailAddress?
    public let locale: LanguageTag?
    /// The variables queued with it (`old_email`, `new_email`): never secrets.
    public let variables: [String: String]
    /// Delivery attempts made before this one.
    public let attempts: Int
    /// When the event that asked for the mail happened.
    public let requestedAt: EventTime
    /// The user as the recipients model holds them at the claim (address, username, deleted);
    /// nil when none is stored.
    public let storedRecipient: StoredRecipient?
    /// Who holds the notification, under which claim.
    public let claim: NotificationClaim

    public init(
        id: String, eventID: String, kind: NotificationKind, userID: UserID, addressing: MailAddressing, recipient: EmailAddress,
        eventEmail: EmailAddress?, locale: LanguageTag?, variables: [String: String], attempts: Int, requestedAt: EventTime,
        storedRecipient: StoredRecipient?, claim: NotificationClaim
    ) {
        self.id = id
        self.eventID = eventID
        self.kind = kind
        self.userID = userID
        self.addressing = addressing
        self.recipient = recipient
        self.eventEmail = eventEmail
        self.locale = locale
        self.variables = variables
        self.attempts = attempts
        self.requestedAt = requestedAt
        self.storedRecipient = storedRecipient
        self.claim = claim
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
    /// Not sent: older than its kind's maximum age; no token was minted.
    case expired(reason: String)

    public var status: NotificationStatus {
        switch self {
        case .sent: .sent
        case .retry: .queued
        case .failed: .failed
        case .abandoned: .abandoned
        case .suppressed: .suppressed
        case .expired: .expired
        }
    }
}

/// The durable mail queue (PostgreSQL `notifications`), shared by every Herald instance.
public protocol MailQueue: Sendable {
    /// Claims up to `limit` due notifications for the courier instance `owner`, oldest due
    /// first, and marks them `sending` in a committed transaction (rows another courier holds
    /// are skipped, never waited for), so two couriers never claim the same notification.
    /// Each claim gets the next claim number of its notification, and carries the recipient
    /// as stored at the claim.
    func claim(limit: Int, owner: String) async throws -> [ClaimedNotification]

    /// Records the outcome of one claimed notification, only if `claim` is still the current
    /// claim (the notification is `sending`, held by that owner under that number), with
    /// `recipient`, the address it was sent (or tried) to, when the courier addressed it.
    /// Returns false when the claim is not current: it outlived the claim timeout, the
    /// notification was requeued and another courier holds it now, and its outcome is the one
    /// that counts.
    func complete(_ claim: NotificationClaim, _ outcome: NotificationOutcome, recipient: EmailAddress?) async throws -> Bool

    /// Puts claimed notifications whose send never started back in the queue, due at once and
    /// without using an attempt (a courier stopping); claims no longer current are skipped.
    func release(_ claims: [NotificationClaim]) async throws

    /// Puts notifications left `sending` for longer than `timeout` (their courier crashed or
    /// lost its connection) back in the queue; returns how many.
    func requeueStale(claimedLongerThan timeout: Duration) async throws -> Int
}

/// Told what the inbox decided for mail it did not queue for sending (recorded `expired` or
/// `suppressed` at once), for metrics.
public protocol MailQueueObserver: Sendable {
    func queued(kind: NotificationKind, status: NotificationStatus)
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
