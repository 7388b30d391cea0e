import Logging

/// Processes the records of one partition, a batch at a time, until every record's outcome
/// is final: its effects applied, or the record dead-lettered.
///
/// Only an event's own content may dead-letter it (see `EventContentError`): a record the
/// dispatcher rejects, or an event an adapter refuses with `EventContentError`. Every other
/// failure, whatever a dependency answered and including the broker refusing the dead letter
/// itself, is an outage: the batch is retried with backoff for as long as it takes (the
/// caller pauses the partition meanwhile), each round reported to the observer with its
/// `StallReason` and logged. The only way out without a final outcome is cancellation, after
/// which nothing of the batch may be committed.
public struct BatchProcessor: Sendable {
    public let dispatcher: EventDispatcher
    public let applier: any EffectApplier
    public let deadLetters: any DeadLetterPublisher
    public let backoff: Backoff
    public let consumerGroup: String
    public let observer: any ProcessingObserver
    public let logger: Logger
    /// Sleeps between attempts; tests inject a recorder.
    public let sleep: @Sendable (Duration) async throws -> Void

    public init(
        dispatcher: EventDispatcher, applier: any EffectApplier, deadLetters: any DeadLetterPublisher,
        backoff: Backoff = Backoff(), consumerGroup: String, observer: any ProcessingObserver = NoProcessingObserver(),
        logger: Logger, sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.dispatcher = dispatcher
        self.applier = applier
        self.deadLetters = deadLetters
        self.backoff = backoff
        self.consumerGroup = consumerGroup
        self.observer = observer
        self.logger = logger
        self.sleep = sleep
    }

    /// Called when the partition starts (true) and stops (false) waiting on a retry.
    public typealias RetryStateChanged = @Sendable (_ retrying: Bool) -> Void

    /// Processes `messages` (all from one partition, in offset order).
    /// - Throws: `CancellationError` when cancelled before the outcome was final.
    public func process(_ messages: [InboundMessage], retryStateChanged: @escaping RetryStateChanged = { _ in }) async throws {
        guard let first = messages.first else { return }
        var accepted: [AcceptedEvent] = []
        accepted.reserveCapacity(messages.count)
        var letters: [DeadLetter] = []
        for index in messages.indices {
            switch dispatcher.decide(messages[index]) {
            case .accept(let event):
                accepted.append(event)
            case .reject(let rejection, let metadata):
                letters.append(
                    DeadLetter(
                        original: messages[index], rejection: rejection, attempts: 1, consumerGroup: consumerGroup, metadata: metadata))
            }
        }

        var retry = RetryState(topic: first.topic, partition: first.partition, changed: retryStateChanged)
        defer { retry.end(observer) }

        if !accepted.isEmpty {
            let outcome = try await applyAll(accepted, retry: &retry)
            for (event, rejection, attempts) in outcome.rejected {
                guard let message = messages.first(where: { $0.offset == event.metadata.offset }) else { continue }
                letters.append(
                    DeadLetter(
                        original: message, rejection: rejection, attempts: attempts, consumerGroup: consumerGroup, metadata: event.metadata)
                )
            }
            record(accepted, excluding: Set(outcome.rejected.map { $0.0.metadata.offset }), duplicates: outcome.duplicates)
        }
        if !letters.isEmpty {
            for letter in letters {
                logger.warning(
                    "event dead-lettered",
                    metadata: letterMetadata(letter))
            }
            // A retry sends only the letters the broker has not acknowledged yet.
            var unpublished = letters
            try await attempt("publish dead letters", publishingDeadLetters: true, retry: &retry) {
                do {
                    try await deadLetters.publish(unpublished)
                } catch let partial as DeadLetterPublishFailure {
                    unpublished = partial.unpublished.map { unpublished[$0] }
                    throw partial.error
                }
            }
            for letter in letters {
                observer.recorded(.deadLettered, topic: letter.original.topic, type: letter.metadata?.type, count: 1)
            }
        }
    }

    private func record(_ accepted: [AcceptedEvent], excluding: Set<Int64>, duplicates: Set<EventID>) {
        for event in accepted where !excluding.contains(event.metadata.offset) {
            let outcome: EventOutcome
            if event.effects.isEmpty {
                outcome = .ignored
            } else if duplicates.contains(event.metadata.id) {
                outcome = .duplicate
                logger.debug(
                    "event already processed; acknowledged without applying it again",
                    metadata: [
                        "event_id": "\(event.metadata.id)", "event_type": "\(event.metadata.type)", "topic": "\(event.metadata.topic)",
                        "partition": "\(event.metadata.partition)", "offset": "\(event.metadata.offset)",
                    ])
            } else {
                outcome = .applied
            }
            observer.recorded(outcome, topic: event.metadata.topic, type: event.metadata.type, count: 1)
        }
    }

    /// What applying a batch's effects came to.
    private struct Applied {
        /// Events whose own content could not be applied, with their rejection and attempts.
        var rejected: [(AcceptedEvent, Rejection, Int)] = []
        /// Events applied before (redeliveries): acknowledged, not applied again.
        var duplicates: Set<EventID> = []
    }

    /// Applies the effects of `events`, isolating the events whose own content fails.
    private func applyAll(_ events: [AcceptedEvent], retry: inout RetryState) async throws -> Applied {
        let withEffects = events.filter { !$0.effects.isEmpty }
        if withEffects.isEmpty { return Applied() }
        let clock = ContinuousClock()
        let started = clock.now
        var result = Applied()
        do {
            try await attempt("apply effects", retry: &retry) {
                result.duplicates = try await applier.apply(withEffects)
            }
            observer.applied(batchSize: withEffects.count, duration: clock.now - started)
            return result
        } catch let failure as ContentFailure {
            guard withEffects.count > 1 else {
                result.rejected = [(withEffects[0], Rejection(.handlerRejected, failure.message), failure.attempts)]
                return result
            }
            // Isolate the event whose content cannot be applied; the others go through.
            logger.notice(
                "an event of the batch cannot be applied; applying its events one by one", metadata: ["error": "\(failure.message)"])
            for event in withEffects {
                do {
                    try await attempt("apply effects", retry: &retry) {
                        result.duplicates.formUnion(try await applier.apply([event]))
                    }
                } catch let single as ContentFailure {
                    // Tried in the failed batch, then alone.
                    result.rejected.append((event, Rejection(.handlerRejected, single.message), failure.attempts + single.attempts))
                }
            }
            return result
        }
    }

    /// An event's own content failed (`EventContentError`): the only failure that ends
    /// `attempt` other than cancellation.
    struct ContentFailure: Error {
        let message: String
        /// How many times the operation was tried, the failure included.
        let attempts: Int
    }

    struct RetryState {
        let topic: String
        let partition: Int32
        let changed: RetryStateChanged
        var attempts = 0
        var active = false

        mutating func end(_ observer: any ProcessingObserver) {
            if active {
                active = false
                changed(false)
                observer.retryEnded(topic: topic, partition: partition)
            }
        }
    }

    /// Runs `operation` until it succeeds. An `EventContentError` while applying effects is
    /// rethrown as `ContentFailure`; cancellation ends it; every other failure (and any failure
    /// to publish dead letters: there is nowhere further to send them) is an outage of a
    /// dependency: the partition waits with backoff and tries again, for as long as it takes.
    /// So `process` ends only with every record's outcome final, or by cancellation.
    private func attempt(
        _ what: String, publishingDeadLetters: Bool = false, retry: inout RetryState, _ operation: () async throws -> Void
    ) async throws {
        var attempt = 0
        while true {
            try Task.checkCancellation()
            do {
                try await operation()
                retry.end(observer)
                return
            } catch let error as EventContentError where !publishingDeadLetters {
                retry.end(observer)
                throw ContentFailure(message: error.reason, attempts: attempt + 1)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempt += 1
                retry.attempts += 1
                let delay = backoff.delay(attempt: attempt)
                let reason = StallReason.classify(error, publishingDeadLetters: publishingDeadLetters)
                if !retry.active {
                    retry.active = true
                    retry.changed(true)
                }
                observer.retrying(
                    topic: retry.topic, partition: retry.partition, attempt: attempt, delay: delay, reason: reason, error: error)
                // A refusal needs an operator from the first round; an unreachable dependency
                // becomes an error once it has lasted a few rounds (seconds with the defaults).
                logger.log(
                    level: reason.needsOperator || attempt >= Self.roundsBeforeError ? .error : .warning,
                    "partition stalled: a dependency failed; it waits and retries, skipping nothing",
                    metadata: [
                        "operation": "\(what)", "topic": "\(retry.topic)", "partition": "\(retry.partition)",
                        "reason": "\(reason.rawValue)", "attempt": "\(attempt)", "retry_in_ms": "\(Int(delay.seconds * 1000))",
                        "error": "\(error)",
                    ])
                try await sleep(delay)
            }
        }
    }

    /// Retry rounds logged as warnings before an unreachable dependency is logged as an error.
    static let roundsBeforeError = 5

    private func letterMetadata(_ letter: DeadLetter) -> Logger.Metadata {
        var m: Logger.Metadata = [
            "topic": "\(letter.original.topic)", "partition": "\(letter.original.partition)",
            "offset": "\(letter.original.offset)", "error_class": "\(letter.rejection.errorClass.rawValue)",
            "error": "\(letter.rejection.message)",
        ]
        if let meta = letter.metadata {
            m["event_id"] = "\(meta.id)"
            m["event_type"] = "\(meta.type)"
        }
        return m
    }
}
