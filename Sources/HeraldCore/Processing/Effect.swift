/// What a handler decided should happen because of an event. Adapters carry effects out;
/// handlers never talk to a dependency themselves, so a later effect kind that lives in
/// PostgreSQL can be committed in the same transaction as the event's inbox row.
public enum Effect: Sendable, Hashable {
    /// Tokens carrying `role` issued before `asOf` must be re-checked (`invalid_role: {role}`).
    case invalidateRole(RoleName, asOf: EventTime)
    /// Tokens of `user` issued before `asOf` are revoked (`revoked_user: {user_id}`).
    case revokeUser(UserID, asOf: EventTime)
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
