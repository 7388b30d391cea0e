import CRdKafka
import Dispatch

/// A librdkafka queue a consumer reads: the consumer queue (rebalances, errors, and records of
/// partitions not detached yet) or one partition's own queue. Owned and used by the
/// consumer's poll thread only. Destroyed, its wake-up turned off first, when the last
/// reference goes, which must be before the client is destroyed.
final class RDKafkaQueue {
    private let queue: OpaquePointer
    /// Retained while librdkafka may signal it.
    private var wakeup: DispatchSemaphore?

    private init(_ queue: OpaquePointer) {
        self.queue = queue
    }

    deinit {
        if wakeup != nil { rd_kafka_queue_cb_event_enable(queue, nil, nil) }
        rd_kafka_queue_destroy(queue)
    }

    /// The consumer queue of `client`.
    static func consumer(of client: RDKafkaClient) -> RDKafkaQueue {
        RDKafkaQueue(rd_kafka_queue_get_consumer(client.handle)!)
    }

    /// `partition`'s own queue, detached from the consumer queue
    /// (`rd_kafka_queue_forward(q, NULL)`): its records are read only from it, so librdkafka's
    /// prefetch limits apply to it alone.
    static func detachedPartition(_ partition: KafkaPartition, of client: RDKafkaClient) -> RDKafkaQueue? {
        guard let queue = rd_kafka_queue_get_partition(client.handle, partition.topic, partition.partition) else { return nil }
        rd_kafka_queue_forward(queue, nil)
        return RDKafkaQueue(queue)
    }

    /// The number of ops queued (records, and outdated records not yet freed).
    var length: Int { rd_kafka_queue_length(queue) }

    /// Asks librdkafka to signal `semaphore` whenever the queue goes from empty to non-empty.
    func signalOnArrival(_ semaphore: DispatchSemaphore) {
        wakeup = semaphore
        rd_kafka_queue_cb_event_enable(
            queue,
            { _, opaque in
                guard let opaque else { return }
                Unmanaged<DispatchSemaphore>.fromOpaque(opaque).takeUnretainedValue().signal()
            }, Unmanaged.passUnretained(semaphore).toOpaque())
    }

    /// Takes up to `limit` messages (at most the buffer's capacity) without blocking
    /// (`rd_kafka_consume_batch_queue` with timeout 0) and passes each to `body`, in order.
    /// - Returns: how many messages were taken.
    func consume(upTo limit: Int, buffer: inout RDKafkaMessageBuffer, _ body: (RDKafkaMessage) -> Void) -> Int {
        let count = buffer.pointers.withUnsafeMutableBufferPointer { pointers in
            rd_kafka_consume_batch_queue(queue, 0, pointers.baseAddress, min(limit, pointers.count))
        }
        guard count > 0 else { return 0 }
        for i in 0..<count {
            let m = buffer.pointers[i]!
            body(RDKafkaMessage(m))
            rd_kafka_message_destroy(m)
        }
        return count
    }
}

/// Room for the messages one `RDKafkaQueue.consume` call takes, reused from call to call.
struct RDKafkaMessageBuffer {
    fileprivate var pointers: [UnsafeMutablePointer<rd_kafka_message_t>?]

    init(capacity: Int) {
        pointers = Array(repeating: nil, count: capacity)
    }
}
