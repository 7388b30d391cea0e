import Dispatch
import HeraldCore
import Logging
import Synchronization

/// The records of one assigned partition waiting to be processed, and the task that
/// processes them in order. The poll thread delivers; the task takes up to a batch at a time.
/// The worker counts the bytes of the records it holds, buffered and in flight (`heldBytes`,
/// also added to the process-wide `MemoryInUse`); the poll thread pauses the partition while
/// they reach its share of the `MemoryBudget`: the buffer is bounded in bytes, never dropped.
final class PartitionWorker: Sendable {
    let topic: String
    let partition: Int32

    private struct State {
        var buffer: [InboundMessage] = []
        var bufferedBytes = 0
        /// The bytes of the batch being processed, released when the worker takes the next one.
        var inFlightBytes = 0
        var waiter: CheckedContinuation<[InboundMessage]?, Never>?
        var closed = false
        var retrying = false
        /// Set by `cancel()`: the batch in flight may still complete, but stores no offset.
        var abandoned = false
        var task: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private let maxBatch: Int
    private let memory: MemoryInUse
    /// Called when the task takes records or finishes a batch, so the poll thread can read more
    /// (and resume the partition).
    private let drained: @Sendable () -> Void
    /// Signalled once when the task has ended.
    let finished = DispatchSemaphore(value: 0)

    init(topic: String, partition: Int32, maxBatch: Int, memory: MemoryInUse, drained: @escaping @Sendable () -> Void) {
        self.topic = topic
        self.partition = partition
        self.maxBatch = maxBatch
        self.memory = memory
        self.drained = drained
    }

    /// Starts the task. `storeOffset` is called with the next offset to consume after a
    /// batch's outcome is final.
    func start(processor: BatchProcessor, logger: Logger, storeOffset: @escaping @Sendable (Int64) -> Void) {
        let task = Task { [self] in
            defer {
                releaseAll()
                finished.signal()
            }
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

    /// Hands records to the task, counting their bytes. Returns the number buffered; records
    /// for a closed worker are dropped (they were never stored, so they will be delivered
    /// again).
    @discardableResult
    func deliver(_ messages: [InboundMessage]) -> Int {
        var bytes = 0
        for m in messages { bytes += m.memoryFootprint }
        return state.withLock { s in
            guard !s.closed else { return 0 }
            s.bufferedBytes += bytes
            memory.add(bytes)
            if s.buffer.isEmpty {
                s.buffer = messages
            } else {
                s.buffer.append(contentsOf: messages)
            }
            if let waiter = s.waiter {
                s.waiter = nil
                waiter.resume(returning: take(&s))
            }
            return s.buffer.count
        }
    }

    private func next() async -> [InboundMessage]? {
        // The previous batch is done: its records are no longer held, and a partition paused
        // for memory may be resumed at once, rather than at the poll thread's next timeout.
        let released = state.withLock { s -> Bool in
            defer { s.inFlightBytes = 0 }
            memory.release(s.inFlightBytes)
            return s.inFlightBytes > 0
        }
        if released { drained() }
        defer { drained() }
        return await withCheckedContinuation { (c: CheckedContinuation<[InboundMessage]?, Never>) in
            state.withLock { s in
                if !s.buffer.isEmpty {
                    c.resume(returning: take(&s))
                } else if s.closed {
                    c.resume(returning: nil)
                } else {
                    s.waiter = c
                }
            }
        }
    }

    /// The next batch: up to `maxBatch` records, whose bytes move from buffered to in flight.
    private func take(_ s: inout State) -> [InboundMessage] {
        if s.buffer.count <= maxBatch {
            s.inFlightBytes = s.bufferedBytes
            s.bufferedBytes = 0
            defer { s.buffer = [] }
            return s.buffer
        }
        let batch = Array(s.buffer[..<maxBatch])
        s.buffer.removeFirst(maxBatch)
        var bytes = 0
        for m in batch { bytes += m.memoryFootprint }
        s.inFlightBytes = bytes
        s.bufferedBytes -= bytes
        return batch
    }

    /// The task ended: nothing it held is held any more.
    private func releaseAll() {
        state.withLock { s in
            memory.release(s.bufferedBytes + s.inFlightBytes)
            s.bufferedBytes = 0
            s.inFlightBytes = 0
            s.buffer = []
        }
    }

    /// Stops taking records: the current batch may finish, buffered records are dropped.
    func close() {
        state.withLock { s in
            s.closed = true
            s.buffer = []
            memory.release(s.bufferedBytes)
            s.bufferedBytes = 0
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

    /// The bytes of the records held: buffered, and in the batch being processed.
    var heldBytes: Int { state.withLock { $0.bufferedBytes + $0.inFlightBytes } }

    /// Whether the batch in flight waits on a retry, as the processor last reported: the poll
    /// thread pauses the partition meanwhile (`PartitionPauses`), and a stopping consumer
    /// abandons such a batch at once.
    var isRetrying: Bool { state.withLock { $0.retrying } }
}
