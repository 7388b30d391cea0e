import Dispatch
import HeraldCore
import Logging
import Synchronization

/// The records of one assigned partition waiting to be processed, and the task that
/// processes them in order. The poll thread delivers; the task takes up to a batch at a time.
/// The poll thread stops reading the partition's librdkafka queue while `buffered` is at its
/// limit, so librdkafka stops fetching that partition: the buffer is bounded, never dropped.
final class PartitionWorker: Sendable {
    let topic: String
    let partition: Int32

    private struct State {
        var buffer: [InboundMessage] = []
        var waiter: CheckedContinuation<[InboundMessage]?, Never>?
        var closed = false
        var retrying = false
        /// Set by `cancel()`: the batch in flight may still complete, but stores no offset.
        var abandoned = false
        var task: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private let maxBatch: Int
    /// Called when the task takes records, so the poll thread can read more.
    private let drained: @Sendable () -> Void
    /// Signalled once when the task has ended.
    let finished = DispatchSemaphore(value: 0)

    init(topic: String, partition: Int32, maxBatch: Int, drained: @escaping @Sendable () -> Void) {
        self.topic = topic
        self.partition = partition
        self.maxBatch = maxBatch
        self.drained = drained
    }

    /// Starts the task. `storeOffset` is called with the next offset to consume after a
    /// batch's outcome is final.
    func start(processor: BatchProcessor, logger: Logger, storeOffset: @escaping @Sendable (Int64) -> Void) {
        let task = Task { [self] in
            defer { finished.signal() }
            while let batch = await next() {
                do {
                    try await processor.process(batch) { [self] retrying in
                        state.withLock { $0.retrying = retrying }
                    }
                } catch {
                    logger.notice(
                        "partition work abandoned; its records are not committed and will be redelivered",
                        metadata: [
                            "topic": "\(topic)", "partition": "\(partition)", "first_offset": "\(batch.first!.offset)",
                            "count": "\(batch.count)",
                        ])
                    return
                }
                // An abandoned worker's partition was revoked (or the consumer stopped): its
                // offsets are no longer its to store.
                if state.withLock({ $0.abandoned }) {
                    logger.notice(
                        "a batch finished after its partition was abandoned; its offset is not stored and it will be redelivered",
                        metadata: ["topic": "\(topic)", "partition": "\(partition)", "first_offset": "\(batch[0].offset)"])
                    return
                }
                storeOffset(batch[batch.count - 1].offset + 1)
            }
        }
        state.withLock { $0.task = task }
    }

    /// Hands records to the task. Returns the number buffered; records for a closed worker
    /// are dropped (they were never stored, so they will be delivered again).
    @discardableResult
    func deliver(_ messages: [InboundMessage]) -> Int {
        state.withLock { s in
            guard !s.closed else { return 0 }
            if s.buffer.isEmpty {
                s.buffer = messages
            } else {
                s.buffer.append(contentsOf: messages)
            }
            if let waiter = s.waiter {
                s.waiter = nil
                waiter.resume(returning: take(&s.buffer))
            }
            return s.buffer.count
        }
    }

    private func next() async -> [InboundMessage]? {
        defer { drained() }
        return await withCheckedContinuation { (c: CheckedContinuation<[InboundMessage]?, Never>) in
            state.withLock { s in
                if !s.buffer.isEmpty {
                    c.resume(returning: take(&s.buffer))
                } else if s.closed {
                    c.resume(returning: nil)
                } else {
                    s.waiter = c
                }
            }
        }
    }

    private func take(_ buffer: inout [InboundMessage]) -> [InboundMessage] {
        if buffer.count <= maxBatch {
            defer { buffer = [] }
            return buffer
        }
        let batch = Array(buffer[..<maxBatch])
        buffer.removeFirst(maxBatch)
        return batch
    }

    /// Stops taking records: the current batch may finish, buffered records are dropped.
    func close() {
        state.withLock { s in
            s.closed = true
            s.buffer = []
            if let waiter = s.waiter {
                s.waiter = nil
                waiter.resume(returning: nil)
            }
        }
    }

    /// Cancels the task: a batch waiting on a retry is abandoned and not committed.
    func cancel() {
        state.withLock { s in
            s.abandoned = true
            return s.task
        }?.cancel()
    }

    /// Records delivered and not yet taken by the task.
    var buffered: Int { state.withLock { $0.buffer.count } }

    /// Whether the batch in flight waits on a retry, as the processor last reported: the poll
    /// thread pauses the partition meanwhile (`PartitionPauses`), and a stopping consumer
    /// abandons such a batch at once.
    var isRetrying: Bool { state.withLock { $0.retrying } }
}
