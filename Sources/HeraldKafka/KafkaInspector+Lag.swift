import Dispatch
import Foundation
import HeraldCore

extension KafkaInspector {
    struct TimestampKey: Hashable {
        let topic: String
        let partition: Int32
        let offset: Int64
    }

    /// The lag of the inspector's group on `partitions`: committed offsets (one request to the
    /// group coordinator), watermarks (one request per partition), and, for each lagging
    /// partition, the timestamp of the record at the committed offset, read by assigning the
    /// partition to this client at that offset (no group join, no commit). Timestamps are
    /// cached by offset, so a partition stuck on one offset costs one read in all.
    public func lag(_ partitions: [(topic: String, partition: Int32)]) async throws -> [PartitionLag] {
        if partitions.isEmpty { return [] }
        return try await blocking { [self] cancellation throws(KafkaError) in
            let wanted = partitions.map { KafkaPartition(topic: $0.topic, partition: $0.partition) }
            let committed = try client.committed(wanted, timeoutMs: timeoutMs)
            var result: [PartitionLag] = []
            for p in wanted where !cancellation.isCancelled {
                let marks = try client.watermarks(p, timeoutMs: timeoutMs)
                let c = committed[p].flatMap { $0 >= 0 ? $0 : nil }
                result.append(
                    PartitionLag(
                        topic: p.topic, partition: p.partition, committed: c, low: marks.low, high: marks.high,
                        oldestUnconsumedTimestamp: nil, sampledAt: 0))
            }
            let lagging = result.indices.filter { result[$0].lagMessages > 0 }
            let keys = lagging.map {
                TimestampKey(topic: result[$0].topic, partition: result[$0].partition, offset: result[$0].resumeOffset)
            }
            let timestamps = try readTimestamps(keys, cancellation: cancellation)
            for (i, key) in zip(lagging, keys) { result[i].oldestUnconsumedTimestamp = timestamps[key] }
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
            for i in result.indices { result[i].sampledAt = now }
            return result
        }
    }

    /// The timestamp of the first record at or after each position; cached. Runs on the
    /// inspector's queue; stops early (with what it found) when `cancellation` is set.
    private func readTimestamps(_ keys: [TimestampKey], cancellation: Cancellation) throws(KafkaError) -> [TimestampKey: Int64] {
        var found: [TimestampKey: Int64] = [:]
        timestampCache.withLock { cache in
            for k in keys { if let ts = cache[k] { found[k] = ts } }
        }
        let missing = keys.filter { found[$0] == nil }
        if missing.isEmpty { return found }
        try client.assign(missing.map { (KafkaPartition(topic: $0.topic, partition: $0.partition), $0.offset) })
        defer { client.unassignAll() }
        var remaining = Dictionary(uniqueKeysWithValues: missing.map { (KafkaPartition(topic: $0.topic, partition: $0.partition), $0) })
        let deadline = DispatchTime.now() + .milliseconds(Int(timeoutMs))
        while !remaining.isEmpty, DispatchTime.now() < deadline, !cancellation.isCancelled {
            // rd_kafka_consumer_poll blocks up to 100 ms.
            client.pollConsumer(timeoutMs: 100) { m in
                guard let topic = m.topic else { return }
                let partition = KafkaPartition(topic: topic, partition: m.partition)
                guard let key = remaining[partition] else { return }
                if let error = m.error {
                    // Nothing at or after the offset any more (retention): no timestamp.
                    if error.code == .partitionEOF { remaining[partition] = nil }
                    return
                }
                guard m.offset >= key.offset else { return }
                if let ts = m.timestamp { found[key] = ts }
                remaining[partition] = nil
            }
        }
        let read = found
        timestampCache.withLock { cache in
            // Only the positions asked for now are worth keeping: older offsets are behind the group.
            cache = cache.filter { k, _ in keys.contains(k) }
            for k in keys { if let ts = read[k] { cache[k] = ts } }
        }
        return found
    }
}
