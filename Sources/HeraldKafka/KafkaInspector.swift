import CRdKafka
import Dispatch
import HeraldCore
import Logging
import Synchronization

/// Reads offsets and records without joining a consumer group: partition counts, low and
/// high watermarks, a group's committed offsets, and the records of a topic. Safe to use
/// beside live consumers. Every blocking librdkafka call runs on a private serial queue.
public final class KafkaInspector: Sendable {
    nonisolated(unsafe) let handle: OpaquePointer
    private let context: RDKafkaClientContext
    private let queue = DispatchQueue(label: "herald.kafka.inspector")
    let timeoutMs: Int32
    /// The timestamp of the record at an offset never changes: read once per (partition, offset).
    let timestampCache = Mutex<[TimestampKey: Int64]>([:])
    /// Set (on `queue`) when `close()` destroyed the handle.
    private let closed = Atomic<Bool>(false)

    /// - Parameters:
    ///   - groupID: the group whose committed offsets `committed` reads.
    ///   - secretProperties: properties whose values must never appear in an error.
    public init(
        bootstrapServers: String, groupID: String = "herald-inspector", properties: [String: String] = [:],
        secretProperties: Set<String> = [], timeout: Duration = .seconds(10), logger: Logger
    ) throws(KafkaError) {
        let context = RDKafkaClientContext(logger: logger)
        self.context = context
        self.timeoutMs = Int32(timeout.seconds * 1000)
        var props: [(String, String)] = properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        props += [
            ("bootstrap.servers", bootstrapServers), ("group.id", groupID), ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
        ]
        let conf = try RDKafkaConfiguration.make(props, secretKeys: secretProperties, context: context)
        self.handle = try RDKafkaConfiguration.handle(RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(handle)
    }

    deinit {
        if !closed.load(ordering: .acquiring) { rd_kafka_destroy(handle) }
    }

    /// Destroys the client now rather than at deinit, so that it stops talking to (and logging
    /// about) brokers that are going away; every later call throws.
    public func close() async {
        _ = try? await blocking { [self] (_) throws(KafkaError) in
            closed.store(true, ordering: .releasing)
            // rd_kafka_destroy blocks until the client's threads have ended.
            rd_kafka_destroy(handle)
        }
    }

    /// Runs `body` on the inspector's queue. When the waiting task is cancelled, the body's
    /// polling loops see `cancellation` and stop within one poll (100 ms), and the call throws
    /// `CancellationError`: a lag sample in progress no longer holds up a shutdown for up to
    /// the timeout. (A single librdkafka request already sent is still awaited: one round
    /// trip, or the timeout when the broker does not answer.)
    func blocking<T: Sendable>(_ body: @escaping @Sendable (Cancellation) throws(KafkaError) -> T) async throws -> T {
        let cancellation = Cancellation()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { c in
                queue.async { [self] in
                    if closed.load(ordering: .acquiring) {
                        c.resume(throwing: KafkaError.clientClosed("the inspector is closed"))
                        return
                    }
                    if cancellation.isCancelled {
                        c.resume(throwing: CancellationError())
                        return
                    }
                    do throws(KafkaError) {
                        let value = try body(cancellation)
                        if cancellation.isCancelled { c.resume(throwing: CancellationError()) } else { c.resume(returning: value) }
                    } catch {
                        c.resume(throwing: error)
                    }
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Asks the brokers for metadata, waiting at most `timeout`: throws when none answers
    /// (wrong address, broker down), a quick check before work that would wait much longer.
    public func checkReachable(timeout: Duration) async throws {
        let milliseconds = Int32(min(timeout.seconds * 1000, Double(Int32.max)))
        try await blocking { [self] (_) throws(KafkaError) in
            var metadata: UnsafePointer<rd_kafka_metadata>?
            // rd_kafka_metadata blocks until a broker answers or the timeout passes.
            let err = rd_kafka_metadata(handle, 0, nil, &metadata, milliseconds)
            if let metadata { rd_kafka_metadata_destroy(metadata) }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err) }
        }
    }

    /// The number of partitions of `topic`.
    public func partitionCount(_ topic: String) async throws -> Int {
        try await blocking { [self] (_) throws(KafkaError) in try metadataPartitionCount(topic) }
    }

    private func metadataPartitionCount(_ topic: String) throws(KafkaError) -> Int {
        guard let rkt = rd_kafka_topic_new(handle, topic, nil) else { throw KafkaError.make(.unknownTopic, "cannot open topic \(topic)") }
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        // rd_kafka_metadata blocks until the broker answers or the timeout passes.
        let err = rd_kafka_metadata(handle, 0, rkt, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError.rdKafka(err) }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { throw KafkaError.make(.unknownTopic, "no metadata for \(topic)") }
        let t = metadata.pointee.topics[0]
        if t.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.rdKafka(t.err, message: "topic \(topic)") }
        return Int(t.partition_cnt)
    }

    /// Low and high watermarks of every partition of `topic`, by partition.
    public func watermarks(_ topic: String) async throws -> [Int32: (low: Int64, high: Int64)] {
        try await blocking { [self] (_) throws(KafkaError) in
            let count = try metadataPartitionCount(topic)
            var result: [Int32: (low: Int64, high: Int64)] = [:]
            for p in 0..<Int32(count) {
                var low: Int64 = 0
                var high: Int64 = 0
                // rd_kafka_query_watermark_offsets blocks on a broker round trip.
                let err = rd_kafka_query_watermark_offsets(handle, topic, p, &low, &high, timeoutMs)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err, message: "watermarks of \(topic)[\(p)]") }
                result[p] = (low, high)
            }
            return result
        }
    }

    /// The group's committed offset per partition of `topic` (-1001 when none is committed).
    public func committed(_ topic: String) async throws -> [Int32: Int64] {
        try await blocking { [self] (_) throws(KafkaError) in
            let count = try metadataPartitionCount(topic)
            let list = RDKafkaPartitionList((0..<Int32(count)).map { (topic, $0, Int64(RD_KAFKA_OFFSET_INVALID)) })
            // rd_kafka_committed blocks on the group coordinator.
            let err = rd_kafka_committed(handle, list.pointer, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err, message: "committed offsets of \(topic)") }
            var result: [Int32: Int64] = [:]
            for e in RDKafkaPartitionList.entries(list.pointer) { result[e.partition] = e.offset }
            return result
        }
    }

    /// Every record currently in `topic`, partition by partition in offset order.
    public func readAll(_ topic: String) async throws -> [InboundMessage] {
        let marks = try await watermarks(topic)
        return try await blocking { [self] cancellation throws(KafkaError) in
            let wanted = marks.filter { $0.value.high > $0.value.low }
            if wanted.isEmpty { return [] }
            let list = RDKafkaPartitionList(wanted.map { (topic, $0.key, $0.value.low) })
            var err = rd_kafka_assign(handle, list.pointer)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err) }
            defer { rd_kafka_assign(handle, nil) }
            var remaining = Set(wanted.keys)
            var result: [InboundMessage] = []
            let deadline = DispatchTime.now() + .milliseconds(Int(timeoutMs))
            while !remaining.isEmpty, !cancellation.isCancelled {
                guard DispatchTime.now() < deadline else { throw KafkaError.make(.timedOut, "timed out reading \(topic)") }
                // rd_kafka_consumer_poll blocks up to 100 ms.
                guard let m = rd_kafka_consumer_poll(handle, 100) else { continue }
                defer { rd_kafka_message_destroy(m) }
                err = m.pointee.err
                let partition = m.pointee.partition
                if err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    remaining.remove(partition)
                    continue
                }
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err) }
                result.append(RDKafkaMessage.inbound(m, topic: topic))
                if let high = wanted[partition]?.high, m.pointee.offset + 1 >= high { remaining.remove(partition) }
            }
            return result
        }
    }
}

/// Tells a blocking call's loops that the task waiting for it was cancelled.
final class Cancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    var isCancelled: Bool { flag.load(ordering: .acquiring) }

    func cancel() { flag.store(true, ordering: .releasing) }
}
