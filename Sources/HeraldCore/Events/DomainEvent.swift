/// The events of the contract (`Topics/asyncapi.yaml`), validated into value objects.
public enum DomainEvent: Sendable, Hashable {
    case userCreated(UserCreated)
    case userDeleted(UserDeleted)
    case userRegistered(UserRegistered)
    case emailVerificationRequested(EmailVerificationRequested)
    case passwordResetRequested(PasswordResetRequested)
    case passwordChanged(PasswordChanged)
    case emailChangeRequested(EmailChangeRequested)
    case emailChanged(EmailChanged)
    case roleChanged(RoleChanged)
    case userAccessChanged(UserAccessChanged)
}

public struct UserCreated: Sendable, Hashable {
    public var userID: UserID
    public var username: Username
    public var email: EmailAddress?
    public var locale: LanguageTag?
}

public struct UserDeleted: Sendable, Hashable {
    public var userID: UserID
}

public struct UserRegistered: Sendable, Hashable {
    public var userID: UserID
    public var username: Username
    public var email: EmailAddress
    public var firstName: String?
    public var lastName: String?
    public var locale: LanguageTag?
}

public struct EmailVerificationRequested: Sendable, Hashable {
    public var userID: UserID
    public var email: EmailAddress
    public var locale: LanguageTag?
}

public struct PasswordResetRequested: Sendable, Hashable {
    public var userID: UserID
    public var email: EmailAddress?
    public var locale: LanguageTag?
}

public struct PasswordChanged: Sendable, Hashable {
    public var userID: UserID
    public var email: EmailAddress?
}

public struct EmailChangeRequested: Sendable, Hashable {
    public var userID: UserID
    public var oldEmail: EmailAddress
    public var newEmail: EmailAddress
}

public struct EmailChanged: Sendable, Hashable {
    public var userID: UserID
    public var oldEmail: EmailAddress
    public var newEmail: EmailAddress
}

/// A change to a role that makes tokens carrying it suspect.
public struct RoleChanged: Sendable, Hashable {
    public enum Change: String, Sendable, Hashable {
        case permissionsChanged = "RolePermissionsChanged"
        case securityLevelChanged = "RoleSecurityLevelChanged"
        case deleted = "RoleDeleted"
    }
    public var change: Change
    public var role: RoleName
}

/// A change to a user that makes their existing tokens invalid.
public struct UserAccessChanged: Sendable, Hashable {
    public enum Change: String, Sendable, Hashable {
        case rolesChanged = "UserRolesChanged"
        case sessionsRevoked = "UserSessionsRevoked"
    }
    public var change: Change
    public var userID: UserID
}
