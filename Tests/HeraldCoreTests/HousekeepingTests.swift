import HeraldCore
import Logging
import Synchronization
import Testing

/// The housekeeping loops `herald run` keeps going beside the consumer: inbox pruning, outbox
/// retention and the mail queue sampler. Each turns at once and then every interval, keeps
/// going after a failure, and ends when its task is cancelled.
@Suite("Housekeeping")
struct HousekeepingTests {
    struct Down: Error {}

    /// Records its calls; fails the calls whose number (from 1) is in `failing`.
    final class Calls: Sendable {
        private let state = Mutex<(count: Int, arguments: [String])>((0, []))
        let failing: Set<Int>

        init(failing: Set<Int> = []) { self.failing = failing }

        func call(_ argument: String) throws -> Int {
            let n = state.withLock { s in
                s.count += 1
                s.arguments.append(argument)
                return s.count
            }
            if failing.contains(n) { throw Down() }
            return n
        }

        var count: Int { state.withLock { $0.count } }
        var arguments: [String] { state.withLock { $0.arguments } }
    }

    struct Inbox: InboxRetention {
        let calls: Calls
        func prune(olderThan age: Duration, batchSize: Int) async throws -> Int {
            try calls.call("\(age.unitsDescription)/\(batchSize)")
        }
    }

    struct Queue: MailQueueStatistics {
        let calls: Calls
        func countByStatus() async throws -> [NotificationStatus: Int] {
            [.queued: try calls.call("count")]
        }
        func oldestQueuedAge() async throws -> Duration? { .seconds(7) }
    }

    final class Samples: MailQueueSampleObserver {
        private let state = Mutex<[Int]>([])
        func mailQueue(depth: [NotificationStatus: Int], oldestQueuedAge: Duration?) {
            state.withLock { $0.append(depth[.queued] ?? -1) }
        }
        var queued: [Int] { state.withLock { $0 } }
    }

    /// Polls until `condition` holds (the loops run on their own time).
    func eventually(_ condition: () -> Bool) async throws {
        while !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test("the inbox pruner prunes at once with its retention and batch, again every interval, through failures, until cancelled")
    func inboxPruner() async throws {
        let calls = Calls(failing: [2])
        let pruner = InboxPruner(
            inbox: Inbox(calls: calls), retention: .seconds(14 * 86_400), interval: .milliseconds(1), logger: quietLogger)
        let running = Task { await pruner.run() }
        try await eventually { calls.count >= 4 }
        running.cancel()
        await running.value
        let after = calls.count
        #expect(calls.arguments.allSatisfy { $0 == "14d/5000" })
        try await Task.sleep(for: .milliseconds(20))
        #expect(calls.count == after, "a cancelled pruner stops")
        #expect(await pruner.pruneOnce() != nil)
        #expect(await InboxPruner(inbox: Inbox(calls: Calls(failing: [1])), retention: .seconds(1), logger: quietLogger).pruneOnce() == nil)
    }

    @Test("outbox retention deletes processed rows older than the retention, 1,000 per statement, every interval")
    func outboxRetention() async throws {
        let store = FakeOutboxStore()
        let retention = OutboxRetention(store: store, retention: .seconds(7 * 86_400), interval: .milliseconds(1), logger: quietLogger)
        let running = Task { await retention.run() }
        try await eventually { store.deletions.count >= 3 }
        running.cancel()
        await running.value
        #expect(store.deletions.allSatisfy { $0.age == .seconds(7 * 86_400) && $0.batchSize == 1000 })
    }

    @Test("the mail queue sampler reports each sample, keeps sampling through failures")
    func mailQueueSampler() async throws {
        let calls = Calls(failing: [2, 3])
        let samples = Samples()
        let sampler = MailQueueSampler(queue: Queue(calls: calls), observer: samples, interval: .milliseconds(1), logger: quietLogger)
        let running = Task { await sampler.run() }
        try await eventually { samples.queued.count >= 3 }
        running.cancel()
        await running.value
        #expect(Array(samples.queued.prefix(3)) == [1, 4, 5], "the failed samples (2, 3) report nothing")
        #expect(await sampler.sampleOnce() == true)
        #expect(
            await MailQueueSampler(queue: Queue(calls: Calls(failing: [1])), observer: samples, interval: .seconds(1), logger: quietLogger)
                .sampleOnce() == false)
    }
}
