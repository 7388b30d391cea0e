/// What a handler decided should happen because of an event. Adapters carry effects out;
/// handlers never talk to a dependency themselves, so a later effect kind that lives in
/// PostgreSQL can be committed in the same transaction as the event's inbox row.
public enum Effect: Sendable, Hashable {
    /// Tokens carrying `role` issued before `asOf` must be re-checked (`invalid_role: {role}`).
    case invalidateRole(RoleName, asOf: EventTime)
    /// Tokens of `user` issued before `asOf` are revoked (`revoked_user: {user_id}`).
    case revokeUser(UserID, asOf: EventTime)
    /// Remember who the user is and where to write to them (PostgreSQL `recipients`). Fields
    /// left nil keep their stored value; an older event only fills fields still empty.
    case upsertRecipient(RecipientProfile, asOf: EventTime)
    /// The user's address changed (from `EmailChanged`).
    case changeRecipientEmail(UserID, to: EmailAddress, asOf: EventTime)
    /// The user is gone: no further mail. Deletion is final (user ids are never reused).
    case deleteRecipient(UserID, asOf: EventTime)
    /// Queue a transactional mail (PostgreSQL `notifications`), sent later by the courier.
    case queueMail(MailRequest)

    /// Whether the effect lives in PostgreSQL (committed with the event's inbox row).
    public var isDatabaseEffect: Bool {
        switch self {
        case .invalidateRole, .revokeUser: false
        case .upsertRecipient, .changeRecipientEmail, .deleteRecipient, .queueMail: true
        }
    }
}

/// What Herald knows of a user to write to them.
public struct RecipientProfile: Sendable, Hashable {
    public var userID: UserID
    public var email: EmailAddress?
    public var username: Username?
    public var locale: LanguageTag?

    public init(userID: UserID, email: EmailAddress? = nil, username: Username? = nil, locale: LanguageTag? = nil) {
        self.userID = userID
        self.email = email
        self.username = username
        self.locale = locale
    }
}

/// An event that passed validation, with the effects its handler decided on.
public struct AcceptedEvent: Sendable {
    public let metadata: EventMetadata
    public let event: DomainEvent?
    public let effects: [Effect]

    public init(metadata: EventMetadata, event: DomainEvent?, effects: [Effect]) {
        self.metadata = metadata
        self.event = event
        self.effects = effects
    }
}

/// The kinds of transactional mail. Raw values name the templates (`Templates/<locale>/<kind>.*`).
public enum NotificationKind: String, Sendable, Hashable, CaseIterable, Codable {
    case welcome
    case verifyEmail = "verify_email"
    case passwordReset = "password_reset"
    case passwordChanged = "password_changed"
    case emailChangeConfirm = "email_change_confirm"
    case emailChangeRequested = "email_change_requested"
    case emailChanged = "email_changed"

    /// The one-time link this kind carries, if any, and how long it lives.
    public var link: (purpose: LinkPurpose, lifetime: Duration)? {
        switch self {
        case .verifyEmail: (.verifyEmail, .seconds(24 * 3600))
        case .passwordReset: (.resetPassword, .seconds(15 * 60))
        case .emailChangeConfirm: (.confirmEmailChange, .seconds(24 * 3600))
        default: nil
        }
    }
}

/// What a one-time link lets its holder do (and so which Redis key its token hash goes to).
public enum LinkPurpose: String, Sendable, Hashable {
    case verifyEmail = "verify_email"
    case resetPassword = "reset_password"
    case confirmEmailChange = "confirm_email_change"

    /// The link's path under `HERALD_LINK_BASE_URL` unless configured (docs/integration.md).
    public var defaultPath: String {
        switch self {
        case .resetPassword: "/auth/reset-password/confirm"
        case .confirmEmailChange: "/auth/email-change/confirm"
        case .verifyEmail: "/auth/verify-email/confirm"
        }
    }
}

/// A mail to queue. With `MailAddressing.event` it goes to `to`, else (no address in the
/// event) to the recipient's address stored when it is queued. With `MailAddressing.user`
/// it goes to the user's address stored when it is sent, else to `to`.
public struct MailRequest: Sendable, Hashable {
    public var kind: NotificationKind
    public var userID: UserID
    public var to: EmailAddress?
    public var addressing: MailAddressing
    public var locale: LanguageTag?
    /// Extra template variables (old_email, new_email, ...): never secrets.
    public var variables: [String: String]
    public var requestedAt: EventTime

    public init(
        kind: NotificationKind, userID: UserID, to: EmailAddress?, addressing: MailAddressing = .event, locale: LanguageTag?,
        variables: [String: String] = [:], requestedAt: EventTime
    ) {
        self.kind = kind
        self.userID = userID
        self.to = to
        self.addressing = addressing
        self.locale = locale
        self.variables = variables
        self.requestedAt = requestedAt
    }
}
