import Dispatch
import Foundation
import HeraldCore
import Logging
import Synchronization

/// Herald's consumer: a member of a consumer group that hands each assigned partition's
/// records, in order, to a `BatchProcessor`, and stores a record's offset only after its
/// outcome is final. Partitions are processed concurrently, each by its own
/// `PartitionWorker`.
///
/// One dedicated thread, the poll thread, runs the consumer: polling, rebalances,
/// pause/resume, commits and close, never on Swift's cooperative pool. Workers run as tasks
/// and reach the client for one thing only, storing an offset (non-blocking, thread-safe).
/// Every librdkafka call goes through `RDKafkaClient` (`RDKafka/`); the consumer's logic is
/// plain Swift, a concern per file:
/// - this file: the public face, and the poll thread's life (subscribe, turn, shut down,
///   destroy the client);
/// - `+PollLoop`: one turn: the consumer queue, then each partition's queue into its worker;
/// - `+Rebalance`: what an assignment, a revocation and a failed rebalance do;
/// - `+Workers`: starting and stopping partition workers (the drain, abandoning);
/// - `+Offsets`: storing and committing offsets, under `OffsetCommitPolicy`;
/// - `+Pausing`: pausing partitions that wait on a retry, under `PartitionPauses`.
public final class KafkaEventConsumer: Sendable {
    public typealias Partition = KafkaPartition

    let settings: KafkaConsumerSettings
    let processor: BatchProcessor
    let logger: Logger
    let observer: any ConsumerObserver
    let client: RDKafkaClient
    /// State owned by the poll thread (only read elsewhere through `assignment`).
    nonisolated(unsafe) var loop: PollLoopState
    let shutdownRequested = Atomic<Bool>(false)
    let assigned = Mutex<Set<Partition>>([])
    /// True once a rebalance gave this member an assignment (possibly empty), until a revocation or failure.
    let inGroup = Atomic<Bool>(false)
    /// When the poll loop last turned (`DispatchTime` uptime nanoseconds), for `/healthz`.
    let lastLoop = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
    /// Signalled by librdkafka when a queue becomes non-empty, and by workers that drained.
    let wakeup = DispatchSemaphore(value: 0)
    /// The bytes of the records every partition worker holds (`MemoryBudget`).
    let memory = MemoryInUse()
    /// How many times a partition was paused because its records filled its share.
    let memoryPauses = Atomic<Int>(0)
    private let runCompletion = Mutex<RunCompletion>(RunCompletion())

    struct PollLoopState {
        var workers: [Partition: PartitionWorker] = [:]
        /// Each assigned partition's own librdkafka queue.
        var queues: [Partition: RDKafkaQueue] = [:]
        var pauses = PartitionPauses()
        var commits: OffsetCommitPolicy.Schedule
        /// When the memory sample was last reported (`DispatchTime` uptime nanoseconds).
        var memoryReportedAt: UInt64 = 0
    }

    private struct RunCompletion {
        var continuation: CheckedContinuation<Void, Error>?
    }

    public init(
        settings: KafkaConsumerSettings, processor: BatchProcessor, observer: any ConsumerObserver = NoConsumerObserver(),
        logger: Logger
    ) throws(KafkaError) {
        self.settings = settings
        self.observer = observer
        self.processor = processor
        self.logger = logger
        let rebalanceTarget = RebalanceTarget()
        let context = RDKafkaClientContext(
            logger: logger,
            rebalance: { rebalance in
                rebalanceTarget.consumer?.rebalance(rebalance)
            })
        // Destroyed by the poll thread when it ends; if run() never starts, when the client goes.
        self.client = try RDKafkaClient(
            .consumer, properties: try settings.librdkafkaProperties(), secretKeys: settings.secretProperties, context: context)
        self.loop = PollLoopState(commits: settings.commitPolicy.schedule(startingAt: .now))
        rebalanceTarget.consumer = self
    }

    /// The bytes of the records the partition workers hold, buffered and in flight.
    public var memoryInUse: Int { memory.current }

    /// How many times a partition was paused because its records filled its share of the
    /// memory budget, since the consumer started.
    public var memoryPauseCount: Int { memoryPauses.load(ordering: .relaxed) }

    /// The partitions currently assigned to this member.
    public var assignment: Set<Partition> { assigned.withLock { $0 } }

    /// Whether this member holds an assignment from its group: partitions, or an empty
    /// assignment when the group has more members than partitions.
    public var hasGroupAssignment: Bool { inGroup.load(ordering: .acquiring) }

    /// How long ago the poll loop last turned (it turns at least every 100 ms while running).
    public var pollLoopAge: Duration {
        let now = DispatchTime.now().uptimeNanoseconds
        let last = lastLoop.load(ordering: .relaxed)
        return .nanoseconds(Int64(now > last ? now - last : 0))
    }

    /// Consumes until `triggerShutdown()`; then drains, commits, leaves the group and returns.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                runCompletion.withLock { $0.continuation = c }
                let thread = Thread { [self] in pollThreadMain() }
                thread.name = "herald-consumer-poll"
                thread.start()
            }
        } onCancel: {
            triggerShutdown()
        }
    }

    /// Asks the consumer to stop; `run()` returns once offsets are committed.
    public func triggerShutdown() {
        shutdownRequested.store(true, ordering: .releasing)
    }

    // MARK: The poll thread

    private func pollThreadMain() {
        var failure: KafkaError?
        do throws(KafkaError) {
            try client.subscribe(settings.topics)
            logger.info(
                "consumer started",
                metadata: ["group": "\(settings.groupID)", "topics": "\(settings.topics.joined(separator: ","))"])
            failure = pollUntilShutdown()
        } catch {
            failure = error
        }
        shutdown()
        let continuation = runCompletion.withLock { s -> CheckedContinuation<Void, Error>? in
            defer { s.continuation = nil }
            return s.continuation
        }
        // No worker reaches the client from here on: destroy() first closes the gate that
        // `storeOffset` goes through, so a straggler batch that finishes after the drain
        // stores nothing instead of calling into a destroyed handle.
        client.destroy()
        if let failure { continuation?.resume(throwing: failure) } else { continuation?.resume() }
    }

    /// Drains in-flight work, commits, leaves the group.
    private func shutdown() {
        logger.info("consumer stopping: draining in-flight work", metadata: ["timeout_ms": "\(Int(settings.drainTimeout.seconds * 1000))"])
        stopWorkers(for: Array(loop.workers.keys), timeout: settings.drainTimeout)
        commitStoredOffsets(.shutdown)
        // Closing revokes the assignment (`rebalance` commits again) and leaves the group.
        if let error = client.closeConsumer() {
            logger.warning("consumer close reported an error", metadata: ["error": "\(error)"])
        }
        assigned.withLock { $0.removeAll() }
        inGroup.store(false, ordering: .releasing)
        logger.info("consumer stopped")
    }
}

/// Lets the rebalance callback, created before the consumer exists, reach it.
private final class RebalanceTarget: @unchecked Sendable {
    // Written once during init, before the client can call back; read on the poll thread.
    weak var consumer: KafkaEventConsumer?
}
