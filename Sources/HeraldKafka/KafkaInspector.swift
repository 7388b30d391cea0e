import Dispatch
import HeraldCore
import Logging
import Synchronization

/// Reads offsets and records without joining a consumer group: partition counts, low and
/// high watermarks, a group's committed offsets, and the records of a topic. Safe to use
/// beside live consumers. Every blocking librdkafka call runs on a private serial queue.
public final class KafkaInspector: Sendable {
    /// Used only on `queue`, which also destroys it.
    let client: RDKafkaClient
    private let queue = DispatchQueue(label: "herald.kafka.inspector")
    let timeoutMs: Int32
    /// The timestamp of the record at an offset never changes: read once per (partition, offset).
    let timestampCache = Mutex<[TimestampKey: Int64]>([:])

    /// - Parameters:
    ///   - groupID: the group whose committed offsets `committed` reads.
    ///   - secretProperties: properties whose values must never appear in an error.
    public init(
        bootstrapServers: String, groupID: String = "herald-inspector", properties: [String: String] = [:],
        secretProperties: Set<String> = [], timeout: Duration = .seconds(10), logger: Logger
    ) throws(KafkaError) {
        self.timeoutMs = Int32(clamping: timeout.wholeMilliseconds)
        var props: [(String, String)] = properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        props += [
            ("bootstrap.servers", bootstrapServers), ("group.id", groupID), ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
        ]
        self.client = try RDKafkaClient(
            .consumer, properties: props, secretKeys: secretProperties, context: RDKafkaClientContext(logger: logger))
    }

    /// Destroys the client now rather than at deinit, so that it stops talking to (and logging
    /// about) brokers that are going away; every later call throws.
    public func close() async {
        _ = try? await blocking { [self] (_) throws(KafkaError) in
            // rd_kafka_destroy blocks until the client's threads have ended.
            client.destroy()
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
                    if client.isDestroyed {
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
        try await blocking { [self] (_) throws(KafkaError) in try client.checkReachable(timeoutMs: milliseconds) }
    }

    /// The number of partitions of `topic`.
    public func partitionCount(_ topic: String) async throws -> Int {
        try await blocking { [self] (_) throws(KafkaError) in try client.partitionCount(topic, timeoutMs: timeoutMs) }
    }

    /// Low and high watermarks of every partition of `topic`, by partition.
    public func watermarks(_ topic: String) async throws -> [Int32: (low: Int64, high: Int64)] {
        try await blocking { [self] (_) throws(KafkaError) in
            let count = try client.partitionCount(topic, timeoutMs: timeoutMs)
            var result: [Int32: (low: Int64, high: Int64)] = [:]
            for p in 0..<Int32(count) {
                result[p] = try client.watermarks(KafkaPartition(topic: topic, partition: p), timeoutMs: timeoutMs)
            }
            return result
        }
    }

    /// The group's committed offset per partition of `topic` (-1001 when none is committed).
    public func committed(_ topic: String) async throws -> [Int32: Int64] {
        try await blocking { [self] (_) throws(KafkaError) in
            let count = try client.partitionCount(topic, timeoutMs: timeoutMs)
            let partitions = (0..<Int32(count)).map { KafkaPartition(topic: topic, partition: $0) }
            var result: [Int32: Int64] = [:]
            for (p, offset) in try client.committed(partitions, timeoutMs: timeoutMs) { result[p.partition] = offset }
            return result
        }
    }

    /// Every record currently in `topic`, partition by partition in offset order.
    public func readAll(_ topic: String) async throws -> [InboundMessage] {
        let marks = try await watermarks(topic)
        return try await blocking { [self] cancellation throws(KafkaError) in
            let wanted = marks.filter { $0.value.high > $0.value.low }
            if wanted.isEmpty { return [] }
            try client.assign(wanted.map { (KafkaPartition(topic: topic, partition: $0.key), $0.value.low) })
            defer { client.unassignAll() }
            var remaining = Set(wanted.keys)
            var result: [InboundMessage] = []
            let deadline = DispatchTime.now() + .milliseconds(Int(timeoutMs))
            while !remaining.isEmpty, !cancellation.isCancelled {
                guard DispatchTime.now() < deadline else { throw KafkaError.make(.timedOut, "timed out reading \(topic)") }
                // rd_kafka_consumer_poll blocks up to 100 ms.
                try client.pollConsumer(timeoutMs: 100) { (m: RDKafkaMessage) throws(KafkaError) in
                    if let error = m.error {
                        guard error.code == .partitionEOF else { throw error }
                        remaining.remove(m.partition)
                        return
                    }
                    result.append(m.inbound(topic: topic))
                    if let high = wanted[m.partition]?.high, m.offset + 1 >= high { remaining.remove(m.partition) }
                }
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
