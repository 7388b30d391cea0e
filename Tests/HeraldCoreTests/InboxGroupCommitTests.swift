import HeraldCore
import Testing

@Suite("Inbox group commit")
struct InboxGroupCommitTests {
    /// An inbox whose first transaction waits until released, which fails the transactions
    /// that hold a `poison` id, and which knows the ids in `seen` already.
    actor GatedInbox: EventInbox {
        struct Outage: Error {}
        private(set) var calls: [[String]] = []
        private var gate: CheckedContinuation<Void, Never>?
        private var held = false
        let holdFirst: Bool
        let poison: String?
        let outage: Bool
        let seen: Set<String>

        init(holdFirst: Bool = true, poison: String? = nil, outage: Bool = false, seen: Set<String> = []) {
            self.holdFirst = holdFirst
            self.poison = poison
            self.outage = outage
            self.seen = seen
        }

        func record(_ events: [AcceptedEvent], consumerGroup: String) async throws -> Set<EventID> {
            let ids = events.map(\.metadata.id.rawValue)
            calls.append(ids)
            if holdFirst && calls.count == 1 {
                held = true
                await withCheckedContinuation { gate = $0 }
            }
            if outage { throw Outage() }
            if let poison, ids.contains(poison) { throw EventContentError("a value of \(poison)") }
            return Set(events.map(\.metadata.id).filter { !seen.contains($0.rawValue) })
        }

        var isHolding: Bool { held && gate != nil }

        func release() {
            gate?.resume()
            gate = nil
        }
    }

    static func events(_ ids: String...) throws -> [AcceptedEvent] {
        try ids.map { try InboxEffectApplierTests.event($0, [.deleteRecipient(try UserID("u"), asOf: InboxEffectApplierTests.at)]) }
    }

    /// Polls until `condition` holds (the tasks under test run concurrently).
    static func until(_ condition: () async -> Bool) async {
        while !(await condition()) { await Task.yield() }
    }

    @Test("batches that arrive while a transaction runs are recorded together, each caller getting its own ids")
    func combines() async throws {
        let inbox = GatedInbox()
        let commit = InboxGroupCommit(inbox, maxInFlight: 1)
        async let a = commit.record(try Self.events("a1"), consumerGroup: "g")
        await Self.until { await inbox.isHolding }
        async let b = commit.record(try Self.events("b1", "b2"), consumerGroup: "g")
        async let c = commit.record(try Self.events("c1", "b2"), consumerGroup: "g")
        await Self.until { await commit.waitingBatches == 2 }
        await inbox.release()
        let (ra, rb, rc) = try await (a, b, c)
        #expect(ra == [try EventID("a1")])
        // b2 is in both later batches: the first of them gets it, as within one batch.
        let later = Set([rb, rc])
        #expect(later == [[try EventID("b1"), try EventID("b2")], [try EventID("c1")]])
        let calls = await inbox.calls
        #expect(calls.count == 2)
        #expect(calls.first == ["a1"])
        #expect(Set(calls.last ?? []) == ["b1", "b2", "c1"])
    }

    @Test("an event's bad value in a combined transaction: each batch alone, only its own batch fails")
    func contentErrorIsolated() async throws {
        let inbox = GatedInbox(poison: "bad")
        let commit = InboxGroupCommit(inbox, maxInFlight: 1)
        async let a = commit.record(try Self.events("a1"), consumerGroup: "g")
        await Self.until { await inbox.isHolding }
        async let good = commit.record(try Self.events("g1"), consumerGroup: "g")
        async let bad = Result(catching: { try await commit.record(try Self.events("x1", "bad"), consumerGroup: "g") })
        await Self.until { await commit.waitingBatches == 2 }
        await inbox.release()
        let (first, second, third) = try await (a, good, bad)
        #expect(first == [try EventID("a1")])
        #expect(second == [try EventID("g1")])
        #expect(throws: EventContentError.self) { try third.get() }
        // The combined attempt, then each batch alone.
        #expect(await inbox.calls.count == 4)
    }

    @Test("an outage fails every batch of the transaction; none is reported recorded")
    func outageFailsAll() async throws {
        let inbox = GatedInbox(outage: true)
        let commit = InboxGroupCommit(inbox, maxInFlight: 1)
        async let a = Result(catching: { try await commit.record(try Self.events("a1"), consumerGroup: "g") })
        await Self.until { await inbox.isHolding }
        async let b = Result(catching: { try await commit.record(try Self.events("b1"), consumerGroup: "g") })
        async let c = Result(catching: { try await commit.record(try Self.events("c1"), consumerGroup: "g") })
        await Self.until { await commit.waitingBatches == 2 }
        await inbox.release()
        let results = await [a, b, c]
        for result in results {
            #expect(throws: GatedInbox.Outage.self) { try result.get() }
        }
        #expect(await inbox.calls.count == 2)
    }

    @Test("duplicates: ids the inbox knew are returned to no one")
    func duplicates() async throws {
        let inbox = GatedInbox(holdFirst: false, seen: ["old"])
        let commit = InboxGroupCommit(inbox)
        #expect(try await commit.record(try Self.events("old", "new"), consumerGroup: "g") == [try EventID("new")])
        #expect(try await commit.record([], consumerGroup: "g").isEmpty)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
