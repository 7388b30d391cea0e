import Logging

/// Processes the records of one partition, a batch at a time, until every record's outcome
/// is final: its effects applied, or the record dead-lettered. Transient failures are
/// retried with backoff for as long as it takes (the caller pauses the partition meanwhile);
/// the only way out without a final outcome is cancellation, after which nothing of the
/// batch may be committed.
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
            let rejected = try await applyAll(accepted, retry: &retry)
            for (event, rejection, attempts) in rejected {
                guard let message = messages.first(where: { $0.offset == event.metadata.offset }) else { continue }
                letters.append(
                    DeadLetter(
                        original: message, rejection: rejection, attempts: attempts, consumerGroup: consumerGroup, metadata: event.metadata)
                )
            }
            record(accepted, excluding: Set(rejected.map { $0.0.metadata.offset }))
        }
        if !letters.isEmpty {
            for letter in letters {
                logger.warning(
                    "event dead-lettered",
                    metadata: letterMetadata(letter))
            }
            try await attempt("publish dead letters", retry: &retry) {
                try await deadLetters.publish(letters)
            }
            for letter in letters {
                observer.recorded(.deadLettered, topic: letter.original.topic, type: letter.metadata?.type, count: 1)
            }
        }
    }

    private func record(_ accepted: [AcceptedEvent], excluding: Set<Int64>) {
        for event in accepted where !excluding.contains(event.metadata.offset) {
            observer.recorded(event.effects.isEmpty ? .ignored : .applied, topic: event.metadata.topic, type: event.metadata.type, count: 1)
        }
    }

    /// Applies the effects of `events`; returns the events that a permanent failure rejected.
    private func applyAll(
        _ events: [AcceptedEvent], retry: inout RetryState
    ) async throws -> [(AcceptedEvent, Rejection, Int)] {
        let withEffects = events.filter { !$0.effects.isEmpty }
        if withEffects.isEmpty { return [] }
        let clock = ContinuousClock()
        let started = clock.now
        do {
            try await attempt("apply effects", retry: &retry) {
                try await applier.apply(withEffects)
            }
            observer.applied(batchSize: withEffects.count, duration: clock.now - started)
            return []
        } catch let failure as PermanentFailure {
            guard withEffects.count > 1 else {
                return [(withEffects[0], Rejection(.handlerRejected, failure.message), failure.attempts)]
            }
            // Isolate the event that cannot be applied; the others go through.
            logger.notice("a batch failed permanently; applying its events one by one", metadata: ["error": "\(failure.message)"])
            var rejected: [(AcceptedEvent, Rejection, Int)] = []
            for event in withEffects {
                do {
                    try await attempt("apply effects", retry: &retry) {
                        try await applier.apply([event])
                    }
                } catch let single as PermanentFailure {
                    // Tried in the failed batch, then alone.
                    rejected.append((event, Rejection(.handlerRejected, single.message), failure.attempts + single.attempts))
                }
            }
            return rejected
        }
    }

    struct PermanentFailure: Error {
        let message: String
        /// How many times the operation was tried, the permanent failure included.
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

    /// Runs `operation` until it succeeds, sleeping with backoff between transient failures.
    /// A permanent failure is rethrown as `PermanentFailure`.
    private func attempt(
        _ what: String, retry: inout RetryState, _ operation: () async throws -> Void
    ) async throws {
        var attempt = 0
        while true {
            try Task.checkCancellation()
            do {
                try await operation()
                retry.end(observer)
                return
            } catch let error as ClassifiedError where !error.isTransient {
                retry.end(observer)
                throw PermanentFailure(message: String(describing: error), attempts: attempt + 1)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempt += 1
                retry.attempts += 1
                let delay = backoff.delay(attempt: attempt)
                if !retry.active {
                    retry.active = true
                    retry.changed(true)
                }
                observer.retrying(topic: retry.topic, partition: retry.partition, attempt: attempt, delay: delay, error: error)
                logger.warning(
                    "transient failure; partition waits and retries",
                    metadata: [
                        "operation": "\(what)", "topic": "\(retry.topic)", "partition": "\(retry.partition)",
                        "attempt": "\(attempt)", "retry_in_ms": "\(Int(delay.seconds * 1000))", "error": "\(error)",
                    ])
                try await sleep(delay)
            }
        }
    }

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
