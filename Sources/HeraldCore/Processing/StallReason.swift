/// Why a partition waits instead of moving on: always a dependency, never the event (an
/// event whose own content cannot be applied is dead-lettered instead). A small, fixed set:
/// it is a metric label and what `herald lag` and the alerts speak of.
public enum StallReason: String, Sendable, Hashable, CaseIterable {
    /// Redis, PostgreSQL or the broker cannot be reached: connection refused or lost, a
    /// timeout, a server starting up.
    case dependencyUnavailable = "dependency_unavailable"
    /// A dependency answered but refused the work: a Redis `-ERR` (a proxy with no upstream,
    /// a read-only replica), a PostgreSQL standby or a revoked permission, a missing table.
    /// Retrying helps once an operator or a failover fixes it.
    case dependencyRefused = "dependency_refused"
    /// The dead-letter topic cannot be reached (broker down, topic missing, timeouts).
    case deadLetterUnavailable = "dead_letter_unavailable"
    /// The broker refuses the dead letter itself (too large even without its value, topic
    /// authorization, an invalid topic name) or the producer failed for good.
    case deadLetterRefused = "dead_letter_refused"

    /// The reason for a failure of `operation`: transient errors (and errors that say
    /// nothing) mean unavailable, others refused.
    public static func classify(_ error: any Error, publishingDeadLetters: Bool) -> StallReason {
        let refused = (error as? any ClassifiedError).map { !$0.isTransient } ?? false
        switch (publishingDeadLetters, refused) {
        case (false, false): return .dependencyUnavailable
        case (false, true): return .dependencyRefused
        case (true, false): return .deadLetterUnavailable
        case (true, true): return .deadLetterRefused
        }
    }

    /// Whether each retry round is logged at error level from the first one: a refusal does
    /// not pass by itself, an operator must act.
    public var needsOperator: Bool { self == .dependencyRefused || self == .deadLetterRefused }
}
