/// Applies revocation effects through a `RevocationStore`, collapsing a batch to one mark
/// per subject (the newest), so a burst of events for one role costs one Redis command.
public struct RevocationEffectApplier: EffectApplier {
    public let store: any RevocationStore

    public init(store: any RevocationStore) {
        self.store = store
    }

    /// Revocations are idempotent (forward-only), so nothing is ever a duplicate here.
    @discardableResult
    public func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID> {
        let marks = Self.marks(for: events)
        if marks.isEmpty { return [] }
        try await store.advance(marks)
        return []
    }

    public static func marks(for events: [AcceptedEvent]) -> [RevocationMark] {
        var newest: [RevocationMark.Subject: Int64] = [:]
        var order: [RevocationMark.Subject] = []
        for event in events {
            for effect in event.effects {
                let subject: RevocationMark.Subject
                let asOf: EventTime
                switch effect {
                case .invalidateRole(let role, let time): (subject, asOf) = (.role(role), time)
                case .revokeUser(let user, let time): (subject, asOf) = (.user(user), time)
                case .upsertRecipient, .changeRecipientEmail, .deleteRecipient, .queueMail: continue
                }
                if let current = newest[subject] {
                    newest[subject] = max(current, asOf.epochSeconds)
                } else {
                    newest[subject] = asOf.epochSeconds
                    order.append(subject)
                }
            }
        }
        return order.map { RevocationMark(subject: $0, asOf: newest[$0]!) }
    }
}
