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

/// The handlers `herald run` registers.
public enum StandardHandlers {
    public static let all: [any EventHandler] = [RevocationHandler(), RecipientHandler()]

    public static var handledTypes: Set<EventType> { all.reduce(into: []) { $0.formUnion($1.handledTypes) } }
}
