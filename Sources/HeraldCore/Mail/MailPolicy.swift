/// Who gets mail, decided in one place: whether a requested mail is queued and to which
/// address, and, when its turn to be sent comes, whether it still goes and where. The
/// adapters only load what the rules need (the stored recipient, the recent count for the
/// rate limit) and store the decision: the inbox asks `queueDecision` in the transaction
/// that records the event, the courier asks `sendDecision` before it mints a token.
///
/// When queued (`queueDecision`), in this order:
/// 1. a deleted recipient gets nothing (deletion is final);
/// 2. the address: for `MailAddressing.event` mail the event's, else the stored one; for
///    `MailAddressing.user` mail the stored one, else the event's; with neither, the event's
///    own content fails (it is dead-lettered: no retry can find an address);
/// 3. the locale: the event's, else the stored one;
/// 4. an event older than its kind's maximum age is recorded `expired`, never sent;
/// 5. over its kind's rate limit to that address the mail is recorded `suppressed`;
/// 6. else it is queued.
///
/// When sent (`sendDecision`), in this order:
/// 1. a recipient deleted since is `suppressed`;
/// 2. past its kind's maximum age it is `expired` (before any token exists);
/// 3. else it goes: `MailAddressing.event` mail to the address fixed when queued,
///    `MailAddressing.user` mail to the user's address stored now, else the event's, else the
///    address recorded when queued.
public struct MailPolicy: Sendable, Hashable {
    /// Per kind, at most so many mails to one address in a window (`HERALD_MAIL_RATE_LIMITS`).
    public var rateLimits: [NotificationKind: MailRateLimit]
    /// Per kind, how old the event may be (`HERALD_MAIL_MAX_AGE`).
    public var maxAges: MailMaxAges

    public init(rateLimits: [NotificationKind: MailRateLimit] = [:], maxAges: MailMaxAges = .defaults) {
        self.rateLimits = rateLimits
        self.maxAges = maxAges
    }

    /// What to do with `request` when its event is recorded.
    ///
    /// - Parameters:
    ///   - recipient: the user as the recipients model holds them now; nil when unknown.
    ///   - now: the time the maximum age is measured at.
    ///   - recentCount: how many mails of the request's kind the queue holds for an address,
    ///     created within a window (suppressed and expired ones, and those of the request's own
    ///     event, not counted). Asked only when the kind has a rate limit and the mail is not
    ///     expired.
    public func queueDecision(
        for request: MailRequest, recipient: StoredRecipient?, now: EventTime,
        recentCount: (_ address: EmailAddress, _ window: Duration) throws -> Int
    ) rethrows -> MailQueueDecision {
        if recipient?.deleted == true { return .recipientDeleted }
        let address: EmailAddress? =
            switch request.addressing {
            case .event: request.to ?? recipient?.email
            case .user: recipient?.email ?? request.to
            }
        guard let address else {
            return .noAddress(
                reason:
                    "no address for user \(request.userID): the event carries none and no recipient is stored (\(request.kind.rawValue) mail)"
            )
        }
        let addressee = MailAddressee(address: address, locale: request.locale ?? recipient?.locale)
        if let reason = maxAges.expiry(request.kind, requestedAt: request.requestedAt, now: now) {
            return .expired(addressee, reason: reason)
        }
        if let limit = rateLimits[request.kind], try recentCount(address, limit.window) >= limit.count {
            return .suppressed(
                addressee,
                reason:
                    "rate limit: at most \(limit.count) \(request.kind.rawValue) mails per \(Int(limit.window.seconds))s to one address")
        }
        return .queue(addressee)
    }

    /// Whether the claimed `notification` is sent now, and to whom; its `storedRecipient` is
    /// the user as the recipients model holds them at the claim.
    public func sendDecision(for notification: ClaimedNotification, now: EventTime) -> MailSendDecision {
        let recipient = notification.storedRecipient
        if recipient?.deleted == true {
            return .suppressed(reason: "the recipient was deleted after the mail was queued")
        }
        if let reason = maxAges.expiry(notification.kind, requestedAt: notification.requestedAt, now: now) {
            return .expired(reason: reason)
        }
        switch notification.addressing {
        case .event:
            return .send(to: notification.recipient)
        case .user:
            return .send(to: recipient?.email ?? notification.eventEmail ?? notification.recipient)
        }
    }
}

/// The user as the recipients model (`recipients`) holds them.
public struct StoredRecipient: Sendable, Hashable {
    public var email: EmailAddress?
    public var username: Username?
    public var locale: LanguageTag?
    /// The user was deleted: no further mail.
    public var deleted: Bool

    public init(email: EmailAddress? = nil, username: Username? = nil, locale: LanguageTag? = nil, deleted: Bool = false) {
        self.email = email
        self.username = username
        self.locale = locale
        self.deleted = deleted
    }
}

/// Where a queued mail goes, and in which language.
public struct MailAddressee: Sendable, Hashable {
    public var address: EmailAddress
    public var locale: LanguageTag?

    public init(address: EmailAddress, locale: LanguageTag?) {
        self.address = address
        self.locale = locale
    }
}

/// `MailPolicy.queueDecision`: what the inbox records for one mail request.
public enum MailQueueDecision: Sendable, Hashable {
    /// Queue it (`queued`), to be sent.
    case queue(MailAddressee)
    /// Record it `suppressed`, never sent: over its kind's rate limit.
    case suppressed(MailAddressee, reason: String)
    /// Record it `expired`, never sent: its event is older than the kind's maximum age.
    case expired(MailAddressee, reason: String)
    /// Record nothing: the recipient was deleted.
    case recipientDeleted
    /// No address in the event and none stored: the event's own content cannot be applied
    /// (`EventContentError`).
    case noAddress(reason: String)

    /// The notification to record (where it goes, its first status, why it is not sent); nil
    /// when none is.
    public var notification: (addressee: MailAddressee, status: NotificationStatus, reason: String?)? {
        switch self {
        case .queue(let addressee): (addressee, .queued, nil)
        case .suppressed(let addressee, let reason): (addressee, .suppressed, reason)
        case .expired(let addressee, let reason): (addressee, .expired, reason)
        case .recipientDeleted, .noAddress: nil
        }
    }
}

/// `MailPolicy.sendDecision`: what the courier does with a claimed mail.
public enum MailSendDecision: Sendable, Hashable {
    /// Send it to this address.
    case send(to: EmailAddress)
    /// Do not send it (`suppressed`).
    case suppressed(reason: String)
    /// Do not send it, and mint no token (`expired`).
    case expired(reason: String)
}
