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
