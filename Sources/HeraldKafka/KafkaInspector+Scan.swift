import Dispatch
import HeraldCore

/// The offsets `[offsets.lowerBound, offsets.upperBound)` of one partition.
public struct PartitionRange: Sendable, Hashable {
    public let partition: KafkaPartition
    public let offsets: Range<Int64>

    public init(_ partition: KafkaPartition, _ offsets: Range<Int64>) {
        self.partition = partition
        self.offsets = offsets
    }
}

extension KafkaInspector {
    /// What a client that reads whole partition ranges needs (`herald dlq`): a record removed
    /// by retention between the watermarks and the read is skipped forward, not backward.
    public static let scanProperties = ["auto.offset.reset": "earliest"]

    /// Reads every record in `ranges` and passes them to `body` in batches (each partition's
    /// records in offset order), by assigning the partitions to this client at the ranges'
    /// starts: no group is joined and nothing is committed. Each range ends at a fixed offset,
    /// so the read ends however many records arrive meanwhile; a partition also ends at its
    /// current end (records removed by retention or compaction leave gaps).
    ///
    /// - Parameters:
    ///   - maxBatch: at most this many records per batch, and (beyond the first record)
    ///     `maxBatchBytes` of keys and values.
    ///   - body: runs on the calling task between reads; librdkafka keeps fetching meanwhile
    ///     (up to its prefetch limits).
    /// - Throws: `KafkaError` `.timedOut` when no record or partition end arrives for the
    ///   inspector's timeout while ranges remain (naming them and the last error seen); a
    ///   permanent error a fetch reports; whatever `body` throws.
    public func scan(
        _ ranges: [PartitionRange], maxBatch: Int = 500, maxBatchBytes: Int = 16 << 20,
        _ body: ([InboundMessage]) async throws -> Void
    ) async throws {
        var pending: [KafkaPartition: Range<Int64>] = [:]
        for range in ranges where !range.offsets.isEmpty { pending[range.partition] = range.offsets }
        if pending.isEmpty { return }
        let positions = pending.map { (partition: $0.key, offset: $0.value.lowerBound) }
        try await blocking { [self] (_) throws(KafkaError) in try client.assign(positions) }
        do {
            while !pending.isEmpty {
                let wanted = pending
                let (batch, finished) = try await blocking { [self] cancellation throws(KafkaError) in
                    try readBatch(wanted, maxBatch: max(1, maxBatch), maxBatchBytes: maxBatchBytes, cancellation: cancellation)
                }
                for partition in finished { pending[partition] = nil }
                if !batch.isEmpty { try await body(batch) }
            }
        } catch {
            _ = try? await blocking { [self] (_) throws(KafkaError) in client.unassignAll() }
            throw error
        }
        try await blocking { [self] (_) throws(KafkaError) in client.unassignAll() }
    }

    /// One batch of `scan`, on the inspector's queue: polls until the batch is full, every
    /// wanted partition finished, or (with records in hand) nothing more is ready. Finished
    /// partitions are paused, so librdkafka stops fetching them.
    private func readBatch(
        _ wanted: [KafkaPartition: Range<Int64>], maxBatch: Int, maxBatchBytes: Int, cancellation: Cancellation
    ) throws(KafkaError) -> ([InboundMessage], Set<KafkaPartition>) {
        var batch: [InboundMessage] = []
        var bytes = 0
        var finished: Set<KafkaPartition> = []
        var lastError: KafkaError?
        var idleDeadline = DispatchTime.now() + .milliseconds(Int(timeoutMs))
        func finish(_ partition: KafkaPartition) {
            if finished.insert(partition).inserted { client.pause([partition]) }
        }
        while batch.count < maxBatch, bytes < maxBatchBytes, finished.count < wanted.count, !cancellation.isCancelled {
            var progressed = false
            // rd_kafka_consumer_poll blocks up to 100 ms.
            let polled = try client.pollConsumer(timeoutMs: 100) { (m: RDKafkaMessage) throws(KafkaError) in
                if let error = m.error, error.code != .partitionEOF {
                    guard error.isTransient else { throw error }
                    lastError = error
                    return
                }
                guard let topic = m.topic else { return }
                let partition = KafkaPartition(topic: topic, partition: m.partition)
                guard let range = wanted[partition], !finished.contains(partition) else { return }
                progressed = true
                if m.error != nil {
                    // The end of the partition now: nothing at or after the range's end is wanted.
                    finish(partition)
                    return
                }
                if m.offset >= range.upperBound {
                    finish(partition)
                    return
                }
                guard m.offset >= range.lowerBound else { return }
                let record = m.inbound(topic: topic)
                bytes += (record.key?.count ?? 0) + (record.value?.count ?? 0)
                batch.append(record)
                if m.offset + 1 >= range.upperBound { finish(partition) }
            }
            if progressed {
                idleDeadline = DispatchTime.now() + .milliseconds(Int(timeoutMs))
            } else if !polled && !batch.isEmpty {
                break  // nothing more ready: hand over what there is
            } else if DispatchTime.now() >= idleDeadline {
                let left = wanted.keys.filter { !finished.contains($0) }.map(\.description).sorted().joined(separator: ", ")
                throw KafkaError.make(
                    .timedOut,
                    "no record from \(left) for \(timeoutMs) ms" + (lastError.map { " (last error: \($0))" } ?? ""))
            }
        }
        return (batch, finished)
    }
}
