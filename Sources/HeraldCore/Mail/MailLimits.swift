// The limits `MailPolicy` applies per kind: rate limits and maximum ages.

/// At most `count` mails of one kind to one address per `window`; the excess is queued as
/// `suppressed`.
public struct MailRateLimit: Sendable, Hashable, CustomStringConvertible {
    public var count: Int
    public var window: Duration

    public init(count: Int, window: Duration) {
        self.count = count
        self.window = window
    }

    public var description: String { "\(count) per \(Int64(window.seconds))s" }

    /// At most 5 mails with a one-time link per address and kind per hour (Supabase and
    /// Keycloak limit the same mails); security notices are never limited.
    public static let defaults: [NotificationKind: MailRateLimit] = [
        .passwordReset: MailRateLimit(count: 5, window: .seconds(3600)),
        .verifyEmail: MailRateLimit(count: 5, window: .seconds(3600)),
        .emailChangeConfirm: MailRateLimit(count: 5, window: .seconds(3600)),
    ]
}

/// How old a mail's event may be, per kind: mail past it is not sent (`expired`), whether it
/// is found so when queued (a new consumer group, or a restore, reading old events) or when
/// its turn to be sent comes (a mail that waited out an SMTP outage). Counted from the
/// event's time.
public struct MailMaxAges: Sendable, Hashable {
    public var byKind: [NotificationKind: Duration]

    /// An hour for the mails with a one-time link, a day for the notices and the welcome.
    public static let defaults = MailMaxAges(
        byKind: Dictionary(uniqueKeysWithValues: NotificationKind.allCases.map { ($0, $0.link == nil ? .seconds(86_400) : .seconds(3600)) })
    )

    /// Only the kinds in `byKind` have a maximum age.
    public init(byKind: [NotificationKind: Duration]) {
        self.byKind = byKind
    }

    /// These maximum ages with `changes` applied: kinds not named keep theirs.
    public func merging(_ changes: [NotificationKind: Duration]) -> MailMaxAges {
        MailMaxAges(byKind: byKind.merging(changes) { _, new in new })
    }

    /// The maximum age of `kind`; nil when it has none.
    public subscript(kind: NotificationKind) -> Duration? { byKind[kind] }

    /// Why a mail of `kind` asked for at `requestedAt` is too old at `now`; nil while it is not.
    public func expiry(_ kind: NotificationKind, requestedAt: EventTime, now: EventTime) -> String? {
        guard let maxAge = byKind[kind] else { return nil }
        let age = Duration.milliseconds(now.millisecondsSinceEpoch - requestedAt.millisecondsSinceEpoch)
        guard age > maxAge else { return nil }
        let seconds = age >= .seconds(1) ? Duration.seconds(Int64(age.seconds)) : age
        return
            "requested at \(requestedAt), \(seconds.unitsDescription) ago: older than the \(kind.rawValue) maximum age of \(maxAge.unitsDescription)"
    }
}
