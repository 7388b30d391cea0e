import HeraldCore
import Testing

/// The processor's promise: every record ends applied or dead-lettered, transient failures
/// are retried with backoff, and cancellation leaves nothing half-done.
@Suite("Batch processing")
struct BatchProcessorTests {
    static let group = "herald-test"

    static func role(_ name: String, offset: Int64, seconds: Int = 100) -> InboundMessage {
        inbound(
            #"{"type":"RoleDeleted","role":"\#(name)","event_timestamp":\#(seconds)}"#, topic: "auth_service_topic",
            partition: 2, offset: offset)
    }

    static func raw(_ json: String, offset: Int64) -> InboundMessage {
        inbound(json, topic: "auth_service_topic", partition: 2, offset: offset)
    }

    /// A processor wired to fakes, recording sleeps and retry-state changes.
    struct Harness {
        let applier: FakeApplier
        let deadLetters: FakeDeadLetters
        let observer = RecordingObserver()
        let sleeps = Locked<[Duration]>([])
        let retryStates = Locked<[Bool]>([])
        let backoff: Backoff
        let sleep: (@Sendable (Duration) async throws -> Void)?

        init(
            applier: FakeApplier = FakeApplier(), deadLetters: FakeDeadLetters = FakeDeadLetters(),
            backoff: Backoff = Backoff(), sleep: (@Sendable (Duration) async throws -> Void)? = nil
        ) {
            self.applier = applier
            self.deadLetters = deadLetters
            self.backoff = backoff
            self.sleep = sleep
        }

        var processor: BatchProcessor {
            let sleeps = self.sleeps
            let sleep = self.sleep
            return BatchProcessor(
                dispatcher: EventDispatcher(
                    decoder: EnvelopeDecoder(clock: fixedClock), handlers: [RevocationHandler()],
                    ignoredTypes: ["PasswordChanged"]),
                applier: applier, deadLetters: deadLetters, backoff: backoff, consumerGroup: BatchProcessorTests.group,
                observer: observer, logger: quietLogger,
                sleep: { delay in
                    sleeps.withLock { $0.append(delay) }
                    try await sleep?(delay)
                })
        }

        func process(_ messages: [InboundMessage]) async throws {
            let states = retryStates
            try await processor.process(messages, retryStateChanged: { retrying in states.withLock { $0.append(retrying) } })
        }

        func count(_ event: RecordingObserver.Event) -> Int {
            observer.events.current.filter { $0 == event }.count
        }
    }

    @Test("accepted events are applied in one call; ignored ones are acknowledged without effects")
    func appliesAccepted() async throws {
        let h = Harness()
        try await h.process([
            Self.role("a", offset: 10), Self.role("b", offset: 11),
            Self.raw(#"{"type":"PasswordChanged","user_id":"u"}"#, offset: 12),
        ])
        #expect(h.applier.offsetsPerCall == [[10, 11]])
        #expect(h.deadLetters.calls.current.isEmpty)
        #expect(h.sleeps.current.isEmpty)
        #expect(h.retryStates.current.isEmpty)
        #expect(h.count(.applied(batchSize: 2)) == 1)
        #expect(h.count(.recorded(.applied, type: "RoleDeleted")) == 2)
        #expect(h.count(.recorded(.ignored, type: "PasswordChanged")) == 1)
    }

    @Test("nothing to apply, nothing called")
    func nothingToDo() async throws {
        let h = Harness()
        try await h.process([])
        try await h.process([Self.raw(#"{"type":"PasswordChanged","user_id":"u"}"#, offset: 1)])
        #expect(h.applier.calls.current.isEmpty)
        #expect(h.deadLetters.calls.current.isEmpty)
    }

    @Test(
        "transient failures are retried with growing, jittered delays until they pass",
        arguments: [TransientTestError() as any Error, UnclassifiedTestError()])
    func transientRetried(_ failure: any Error) async throws {
        let h = Harness(applier: FakeApplier { _, call in if call <= 3 { throw failure } })
        try await h.process([Self.role("a", offset: 0), Self.raw("not json", offset: 1)])

        #expect(h.applier.offsetsPerCall == [[0], [0], [0], [0]])
        let sleeps = h.sleeps.current
        try #require(sleeps.count == 3)
        for (index, ceilingMS) in [100.0, 200, 400].enumerated() {
            let ms = sleeps[index].seconds * 1000
            #expect(ms >= ceilingMS / 2 - 1e-6 && ms <= ceilingMS + 1e-6, "retry \(index + 1) waited \(ms) ms")
        }
        #expect(h.retryStates.current == [true, false])
        let retries = h.observer.events.current.filter { if case .retrying = $0 { true } else { false } }
        #expect(retries == [.retrying(attempt: 1), .retrying(attempt: 2), .retrying(attempt: 3)])
        #expect(h.observer.stallReasons == Array(repeating: .dependencyUnavailable, count: 3))
        #expect(h.count(.retryEnded) == 1)
        // The bad record is dead-lettered once the batch's outcome is final.
        #expect(h.deadLetters.letters.map(\.original.offset) == [1])
    }

    @Test("an event whose own content cannot be applied is isolated and dead-lettered; the others are applied")
    func contentFailureIsolated() async throws {
        let h = Harness(
            applier: FakeApplier { events, _ in
                if events.contains(where: { $0.metadata.offset == 1 }) { throw EventContentError("value too long: WRONGTYPE") }
            })
        try await h.process([Self.role("a", offset: 0), Self.role("bad", offset: 1), Self.role("c", offset: 2)])

        #expect(h.applier.offsetsPerCall == [[0, 1, 2], [0], [1], [2]])
        let letters = h.deadLetters.letters
        try #require(letters.count == 1)
        let letter = letters[0]
        #expect(letter.original.offset == 1)
        #expect(letter.rejection.errorClass == .handlerRejected)
        #expect(letter.rejection.message.contains("WRONGTYPE"))
        #expect(letter.attempts == 2, "tried in the batch, then alone")
        #expect(letter.consumerGroup == Self.group)
        #expect(letter.metadata?.type == "RoleDeleted")
        #expect(h.sleeps.current.isEmpty)
        #expect(h.count(.recorded(.applied, type: "RoleDeleted")) == 2)
        #expect(h.count(.recorded(.deadLettered, type: "RoleDeleted")) == 1)
    }

    @Test("a dead letter's attempts count its own tries, not the retries of its neighbours")
    func attemptsAreTheEventsOwn() async throws {
        // Call 1: the batch fails permanently. Calls 2-3: event 0 alone fails transiently;
        // call 4 applies it. Call 5: event 1 alone fails permanently.
        let h = Harness(
            applier: FakeApplier { events, call in
                if call == 2 || call == 3 { throw TransientTestError() }
                if events.contains(where: { $0.metadata.offset == 1 }) { throw EventContentError("bad") }
            })
        try await h.process([Self.role("a", offset: 0), Self.role("bad", offset: 1)])
        #expect(h.applier.offsetsPerCall == [[0, 1], [0], [0], [0], [1]])
        #expect(h.deadLetters.letters.map(\.attempts) == [2])
        #expect(h.retryStates.current == [true, false])
    }

    @Test("a lone event's attempts include its transient failures")
    func attemptsIncludeTransientFailures() async throws {
        let h = Harness(
            applier: FakeApplier { _, call in
                if call < 3 { throw TransientTestError() }
                throw EventContentError("bad")
            })
        try await h.process([Self.role("bad", offset: 0)])
        #expect(h.applier.calls.current.count == 3)
        #expect(h.deadLetters.letters.map(\.attempts) == [3])
        #expect(h.sleeps.current.count == 2)
    }

    @Test("records that can never be processed are dead-lettered with their rejection class")
    func deadLettersCarryTheirClass() async throws {
        let h = Harness()
        let messages = [
            Self.role("ok", offset: 0),
            Self.raw("not json", offset: 1),
            Self.raw(#"{"type":"NoSuchEvent"}"#, offset: 2),
            Self.raw(#"{"type":"RoleDeleted"}"#, offset: 3),
            Self.raw(#"{"role":"untyped"}"#, offset: 4),
        ]
        try await h.process(messages)

        #expect(h.applier.offsetsPerCall == [[0]])
        #expect(h.deadLetters.calls.current.count == 1, "one publish for the whole batch")
        let letters = h.deadLetters.letters
        #expect(letters.map(\.original.offset) == [1, 2, 3, 4])
        #expect(letters.map(\.rejection.errorClass) == [.notJSON, .unknownEventType, .validationFailed, .invalidEnvelope])
        #expect(letters.map(\.attempts) == [1, 1, 1, 1])
        #expect(letters.allSatisfy { $0.consumerGroup == Self.group })
        #expect(letters.map { $0.metadata?.type.rawValue } == [nil, "NoSuchEvent", "RoleDeleted", nil])
        #expect(letters.map(\.original.value) == messages.dropFirst().map(\.value), "the original bytes, unchanged")
        #expect(h.count(.recorded(.deadLettered, type: nil)) == 2)
    }

    @Test("publishing dead letters is retried like applying effects")
    func deadLetterPublishRetried() async throws {
        let h = Harness(deadLetters: FakeDeadLetters { call in if call <= 2 { throw TransientTestError() } })
        try await h.process([Self.raw("not json", offset: 7)])
        #expect(h.deadLetters.calls.current.count == 3)
        #expect(h.sleeps.current.count == 2)
        #expect(h.retryStates.current == [true, false])
    }

    @Test(
        "whatever a dependency answers, the batch waits and retries: nothing is dead-lettered for it",
        arguments: [
            PermanentTestError(reason: "ERR upstream unavailable") as any Error,
            PermanentTestError(reason: "25006 read-only transaction"), UnclassifiedTestError(),
        ])
    func dependencyRefusalIsAnOutage(_ failure: any Error) async throws {
        let h = Harness(applier: FakeApplier { _, call in if call <= 6 { throw failure } })
        try await h.process([Self.role("a", offset: 0), Self.role("b", offset: 1)])
        #expect(h.applier.offsetsPerCall == Array(repeating: [0, 1], count: 7), "the whole batch, again and again")
        #expect(h.deadLetters.calls.current.isEmpty)
        #expect(h.sleeps.current.count == 6)
        let expected: StallReason = failure is PermanentTestError ? .dependencyRefused : .dependencyUnavailable
        #expect(h.observer.stallReasons == Array(repeating: expected, count: 6))
        #expect(h.count(.recorded(.applied, type: "RoleDeleted")) == 2)
        #expect(h.retryStates.current == [true, false])
    }

    @Test("a dead letter the broker refuses is retried for as long as it takes, never skipped, and reported as stalled")
    func deadLetterPublishRefusedWaits() async throws {
        let h = Harness(
            deadLetters: FakeDeadLetters { call in if call <= 5 { throw PermanentTestError(reason: "TOPIC_AUTHORIZATION_FAILED") } })
        try await h.process([Self.raw("not json", offset: 7)])
        #expect(h.deadLetters.calls.current.count == 6)
        #expect(h.observer.stallReasons == Array(repeating: .deadLetterRefused, count: 5))
        #expect(h.count(.recorded(.deadLettered, type: nil)) == 1, "counted once, when it was finally published")
        #expect(h.retryStates.current == [true, false])
    }

    @Test("a dead-letter publisher's failure never ends the partition's work, whatever its type")
    func deadLetterFailureNeverEndsWork() async throws {
        let h = Harness(deadLetters: FakeDeadLetters { call in if call <= 2 { throw EventContentError("refused") } })
        try await h.process([Self.raw("not json", offset: 3)])
        #expect(h.deadLetters.calls.current.count == 3)
        #expect(h.observer.stallReasons == [.deadLetterUnavailable, .deadLetterUnavailable])
    }

    @Test("redeliveries the applier reports as already applied count as duplicates")
    func duplicatesCounted() async throws {
        let h = Harness(
            applier: FakeApplier(duplicates: { events in Set(events.filter { $0.metadata.offset == 1 }.map(\.metadata.id)) }))
        try await h.process([Self.role("a", offset: 0), Self.role("b", offset: 1)])
        #expect(h.count(.recorded(.applied, type: "RoleDeleted")) == 1)
        #expect(h.count(.recorded(.duplicate, type: "RoleDeleted")) == 1)
    }

    @Test("cancellation while waiting to retry throws CancellationError and publishes nothing further")
    func cancellationDuringRetry() async throws {
        let (waiting, waitingContinuation) = AsyncStream<Void>.makeStream()
        let h = Harness(
            applier: FakeApplier { _, _ in throw TransientTestError() },
            sleep: { _ in
                waitingContinuation.yield()
                try await Task.sleep(for: .seconds(3600))
            })
        let task = Task {
            try await h.process([Self.role("a", offset: 0), Self.raw("not json", offset: 1)])
        }
        var iterator = waiting.makeAsyncIterator()
        _ = await iterator.next()
        task.cancel()

        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(h.applier.calls.current.count == 1)
        #expect(h.deadLetters.calls.current.isEmpty)
        #expect(h.retryStates.current == [true, false])
        #expect(h.observer.events.current.filter { if case .recorded = $0 { true } else { false } }.isEmpty)
    }

    @Test("a cancelled task does not start applying")
    func cancelledBeforeApplying() async {
        let h = Harness()
        let task = Task {
            // Wait until cancelled, then process.
            while !Task.isCancelled { await Task.yield() }
            try await h.process([Self.role("a", offset: 0)])
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(h.applier.calls.current.isEmpty)
    }
}
