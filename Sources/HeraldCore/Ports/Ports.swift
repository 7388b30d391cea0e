/// An error from an adapter that knows whether trying again can help.
///
/// `isTransient` is advice for loops that give up on an operation (the courier, the outbox
/// relay, start-up). It never decides whether an event is dead-lettered: see
/// `EventContentError`.
public protocol ClassifiedError: Error {
    /// True when the same operation may succeed later (connection refused, timeout,
    /// server loading); false when it never will (wrong type, script error).
    var isTransient: Bool { get }
}

/// The one failure that may send an event to the dead-letter topic: the event's own content
/// cannot be applied, whoever noticed it (a handler, or an adapter such as PostgreSQL
/// refusing one of the event's values with a data exception). Adapters throw it only for
/// what the event carries, never for what a dependency answered.
///
/// **The rule.** Only an event's own content may dead-letter it: not JSON, failing
/// validation, unknown type, too large, a timestamp that cannot be right, a value the
/// store refuses as data. A failure of anything Herald talks to (Redis, PostgreSQL, the
/// broker, including the broker refusing the dead letter itself) is an outage, whatever
/// the error says: the partition waits with backoff for as long as it takes, visibly
/// (metric, log, `herald lag`), and never skips. A revocation dead-lettered because Redis
/// answered `-ERR` would leave a revoked token valid.
public struct EventContentError: Error, Sendable, CustomStringConvertible {
    /// Why the event's content cannot be applied; safe to log and to put in a dead letter.
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// Carries out the effects of a batch of accepted events. Must be idempotent: after a
/// crash the same batch is applied again. Throws `EventContentError` when an event's own
/// content cannot be applied (it is then isolated and dead-lettered); any other error is an
/// outage, retried for as long as it lasts.
public protocol EffectApplier: Sendable {
    /// Returns the ids of events that were already applied before (redeliveries recorded in
    /// the inbox): acknowledged, not applied again.
    func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID>
}

/// The forward-only timestamps the API compares token issue times against.
public protocol RevocationStore: Sendable {
    /// Raises each mark's timestamp to `asOf` when that is newer, with a fresh time to live;
    /// an older or equal mark changes neither value nor TTL. Idempotent.
    func advance(_ marks: [RevocationMark]) async throws
}

public struct RevocationMark: Sendable, Hashable {
    public enum Subject: Sendable, Hashable {
        case role(RoleName)
        case user(UserID)
    }

    public let subject: Subject
    /// Epoch seconds.
    public let asOf: Int64

    public init(subject: Subject, asOf: Int64) {
        self.subject = subject
        self.asOf = asOf
    }
}

/// A record that can never be processed, with the provenance that goes into its headers.
public struct DeadLetter: Sendable {
    public let original: InboundMessage
    public let rejection: Rejection
    public let attempts: Int
    public let consumerGroup: String
    public let metadata: EventMetadata?

    public init(original: InboundMessage, rejection: Rejection, attempts: Int, consumerGroup: String, metadata: EventMetadata?) {
        self.original = original
        self.rejection = rejection
        self.attempts = attempts
        self.consumerGroup = consumerGroup
        self.metadata = metadata
    }
}

/// Publishes dead letters and returns only when the broker acknowledged every one.
public protocol DeadLetterPublisher: Sendable {
    /// Throws `DeadLetterPublishFailure` when only some letters were acknowledged, so that a
    /// retry sends only the others; any other error means none may have been.
    func publish(_ letters: [DeadLetter]) async throws
}

/// Some dead letters of a `publish` call were acknowledged, the others failed with `error`.
public struct DeadLetterPublishFailure: Error, CustomStringConvertible {
    /// Positions, in the letters given to `publish`, of those not acknowledged.
    public let unpublished: [Int]
    public let error: any Error

    public init(unpublished: [Int], error: any Error) {
        self.unpublished = unpublished
        self.error = error
    }

    public var description: String { "\(unpublished.count) dead letter(s) not published: \(error)" }
}

/// Herald's own database: the inbox of processed events and the effects that live beside it.
public protocol EventInbox: Sendable {
    /// In one transaction: records each event in the inbox of `consumerGroup` and applies the
    /// database effects of those not recorded before; returns the ids newly recorded. An
    /// event already in the inbox (a redelivery, or the same event on another partition)
    /// changes nothing. A transaction that queues mail also notifies the couriers of every
    /// instance, this one's included: their one wake-up path.
    func record(_ events: [AcceptedEvent], consumerGroup: String) async throws -> Set<EventID>
}

/// Applies a batch's effects exactly once where they live in PostgreSQL, and idempotently
/// elsewhere: Redis effects first (safe to repeat), then the inbox transaction, so an event is
/// recorded only after every one of its effects succeeded. (Mail queued by the transaction
/// wakes the couriers through the inbox's own notification, not through this applier.)
public struct InboxEffectApplier: EffectApplier {
    public let inbox: any EventInbox
    public let revocations: RevocationEffectApplier
    public let consumerGroup: String

    public init(inbox: any EventInbox, revocations: RevocationEffectApplier, consumerGroup: String) {
        self.inbox = inbox
        self.revocations = revocations
        self.consumerGroup = consumerGroup
    }

    public func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID> {
        try await revocations.apply(events)
        // Only events with an effect in PostgreSQL need exactly-once bookkeeping. A revocation
        // is a forward-only compare-and-set in Redis: applying it twice changes nothing, so an
        // event whose effects are all revocations is not recorded in the inbox (and a
        // redelivered one counts as applied again, not as a duplicate). This keeps the role
        // and user revocation stream, the bulk of the traffic, off PostgreSQL.
        let recordable = events.filter { $0.effects.contains(where: \.isDatabaseEffect) }
        if recordable.isEmpty { return [] }
        let recorded = try await inbox.record(recordable, consumerGroup: consumerGroup)
        return Set(recordable.lazy.map(\.metadata.id).filter { !recorded.contains($0) })
    }
}
