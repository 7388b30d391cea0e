/// The transactional mails Herald sends. The raw value names the template files
/// (`Templates/<locale>/<kind>.subject.mustache`, `….txt.mustache`, `….html.mustache`).
public enum MailKind: String, CaseIterable, Sendable, Hashable, Codable {
    /// After sign-up (UserCreated).
    case welcome
    /// A link that proves the recipient owns the address (EmailVerificationRequested).
    case verifyEmail = "verify_email"
    /// A link to choose a new password (PasswordResetRequested).
    case passwordReset = "password_reset"
    /// Security notice after a password change (PasswordChanged).
    case passwordChanged = "password_changed"
    /// To the new address: a link that confirms an email change (EmailChangeRequested).
    case emailChangeConfirm = "email_change_confirm"
    /// To the old address: a change to another address was requested (EmailChangeRequested).
    case emailChangeRequested = "email_change_requested"
    /// To the old address: the address was changed (EmailChanged).
    case emailChanged = "email_changed"

    /// Whether the mail carries a one-time link (`link`, `linkExpiresInWords`, `linkExpiresAt`).
    public var hasLink: Bool {
        switch self {
        case .verifyEmail, .passwordReset, .emailChangeConfirm: true
        case .welcome, .passwordChanged, .emailChangeRequested, .emailChanged: false
        }
    }

    /// Whether the mail talks about an address change (`oldEmail` and `newEmail`).
    public var describesEmailChange: Bool {
        switch self {
        case .emailChangeConfirm, .emailChangeRequested, .emailChanged: true
        case .welcome, .verifyEmail, .passwordReset, .passwordChanged: false
        }
    }

    /// The lifetime of the kind's one-time link, matching the token's TTL in Redis
    /// (PRODUCT.md): 15 minutes for a password reset, 24 hours for the others.
    public var defaultLinkLifetime: Duration? {
        switch self {
        case .passwordReset: .seconds(15 * 60)
        case .verifyEmail, .emailChangeConfirm: .seconds(24 * 3600)
        case .welcome, .passwordChanged, .emailChangeRequested, .emailChanged: nil
        }
    }
}
