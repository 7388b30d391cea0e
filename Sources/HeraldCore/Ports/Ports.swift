/// An error from an adapter that knows whether trying again can help.
public protocol ClassifiedError: Error {
    /// True when the same operation may succeed later (connection refused, timeout,
    /// server loading); false when it never will (wrong type, script error).
    var isTransient: Bool { get }
}

/// Carries out the effects of a batch of accepted events. Must be idempotent: after a
/// crash the same batch is applied again. Throws a `ClassifiedError`; anything else is
/// treated as transient.
public protocol EffectApplier: Sendable {
    func apply(_ events: [AcceptedEvent]) async throws
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
    func publish(_ letters: [DeadLetter]) async throws
}
