import HeraldCore
import Logging
import Synchronization
import Testing

/// An in-memory outbox with the store's contract: the oldest unprocessed row per aggregate.
final class FakeOutboxStore: OutboxStore {
    struct Row {
        var event: OutboxEvent
        var status = "pending"
        var attempts = 0
        var error: String?
    }
    private let rows: Mutex<[Row]>
    private let deleted = Mutex<[(age: Duration, batchSize: Int)]>([])

    init(_ events: [OutboxEvent] = []) {
        rows = Mutex(events.map { Row(event: $0) })
    }

    /// The `deleteProcessed` calls so far.
    var deletions: [(age: Duration, batchSize: Int)] { deleted.withLock { $0 } }

    var snapshot: [Row] { rows.withLock { $0 } }

    func claim(limit: Int, deliver: @escaping @Sendable ([OutboxEvent]) async throws -> [OutboxOutcome]) async throws -> [OutboxOutcome] {
        let claimed = rows.withLock { rows -> [OutboxEvent] in
            var seen: Set<String> = []
            var heads: [OutboxEvent] = []
            for row in rows where row.status != "processed" {
                guard seen.insert(row.event.aggregateID).inserted else { continue }
                if row.status == "pending" && heads.count < limit {
                    heads.append(
                        OutboxEvent(
                            id: row.event.id, aggregateType: row.event.aggregateType, aggregateID: row.event.aggregateID,
                            eventType: row.event.eventType, payload: row.event.payload, createdAt: row.event.createdAt,
                            attempts: row.attempts))
                }
            }
            return heads
        }
        if claimed.isEmpty { return [] }
        let outcomes = try await deliver(claimed)
        rows.withLock { rows in
            for outcome in outcomes {
                let index = rows.firstIndex { $0.event.id == outcome.id }!
                switch outcome {
                case .published: rows[index].status = "processed"
                case .failed(_, let reason, let final):
                    rows[index].attempts += 1
                    rows[index].error = reason
                    if final { rows[index].status = "failed" }
                }
            }
        }
        return outcomes
    }

    func deleteProcessed(olderThan age: Duration, batchSize: Int) async throws -> Int {
        deleted.withLock { $0.append((age, batchSize)) }
        return 0
    }

    func backlog() async throws -> OutboxBacklog { OutboxBacklog(failedRows: 0, blockedAggregates: 0, waitingRows: 0) }
}

/// Records messages; can be told to be unreachable or to refuse some.
final class FakeOutboxPublisher: OutboxPublisher {
    struct Unreachable: ClassifiedError {
        var isTransient: Bool { true }
    }
    private let state = Mutex<(sent: [OutboxMessage], failuresLeft: Int)>(([], 0))

    func failNext(_ count: Int) { state.withLock { $0.failuresLeft = count } }
    var sent: [OutboxMessage] { state.withLock { $0.sent } }

    func publish(_ messages: [OutboxMessage]) async throws -> [String?] {
        try state.withLock { state in
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                throw Unreachable()
            }
            state.sent += messages
        }
        return messages.map { $0.topic == "refused.events" ? "MSG_SIZE_TOO_LARGE" : nil }
    }
}

func outboxEvent(_ id: String, type: String = "User", aggregate: String, payload: String = "{}", at ms: Int64 = 1_700_000_000_000)
    -> OutboxEvent
{
    OutboxEvent(
        id: id, aggregateType: type, aggregateID: aggregate, eventType: "Happened", payload: Array(payload.utf8),
        createdAt: EventTime(millisecondsSinceEpoch: ms), attempts: 0)
}

@Suite("Outbox relay (core)")
struct OutboxCoreTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test("topic mapping: explicit entries first, then the lower-cased pattern; no pattern or a bad name is a failure")
    func topicMapping() {
        let mapping = OutboxTopicMapping(topics: ["Order": "shop.orders"], defaultPattern: "{aggregate_type}.events")
        #expect(mapping.topic(for: "Order") == .success("shop.orders"))
        #expect(mapping.topic(for: "UserAccount") == .success("useraccount.events"))
        #expect(mapping.topic(for: "bad type") == .failure(.invalidTopic(aggregateType: "bad type", topic: "bad type.events")))
        let strict = OutboxTopicMapping(topics: ["Order": "shop.orders"], defaultPattern: nil)
        #expect(strict.topic(for: "User") == .failure(.unmapped(aggregateType: "User")))
    }

    @Test("a message: key = aggregate id, value = payload, ce_id/ce_type/ce_time headers")
    func message() throws {
        let event = outboxEvent("id-1", aggregate: "agg-1", payload: #"{"a":1}"#, at: 1_714_564_800_123)
        let message = try OutboxRelay.message(for: event, settings: OutboxRelaySettings()).get()
        #expect(message.topic == "user.events")
        #expect(message.key == Array("agg-1".utf8))
        #expect(message.value == Array(#"{"a":1}"#.utf8))
        #expect(message.headers.first { $0.key == "ce_id" }?.stringValue == "id-1")
        #expect(message.headers.first { $0.key == "ce_type" }?.stringValue == "Happened")
        #expect(message.headers.first { $0.key == "ce_time" }?.stringValue == "2024-05-01T12:00:00.123Z")
    }

    // Found by the outbox fuzz target: a row whose id held DEL (U+007F) was published with
    // that byte in ce_id; a line break in event_type would have gone out in ce_type.
    @Test("a row whose id is empty, or whose id, event type or aggregate type holds a control character, is refused, naming the column")
    func controlCharacters() {
        let settings = OutboxRelaySettings(topics: OutboxTopicMapping(topics: ["User\u{85}": "users"]))
        let rows: [(OutboxEvent, String)] = [
            (outboxEvent("20\u{7F}User", aggregate: "43"), "id contains the control character U+007F"),
            (
                OutboxEvent(
                    id: "1", aggregateType: "User", aggregateID: "43", eventType: "Created\nX-Injected: 1", payload: Array("{}".utf8),
                    createdAt: EventTime(millisecondsSinceEpoch: 0), attempts: 0),
                "event_type contains the control character U+000A"
            ),
            (outboxEvent("2", type: "User\u{85}", aggregate: "43"), "aggregate_type contains the control character U+0085"),
        ]
        for (row, reason) in rows {
            guard case .failure(let problem) = OutboxRelay.message(for: row, settings: settings) else {
                Issue.record("published: \(row)")
                continue
            }
            #expect(problem.description.hasPrefix(reason), "\(problem)")
        }
        // Found by the outbox fuzz target: an empty id (a text primary key may be '') went
        // out as an empty ce_id, which CloudEvents consumers refuse and inboxes cannot tell apart.
        guard case .failure(let problem) = OutboxRelay.message(for: outboxEvent("", aggregate: "43"), settings: settings) else {
            Issue.record("a row with an empty id was published")
            return
        }
        #expect(problem.description == "id is empty")
        // Tabs are controls too; other Unicode (é, U+2028) is text.
        #expect((try? OutboxRelay.message(for: outboxEvent("a\tb", aggregate: "1"), settings: settings).get()) == nil)
        #expect((try? OutboxRelay.message(for: outboxEvent("é\u{2028}", aggregate: "1"), settings: settings).get()) != nil)
    }

    // Found by the outbox fuzz target: a created_at after 9999 (PostgreSQL holds years up to
    // 294276, and BC years) went out as ce_time "10000-01-01T00:00:00.000Z", no RFC 3339.
    @Test("a row whose created_at is outside the years 0000 to 9999 is refused; the ends of that range are published")
    func timeOutOfRange() throws {
        for ms in [RFC3339.range.upperBound + 1, RFC3339.range.lowerBound - 1, 9_224_318_015_999_999, -210_866_803_200_000] {
            guard case .failure(let problem) = OutboxRelay.message(for: outboxEvent("1", aggregate: "a", at: ms), settings: .init())
            else {
                Issue.record("published with created_at \(ms)")
                continue
            }
            #expect(problem.description.hasSuffix("is outside the years 0000 to 9999 that an RFC 3339 ce_time can hold"))
        }
        for ms in [RFC3339.range.upperBound, RFC3339.range.lowerBound] {
            let message = try OutboxRelay.message(for: outboxEvent("1", aggregate: "a", at: ms), settings: .init()).get()
            let time = try #require(message.headers.first { $0.key == "ce_time" }?.stringValue)
            #expect(RFC3339.parse(time)?.millisecondsSinceEpoch == ms)
        }
    }

    @Test("not JSON, too large and unmapped rows count attempts and end failed; other aggregates are published; refusals count too")
    func rowFailures() async throws {
        let store = FakeOutboxStore([
            outboxEvent("bad-json", aggregate: "a", payload: "{nope"), outboxEvent("a-later", aggregate: "a"),
            outboxEvent("big", aggregate: "b", payload: "\"" + String(repeating: "x", count: 2000) + "\""),
            outboxEvent("unmapped", type: "Ghost", aggregate: "c"),
            outboxEvent("refused", type: "Refused", aggregate: "d"),
            outboxEvent("fine-1", aggregate: "e"), outboxEvent("fine-2", aggregate: "e"),
        ])
        let publisher = FakeOutboxPublisher()
        let settings = OutboxRelaySettings(
            maxAttempts: 3, maxMessageBytes: 1024,
            topics: OutboxTopicMapping(topics: ["User": "user.events", "Refused": "refused.events"], defaultPattern: nil))
        let relay = OutboxRelay(store: store, publisher: publisher, settings: settings, logger: logger)
        let report = try await relay.drain()
        #expect(report.published == 2)
        #expect(report.failed == 4)
        #expect(report.failedAttempts == 12)
        let rows = Dictionary(uniqueKeysWithValues: store.snapshot.map { ($0.event.id, $0) })
        #expect(rows["bad-json"]?.status == "failed")
        #expect(rows["bad-json"]?.error?.hasPrefix("event_data is not valid JSON") == true)
        #expect(rows["big"]?.error?.contains("limit of 1024 bytes") == true)
        #expect(rows["unmapped"]?.error?.contains("no topic for aggregate type \"Ghost\"") == true)
        #expect(rows["refused"]?.error == "the broker refused the message: MSG_SIZE_TOO_LARGE")
        #expect(rows["refused"]?.attempts == 3)
        #expect(rows["a-later"]?.status == "pending")
        #expect(publisher.sent.filter { $0.topic == "user.events" }.map(\.eventID) == ["fine-1", "fine-2"])
    }

    /// A store that hands out all of its rows in one claim, as the PostgreSQL store does for
    /// an aggregate's head and the rows after it, and remembers the outcomes.
    final class OneBatchStore: OutboxStore {
        let events: [OutboxEvent]
        let outcomes = Mutex<[OutboxOutcome]?>(nil)

        init(_ events: [OutboxEvent]) { self.events = events }

        func claim(limit: Int, deliver: @escaping @Sendable ([OutboxEvent]) async throws -> [OutboxOutcome]) async throws
            -> [OutboxOutcome]
        {
            guard outcomes.withLock({ $0 == nil }) else { return [] }
            let result = try await deliver(events)
            outcomes.withLock { $0 = result }
            return result
        }

        func deleteProcessed(olderThan age: Duration, batchSize: Int) async throws -> Int { 0 }
        func backlog() async throws -> OutboxBacklog { OutboxBacklog(failedRows: 0, blockedAggregates: 0, waitingRows: 0) }
    }

    /// Records each publish call's ids.
    final class WavePublisher: OutboxPublisher {
        let calls = Mutex<[[String]]>([])

        func publish(_ messages: [OutboxMessage]) async throws -> [String?] {
            calls.withLock { $0.append(messages.map(\.eventID)) }
            return messages.map { $0.topic == "refused.events" ? "MSG_SIZE_TOO_LARGE" : nil }
        }
    }

    @Test("an aggregate's rows in one batch go out in waves, in order; a refused row stops its aggregate, the rows after it stay pending")
    func waves() async throws {
        let store = OneBatchStore([
            outboxEvent("a1", aggregate: "a"), outboxEvent("b1", aggregate: "b", payload: "{nope"),
            outboxEvent("c1", type: "Refused", aggregate: "c"), outboxEvent("a2", aggregate: "a"),
            outboxEvent("b2", aggregate: "b"), outboxEvent("c2", type: "Refused", aggregate: "c"), outboxEvent("a3", aggregate: "a"),
        ])
        let publisher = WavePublisher()
        let settings = OutboxRelaySettings(
            maxAttempts: 3, topics: OutboxTopicMapping(topics: ["User": "user.events", "Refused": "refused.events"], defaultPattern: nil))
        let relay = OutboxRelay(store: store, publisher: publisher, settings: settings, logger: logger)
        let report = try await relay.relayBatch()
        // Wave 1: the first row of each aggregate (b1 refused here, c1 by the broker); then a2, a3.
        #expect(publisher.calls.withLock { $0 } == [["a1", "c1"], ["a2"], ["a3"]])
        let outcomes = try #require(store.outcomes.withLock { $0 })
        let decided = Dictionary(uniqueKeysWithValues: outcomes.map { ($0.id, $0) })
        #expect(Set(decided.keys) == ["a1", "a2", "a3", "b1", "c1"], "b2 and c2 stay pending, behind their refused rows")
        #expect(["a1", "a2", "a3"].allSatisfy { if case .published = decided[$0] { true } else { false } })
        #expect(["b1", "c1"].allSatisfy { if case .failed = decided[$0] { true } else { false } })
        #expect(report.published == 3)
    }

    @Test("broker unreachable: nothing is marked, the relay backs off and retries, then publishes everything")
    func brokerUnreachable() async throws {
        let store = FakeOutboxStore([outboxEvent("1", aggregate: "a"), outboxEvent("2", aggregate: "a"), outboxEvent("3", aggregate: "b")])
        let publisher = FakeOutboxPublisher()
        publisher.failNext(3)
        let settings = OutboxRelaySettings(backoff: Backoff(initial: .milliseconds(1), cap: .milliseconds(2)))
        let relay = OutboxRelay(store: store, publisher: publisher, settings: settings, logger: logger)
        await #expect(throws: FakeOutboxPublisher.Unreachable.self) { try await relay.drain() }
        #expect(store.snapshot.allSatisfy { $0.status == "pending" && $0.attempts == 0 })
        await #expect(throws: FakeOutboxPublisher.Unreachable.self) { try await relay.drainRetrying(maxRetries: 1) }
        let report = try await relay.drainRetrying()
        #expect(report.published == 3)
        #expect(publisher.sent.map(\.eventID) == ["1", "3", "2"])
    }

    @Test("a wake-up signalled while the relay is busy is kept for the next wait")
    func wakeupKeepsSignal() async {
        let wakeup = Doorbell()
        wakeup.ring()
        await wakeup.wait(timeout: .seconds(3600))  // returns at once: the signal was kept
        let waiter = Task { await wakeup.wait(timeout: .seconds(3600)) }
        wakeup.ring()
        await waiter.value
    }
}
