import Foundation
import HeraldCore
import Logging

// Shared builders and in-memory fakes for the core's unit tests.

/// A record as the consumer would hand it over.
func inbound(
    _ json: String?, topic: String = "auth_service_topic", partition: Int32 = 0, offset: Int64 = 0,
    timestamp: Int64? = nil, headers: [MessageHeader] = []
) -> InboundMessage {
    InboundMessage(
        topic: topic, partition: partition, offset: offset, timestamp: timestamp, key: nil,
        value: json.map { Array($0.utf8) }, headers: headers)
}

/// A fixed clock, so that the time fallback is observable.
// 2030-01-01T00:00:00Z: after every time the tests' events carry (none is in the future).
let fixedClockTime = EventTime(millisecondsSinceEpoch: 1_893_456_000_000)
let fixedClock: @Sendable () -> EventTime = { fixedClockTime }

/// `2024-05-01T12:00:00Z`, the time most examples use.
let mayFirstNoon = EventTime(millisecondsSinceEpoch: 1_714_564_800_000)

/// The name of a domain event's type, as the contract spells it.
func typeName(_ event: DomainEvent) -> String {
    switch event {
    case .userCreated: "UserCreated"
    case .userDeleted: "UserDeleted"
    case .userRegistered: "UserRegistered"
    case .emailVerificationRequested: "EmailVerificationRequested"
    case .passwordResetRequested: "PasswordResetRequested"
    case .passwordChanged: "PasswordChanged"
    case .emailChangeRequested: "EmailChangeRequested"
    case .emailChanged: "EmailChanged"
    case .roleChanged(let change): change.change.rawValue
    case .userAccessChanged(let change): change.change.rawValue
    }
}

/// A logger that discards everything: the processor logs on every retry.
let quietLogger = Logger(label: "herald.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A value behind a lock, for fakes called from the processor's tasks.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    var current: Value { withLock { $0 } }
}

/// A failure an adapter would classify as worth retrying (connection refused...).
struct TransientTestError: ClassifiedError, CustomStringConvertible {
    var isTransient: Bool { true }
    var description: String { "connection refused" }
}

/// A failure an adapter would classify as permanent (WRONGTYPE...).
struct PermanentTestError: ClassifiedError, CustomStringConvertible {
    let reason: String
    var isTransient: Bool { false }
    var description: String { reason }
}

/// An error that says nothing about retrying: treated as transient.
struct UnclassifiedTestError: Error {}

/// Records every batch it is given; `behavior` decides, per call, whether it fails.
struct FakeApplier: EffectApplier {
    let calls = Locked<[[AcceptedEvent]]>([])
    let behavior: @Sendable (_ events: [AcceptedEvent], _ call: Int) throws -> Void
    /// Which of a call's events to report as already applied.
    let duplicates: @Sendable (_ events: [AcceptedEvent]) -> Set<EventID>

    init(
        behavior: @escaping @Sendable (_ events: [AcceptedEvent], _ call: Int) throws -> Void = { _, _ in },
        duplicates: @escaping @Sendable (_ events: [AcceptedEvent]) -> Set<EventID> = { _ in [] }
    ) {
        self.behavior = behavior
        self.duplicates = duplicates
    }

    func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID> {
        let call = calls.withLock { calls in
            calls.append(events)
            return calls.count
        }
        try behavior(events, call)
        return duplicates(events)
    }

    /// The offsets of each call's events.
    var offsetsPerCall: [[Int64]] { calls.current.map { $0.map(\.metadata.offset) } }
}

/// Collects dead letters; `behavior` decides, per call, whether publishing fails.
struct FakeDeadLetters: DeadLetterPublisher {
    let calls = Locked<[[DeadLetter]]>([])
    let behavior: @Sendable (_ call: Int) throws -> Void

    init(behavior: @escaping @Sendable (_ call: Int) throws -> Void = { _ in }) {
        self.behavior = behavior
    }

    func publish(_ letters: [DeadLetter]) async throws {
        let call = calls.withLock { calls in
            calls.append(letters)
            return calls.count
        }
        try behavior(call)
    }

    /// Letters from calls that succeeded are the published ones; the fake records all.
    var letters: [DeadLetter] { calls.current.flatMap { $0 } }
}

/// Remembers what the processor reported.
struct RecordingObserver: ProcessingObserver {
    enum Event: Equatable {
        case recorded(EventOutcome, type: String?)
        case retrying(attempt: Int)
        case stalled(StallReason)
        case retryEnded
        case applied(batchSize: Int)
    }

    let events = Locked<[Event]>([])

    func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int) {
        events.withLock { $0.append(.recorded(outcome, type: type?.rawValue)) }
    }

    func retrying(topic: String, partition: Int32, attempt: Int, delay: Duration, reason: StallReason, error: any Error) {
        events.withLock {
            $0.append(.retrying(attempt: attempt))
            $0.append(.stalled(reason))
        }
    }

    /// The reasons reported with each retry round, in order.
    var stallReasons: [StallReason] {
        events.current.compactMap { if case .stalled(let reason) = $0 { reason } else { nil } }
    }

    func retryEnded(topic: String, partition: Int32) {
        events.withLock { $0.append(.retryEnded) }
    }

    func applied(batchSize: Int, duration: Duration) {
        events.withLock { $0.append(.applied(batchSize: batchSize)) }
    }
}

/// A revocation store that remembers what it was asked to advance.
struct FakeRevocationStore: RevocationStore {
    let calls = Locked<[[RevocationMark]]>([])

    func advance(_ marks: [RevocationMark]) async throws {
        calls.withLock { $0.append(marks) }
    }
}
