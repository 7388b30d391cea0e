import HeraldCore

/// The transactional mails Herald sends: the domain's `NotificationKind`, whose raw value
/// names the template files (`Templates/<locale>/<kind>.subject.mustache`, `….txt.mustache`,
/// `….html.mustache`).
public typealias MailKind = NotificationKind

extension NotificationKind {
    /// Whether the mail carries a one-time link (`link`, `linkExpiresInWords`, `linkExpiresAt`).
    public var hasLink: Bool { link != nil }

    /// Whether the mail talks about an address change (`oldEmail` and `newEmail`).
    public var describesEmailChange: Bool {
        switch self {
        case .emailChangeConfirm, .emailChangeRequested, .emailChanged: true
        case .welcome, .verifyEmail, .passwordReset, .passwordChanged: false
        }
    }

    /// The lifetime of the kind's one-time link, matching the token's TTL in Redis
    /// (docs/integration.md): 15 minutes for a password reset, 24 hours for the others.
    public var defaultLinkLifetime: Duration? { link?.lifetime }
}
