import CRdKafka
import Foundation
import HeraldCore
import Logging
import Synchronization

/// Herald's consumer: a member of a consumer group that hands each assigned partition's
/// records, in order, to a `BatchProcessor`, and stores a record's offset only after its
/// outcome is final. Partitions are processed concurrently.
///
/// Each assigned partition's librdkafka queue is detached from the consumer queue
/// (`rd_kafka_queue_get_partition` + `rd_kafka_queue_forward(q, NULL)`), so librdkafka's
/// prefetch limits apply per partition: a partition whose worker is behind stops being read,
/// its queue fills and librdkafka stops fetching it, while the others go on. (With one shared
/// queue a single busy partition, or a burst, made every partition unfetchable until
/// librdkafka's next wake-up, which cost two thirds of the throughput.) A partition waiting on
/// a retry is also paused, so nothing is fetched for it meanwhile.
///
/// All librdkafka calls except `rd_kafka_offsets_store` (non-blocking and thread-safe) are
/// made on one dedicated thread, never on Swift's cooperative pool: polling, rebalances,
/// pause/resume, synchronous commits and close.
public final class KafkaEventConsumer: Sendable {
    public struct Partition: Hashable, Sendable, CustomStringConvertible {
        public let topic: String
        public let partition: Int32
        public var description: String { "\(topic)[\(partition)]" }
    }

    private let settings: KafkaConsumerSettings
    private let processor: BatchProcessor
    private let logger: Logger
    private let context: RDKafkaClientContext
    nonisolated(unsafe) private let handle: OpaquePointer
    /// State owned by the poll thread (only read elsewhere through `assignment`).
    nonisolated(unsafe) private var loop = PollLoopState()
    private let shutdownRequested = Atomic<Bool>(false)
    private let assigned = Mutex<Set<Partition>>([])
    /// True once a rebalance gave this member an assignment (possibly empty), until a revocation or failure.
    private let inGroup = Atomic<Bool>(false)
    /// When the poll loop last turned (`DispatchTime` uptime nanoseconds), for `/healthz`.
    private let lastLoop = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
    private let observer: any ConsumerObserver
    private let runCompletion = Mutex<RunCompletion>(RunCompletion())
    private let cooperative: Bool
    /// Signalled by librdkafka when a queue becomes non-empty, and by workers that drained.
    private let wakeup = DispatchSemaphore(value: 0)
    /// True while the handle may be called from a worker (`rd_kafka_offsets_store`). Set to
    /// false, under this lock, before the handle is destroyed: a straggler batch that
    /// finishes after the drain stores nothing instead of calling into a destroyed handle.
    private let handleOpen = Mutex<Bool>(true)

    private struct PollLoopState {
        var workers: [Partition: PartitionWorker] = [:]
        /// Each assigned partition's own librdkafka queue.
        var queues: [Partition: OpaquePointer] = [:]
        var paused: Set<Partition> = []
        var topicNames: [OpaquePointer: String] = [:]
    }

    private struct RunCompletion {
        var finished = false
        var error: KafkaError?
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
            rebalance: { err, partitions in
                rebalanceTarget.consumer?.rebalance(err, partitions)
            })
        self.context = context
        let conf = try RDKafkaConfiguration.make(
            try settings.librdkafkaProperties(), secretKeys: settings.secretProperties, context: context)
        self.handle = try RDKafkaConfiguration.handle(RD_KAFKA_CONSUMER, conf: conf)
        self.cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
        rebalanceTarget.consumer = self
        rd_kafka_poll_set_consumer(handle)
    }

    deinit {
        // The poll thread destroys the handle when it ends; if run() never started, do it here.
        if !runCompletion.withLock({ $0.finished }) {
            rd_kafka_destroy(handle)
        }
    }

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
        let list = RDKafkaPartitionList(settings.topics.map { ($0, RD_KAFKA_PARTITION_UA, 0) })
        let err = rd_kafka_subscribe(handle, list.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            failure = KafkaError.rdKafka(err, message: "cannot subscribe to \(settings.topics.joined(separator: ", "))")
        } else {
            logger.info(
                "consumer started",
                metadata: ["group": "\(settings.groupID)", "topics": "\(settings.topics.joined(separator: ","))"])
            failure = pollUntilShutdown()
        }
        shutdown()
        let continuation = runCompletion.withLock { s -> CheckedContinuation<Void, Error>? in
            s.finished = true
            s.error = failure
            defer { s.continuation = nil }
            return s.continuation
        }
        // No worker may reach the handle from here on (see `storeOffset`).
        handleOpen.withLock { $0 = false }
        rd_kafka_destroy(handle)
        if let failure { continuation?.resume(throwing: failure) } else { continuation?.resume() }
    }

    private func pollUntilShutdown() -> KafkaError? {
        let high = settings.maxBufferedPerPartition
        let readBatch = max(64, min(high, 1024))
        var messages = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: readBatch)
        var records: [InboundMessage] = []
        records.reserveCapacity(readBatch)
        let consumerQueue = rd_kafka_queue_get_consumer(handle)!
        enableWakeup(consumerQueue)
        defer {
            rd_kafka_queue_cb_event_enable(consumerQueue, nil, nil)
            rd_kafka_queue_destroy(consumerQueue)
        }
        while !shutdownRequested.load(ordering: .acquiring) {
            lastLoop.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            // Rebalances, errors and (before partition queues exist) records arrive on the
            // consumer queue; rd_kafka_consumer_poll runs the rebalance callback.
            while let m = rd_kafka_consumer_poll(handle, 0) {
                receiveStray(m)
                rd_kafka_message_destroy(m)
            }
            var progressed = false
            var waitingOnWorkers = false
            for (partition, queue) in loop.queues {
                guard let worker = loop.workers[partition] else { continue }
                let room = high - worker.buffered
                if room <= 0 {
                    waitingOnWorkers = true
                    continue
                }
                // rd_kafka_consume_batch_queue with timeout 0 does not block.
                let count = messages.withUnsafeMutableBufferPointer { buffer in
                    rd_kafka_consume_batch_queue(queue, 0, buffer.baseAddress, min(room, readBatch))
                }
                guard count > 0 else { continue }
                progressed = true
                for i in 0..<count {
                    let m = messages[i]!
                    if m.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                        report(m)
                    } else {
                        records.append(RDKafkaMessage.inbound(m, topic: partition.topic))
                    }
                    rd_kafka_message_destroy(m)
                }
                if !records.isEmpty { worker.deliver(records) }
                records.removeAll(keepingCapacity: true)
            }
            reconcilePauses()
            var errstr = [CChar](repeating: 0, count: 512)
            let fatal = rd_kafka_fatal_error(handle, &errstr, errstr.count)
            if fatal != RD_KAFKA_RESP_ERR_NO_ERROR {
                let error = KafkaError.rdKafka(fatal, message: cString(errstr), fatal: true)
                logger.critical("consumer hit a fatal error", metadata: ["error": "\(error)"])
                return error
            }
            if !progressed {
                // Blocks this dedicated thread until a queue has records, a worker drained,
                // or the timeout passes.
                _ = wakeup.wait(timeout: .now() + .milliseconds(waitingOnWorkers ? 20 : 100))
            }
        }
        return nil
    }

    /// A record polled from the consumer queue: only possible for a partition whose queue is
    /// not (yet) detached. Delivered to its worker in order, or dropped uncommitted.
    private func receiveStray(_ m: UnsafeMutablePointer<rd_kafka_message_t>) {
        if m.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            report(m)
            return
        }
        guard let rkt = m.pointee.rkt else { return }
        let topic = topicName(rkt)
        loop.workers[Partition(topic: topic, partition: m.pointee.partition)]?.deliver([RDKafkaMessage.inbound(m, topic: topic)])
    }

    /// Asks librdkafka to signal `wakeup` when `queue` goes from empty to non-empty.
    private func enableWakeup(_ queue: OpaquePointer) {
        rd_kafka_queue_cb_event_enable(
            queue,
            { _, opaque in
                guard let opaque else { return }
                Unmanaged<DispatchSemaphore>.fromOpaque(opaque).takeUnretainedValue().signal()
            }, Unmanaged.passUnretained(wakeup).toOpaque())
    }

    private func topicName(_ rkt: OpaquePointer) -> String {
        if let name = loop.topicNames[rkt] { return name }
        let name = String(cString: rd_kafka_topic_name(rkt))
        loop.topicNames[rkt] = name
        return name
    }

    private func report(_ m: UnsafeMutablePointer<rd_kafka_message_t>) {
        let err = m.pointee.err
        if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return }
        let topic = m.pointee.rkt.map { topicName($0) } ?? "-"
        logger.warning(
            "consumer error",
            metadata: [
                "topic": "\(topic)", "partition": "\(m.pointee.partition)",
                "error": "\(KafkaError.rdKafka(err, message: String(cString: rd_kafka_message_errstr(m))))",
            ])
    }

    /// Pauses partitions whose worker waits on a retry; resumes them when it is over.
    private func reconcilePauses() {
        var pause: [Partition] = []
        var resume: [Partition] = []
        for (partition, worker) in loop.workers {
            let want = worker.isRetrying
            let paused = loop.paused.contains(partition)
            if want && !paused {
                pause.append(partition)
            } else if !want && paused {
                resume.append(partition)
            }
        }
        if !pause.isEmpty {
            let list = RDKafkaPartitionList(pause.map { ($0.topic, $0.partition, 0) })
            rd_kafka_pause_partitions(handle, list.pointer)
            loop.paused.formUnion(pause)
            logger.info("partitions paused while retrying", metadata: ["partitions": "\(pause.map(\.description).sorted())"])
        }
        if !resume.isEmpty {
            let list = RDKafkaPartitionList(resume.map { ($0.topic, $0.partition, 0) })
            rd_kafka_resume_partitions(handle, list.pointer)
            loop.paused.subtract(resume)
            logger.info("partitions resumed", metadata: ["partitions": "\(resume.map(\.description).sorted())"])
        }
        if !pause.isEmpty || !resume.isEmpty { observer.pausedPartitions(loop.paused.count) }
    }

    // MARK: Rebalances (called on the poll thread from inside rd_kafka_consumer_poll/close)

    fileprivate func rebalance(_ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let partitions = RDKafkaPartitionList.entries(list).map { Partition(topic: $0.topic, partition: $0.partition) }
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(handle, list) {
                    logger.error("incremental assign failed", metadata: ["error": "\(KafkaError.rdKafka(consuming: error))"])
                }
            } else {
                rd_kafka_assign(handle, list)
            }
            for p in partitions where loop.workers[p] == nil {
                let wakeup = self.wakeup
                let worker = PartitionWorker(topic: p.topic, partition: p.partition, maxBatch: settings.maxBatch) {
                    wakeup.signal()
                }
                worker.start(processor: processor, logger: logger) { [weak self] next in
                    self?.storeOffset(p, next)
                }
                loop.workers[p] = worker
                if let queue = rd_kafka_queue_get_partition(handle, p.topic, p.partition) {
                    rd_kafka_queue_forward(queue, nil)
                    enableWakeup(queue)
                    loop.queues[p] = queue
                }
            }
            // A partition paused in an earlier assignment must not stay paused.
            rd_kafka_resume_partitions(handle, list)
            loop.paused.subtract(partitions)
            assigned.withLock { $0.formUnion(partitions) }
            inGroup.store(true, ordering: .releasing)
            observer.rebalanced(.assigned, partitions: partitions.count)
            observer.pausedPartitions(loop.paused.count)
            logger.info("partitions assigned", metadata: ["partitions": "\(partitions.map(\.description).sorted())"])
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            logger.info("partitions revoked", metadata: ["partitions": "\(partitions.map(\.description).sorted())"])
            stopWorkers(for: partitions, timeout: settings.drainTimeout)
            commitStoredOffsets(reason: "revocation")
            if cooperative {
                if let error = rd_kafka_incremental_unassign(handle, list) {
                    logger.error("incremental unassign failed", metadata: ["error": "\(KafkaError.rdKafka(consuming: error))"])
                }
            } else {
                rd_kafka_assign(handle, nil)
            }
            assigned.withLock { $0.subtract(partitions) }
            // An eager revocation takes everything until the next assignment (possibly empty);
            // a cooperative one leaves the member in its group.
            if !cooperative { inGroup.store(false, ordering: .releasing) }
            loop.paused.subtract(partitions)
            observer.rebalanced(.revoked, partitions: partitions.count)
            observer.pausedPartitions(loop.paused.count)
        default:
            logger.error("rebalance failed", metadata: ["error": "\(KafkaError.rdKafka(err))"])
            stopWorkers(for: Array(loop.workers.keys), timeout: settings.drainTimeout)
            rd_kafka_assign(handle, nil)
            assigned.withLock { $0.removeAll() }
            inGroup.store(false, ordering: .releasing)
            loop.paused.removeAll()
            observer.rebalanced(.failed, partitions: partitions.count)
            observer.pausedPartitions(0)
        }
    }

    /// Lets in-flight batches of `partitions` finish within `timeout`, then abandons the rest.
    private func stopWorkers(for partitions: [Partition], timeout: Duration) {
        for p in partitions {
            if let queue = loop.queues.removeValue(forKey: p) {
                rd_kafka_queue_cb_event_enable(queue, nil, nil)
                rd_kafka_queue_destroy(queue)
            }
        }
        let workers = partitions.compactMap { p in loop.workers.removeValue(forKey: p) }
        for w in workers {
            w.close()
            // A batch waiting on a failing dependency is abandoned at once rather than after the
            // drain timeout: it is redelivered to whoever gets the partition.
            if w.isRetrying {
                logger.notice(
                    "partition waits on a dependency; abandoning its in-flight records (redelivered)",
                    metadata: ["topic": "\(w.topic)", "partition": "\(w.partition)"])
                w.cancel()
            }
        }
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.seconds * 1000))
        var stragglers: [PartitionWorker] = []
        for w in workers where w.finished.wait(timeout: deadline) == .timedOut {
            stragglers.append(w)
        }
        for w in stragglers {
            logger.warning(
                "partition did not finish in time; abandoning its in-flight records",
                metadata: ["topic": "\(w.topic)", "partition": "\(w.partition)", "retrying": "\(w.isRetrying)"])
            // From now on the worker stores no offset, even if its batch still completes.
            w.cancel()
        }
        // Cancelled work ends at its next suspension point; a dependency call in progress is
        // bounded by its own timeout. A worker still running after this wait can no longer
        // reach the handle: it was cancelled, and `handleOpen` guards the handle itself.
        let hardDeadline = DispatchTime.now() + .milliseconds(Int(timeout.seconds * 1000))
        for w in stragglers where w.finished.wait(timeout: hardDeadline) == .timedOut {
            logger.error(
                "partition work did not stop after cancellation; its records are not committed",
                metadata: ["topic": "\(w.topic)", "partition": "\(w.partition)"])
        }
    }

    private func storeOffset(_ partition: Partition, _ next: Int64) {
        handleOpen.withLock { open in
            // After shutdown the handle is gone: the batch is redelivered to the next consumer.
            guard open else { return }
            storeOffsetOnOpenHandle(partition, next)
        }
    }

    private func storeOffsetOnOpenHandle(_ partition: Partition, _ next: Int64) {
        let list = RDKafkaPartitionList([(partition.topic, partition.partition, next)])
        // rd_kafka_offsets_store only records the offset in memory: safe from any thread.
        let err = rd_kafka_offsets_store(handle, list.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR || list.pointer.pointee.elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR {
            let e = err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : list.pointer.pointee.elems[0].err
            logger.debug(
                "offset not stored (partition no longer assigned); its records will be redelivered",
                metadata: ["partition": "\(partition)", "offset": "\(next)", "error": "\(KafkaError.rdKafka(e))"])
        }
    }

    private func commitStoredOffsets(reason: String) {
        // rd_kafka_commit with async=0 blocks until the coordinator answers.
        let err = rd_kafka_commit(handle, nil, 0)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET {
            // The final commit is worth a line at the default level; the periodic ones are not.
            logger.log(
                level: reason == "shutdown" ? .info : .debug,
                err == RD_KAFKA_RESP_ERR__NO_OFFSET ? "no new offsets to commit" : "offsets committed",
                metadata: ["reason": "\(reason)"])
        } else {
            logger.warning("offset commit failed", metadata: ["reason": "\(reason)", "error": "\(KafkaError.rdKafka(err))"])
        }
    }

    /// Drains in-flight work, commits, leaves the group.
    private func shutdown() {
        logger.info("consumer stopping: draining in-flight work", metadata: ["timeout_ms": "\(Int(settings.drainTimeout.seconds * 1000))"])
        stopWorkers(for: Array(loop.workers.keys), timeout: settings.drainTimeout)
        commitStoredOffsets(reason: "shutdown")
        // rd_kafka_consumer_close blocks: it revokes (our callback commits again) and leaves the group.
        let err = rd_kafka_consumer_close(handle)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("consumer close reported an error", metadata: ["error": "\(KafkaError.rdKafka(err))"])
        }
        assigned.withLock { $0.removeAll() }
        inGroup.store(false, ordering: .releasing)
        logger.info("consumer stopped")
    }
}

/// Lets the rebalance callback, created before the consumer exists, reach it.
private final class RebalanceTarget: @unchecked Sendable {
    // Written once during init, before the handle can call back; read on the poll thread.
    weak var consumer: KafkaEventConsumer?
}
