/// Decides the effects of one kind of event. Pure: no I/O, so it is trivially retried,
/// replayed and tested.
public protocol EventHandler: Sendable {
    /// The event types this handler is registered for.
    var handledTypes: Set<EventType> { get }

    /// The effects of `event`. Throw a `Rejection` (class `handlerRejected`) for an event
    /// that can never be applied.
    func decide(_ event: DomainEvent, metadata: EventMetadata) throws(Rejection) -> [Effect]
}

/// Role and user revocations: the authorization caches the API checks.
public struct RevocationHandler: EventHandler {
    public init() {}

    public let handledTypes: Set<EventType> = [
        "RolePermissionsChanged", "RoleSecurityLevelChanged", "RoleDeleted",
        "UserRolesChanged", "UserSessionsRevoked", "UserDeleted",
    ]

    public func decide(_ event: DomainEvent, metadata: EventMetadata) throws(Rejection) -> [Effect] {
        switch event {
        case .roleChanged(let change):
            return [.invalidateRole(change.role, asOf: metadata.occurredAt)]
        case .userAccessChanged(let change):
            return [.revokeUser(change.userID, asOf: metadata.occurredAt)]
        case .userDeleted(let deleted):
            return [.revokeUser(deleted.userID, asOf: metadata.occurredAt)]
        default:
            throw Rejection(.handlerRejected, "revocation handler cannot handle \(metadata.type)")
        }
    }
}

/// The recipients model: who each user is and where mail for them goes.
public struct RecipientHandler: EventHandler {
    public init() {}

    public let handledTypes: Set<EventType> = ["UserCreated", "UserRegistered", "EmailChanged", "UserDeleted"]

    public func decide(_ event: DomainEvent, metadata: EventMetadata) throws(Rejection) -> [Effect] {
        let at = metadata.occurredAt
        switch event {
        case .userCreated(let e):
            return [.upsertRecipient(RecipientProfile(userID: e.userID, email: e.email, username: e.username, locale: e.locale), asOf: at)]
        case .userRegistered(let e):
            return [.upsertRecipient(RecipientProfile(userID: e.userID, email: e.email, username: e.username, locale: e.locale), asOf: at)]
        case .emailChanged(let e):
            return [.changeRecipientEmail(e.userID, to: e.newEmail, asOf: at)]
        case .userDeleted(let e):
            return [.deleteRecipient(e.userID, asOf: at)]
        default:
            throw Rejection(.handlerRejected, "recipient handler cannot handle \(metadata.type)")
        }
    }
}

/// Transactional mail: which events queue which mail, to whom.
public struct MailHandler: EventHandler {
    /// Kinds switched off by configuration queue nothing.
    public let disabled: Set<NotificationKind>

    public init(disabled: Set<NotificationKind> = []) {
        self.disabled = disabled
    }

    public let handledTypes: Set<EventType> = [
        "UserCreated", "EmailVerificationRequested", "PasswordResetRequested", "PasswordChanged",
        "EmailChangeRequested", "EmailChanged",
    ]

    public func decide(_ event: DomainEvent, metadata: EventMetadata) throws(Rejection) -> [Effect] {
        let at = metadata.occurredAt
        func mail(
            _ kind: NotificationKind, _ user: UserID, _ to: EmailAddress?, _ locale: LanguageTag?, _ vars: [String: String] = [:],
            addressing: MailAddressing = .event
        ) -> Effect? {
            disabled.contains(kind)
                ? nil
                : .queueMail(
                    MailRequest(
                        kind: kind, userID: user, to: to, addressing: addressing, locale: locale, variables: vars, requestedAt: at))
        }
        let effects: [Effect?]
        switch event {
        case .userCreated(let e):
            effects = [mail(.welcome, e.userID, e.email, e.locale)]
        case .emailVerificationRequested(let e):
            effects = [mail(.verifyEmail, e.userID, e.email, e.locale)]
        case .passwordResetRequested(let e):
            // To the user's address when it is sent: the event's may be out of date by then.
            effects = [mail(.passwordReset, e.userID, e.email, e.locale, addressing: .user)]
        case .passwordChanged(let e):
            effects = [mail(.passwordChanged, e.userID, e.email, nil, addressing: .user)]
        case .emailChangeRequested(let e):
            let vars = ["old_email": e.oldEmail.rawValue, "new_email": e.newEmail.rawValue]
            effects = [
                mail(.emailChangeConfirm, e.userID, e.newEmail, nil, vars),
                mail(.emailChangeRequested, e.userID, e.oldEmail, nil, vars),
            ]
        case .emailChanged(let e):
            effects = [
                mail(.emailChanged, e.userID, e.oldEmail, nil, ["old_email": e.oldEmail.rawValue, "new_email": e.newEmail.rawValue])
            ]
        default:
            throw Rejection(.handlerRejected, "mail handler cannot handle \(metadata.type)")
        }
        return effects.compactMap { $0 }
    }
}

/// The handlers `herald run` registers: revocations, recipients and, when mail is on, mail.
public enum StandardHandlers {
    public static let all: [any EventHandler] = handlers(mail: MailHandler())

    /// The standard handlers with `mail` (nil: mail is off).
    public static func handlers(mail: MailHandler?) -> [any EventHandler] {
        [RevocationHandler(), RecipientHandler()] + (mail.map { [$0] } ?? [])
    }

    public static var handledTypes: Set<EventType> { all.reduce(into: []) { $0.formUnion($1.handledTypes) } }

    /// The events only the mail handler takes: with mail off they have no effect at all.
    public static var mailOnlyTypes: Set<EventType> {
        MailHandler().handledTypes.subtracting(handlers(mail: nil).flatMap(\.handledTypes))
    }

    /// The types acknowledged without effect: `ignored` (configured), plus the mail-only
    /// events when mail is off (they are valid events with nothing to do, not dead letters).
    public static func acknowledgedWithoutEffect(ignored: Set<EventType>, mailEnabled: Bool) -> Set<EventType> {
        mailEnabled ? ignored : ignored.union(mailOnlyTypes)
    }
}
