import CRdKafka
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
            let list = RDKafkaPartitionList(partitions.map { ($0.topic, $0.partition, Int64(RD_KAFKA_OFFSET_INVALID)) })
            // rd_kafka_committed blocks on the group coordinator.
            var err = rd_kafka_committed(handle, list.pointer, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err, message: "committed offsets") }
            var committed: [String: [Int32: Int64]] = [:]
            for e in RDKafkaPartitionList.entries(list.pointer) { committed[e.topic, default: [:]][e.partition] = e.offset }
            var result: [PartitionLag] = []
            for p in partitions where !cancellation.isCancelled {
                var low: Int64 = 0
                var high: Int64 = 0
                // rd_kafka_query_watermark_offsets blocks on a broker round trip.
                err = rd_kafka_query_watermark_offsets(handle, p.topic, p.partition, &low, &high, timeoutMs)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError.rdKafka(err, message: "watermarks of \(p.topic)[\(p.partition)]")
                }
                let c = committed[p.topic]?[p.partition].flatMap { $0 >= 0 ? $0 : nil }
                result.append(
                    PartitionLag(
                        topic: p.topic, partition: p.partition, committed: c, low: low, high: high, oldestUnconsumedTimestamp: nil,
                        sampledAt: 0))
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
        let list = RDKafkaPartitionList(missing.map { ($0.topic, $0.partition, $0.offset) })
        var err = rd_kafka_assign(handle, list.pointer)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err, message: "assign for a timestamp read") }
        defer { rd_kafka_assign(handle, nil) }
        var remaining = Dictionary(uniqueKeysWithValues: missing.map { ("\($0.topic)\u{0}\($0.partition)", $0) })
        let deadline = DispatchTime.now() + .milliseconds(Int(timeoutMs))
        while !remaining.isEmpty, DispatchTime.now() < deadline, !cancellation.isCancelled {
            // rd_kafka_consumer_poll blocks up to 100 ms.
            guard let m = rd_kafka_consumer_poll(handle, 100) else { continue }
            defer { rd_kafka_message_destroy(m) }
            err = m.pointee.err
            guard let rkt = m.pointee.rkt else { continue }
            let name = "\(String(cString: rd_kafka_topic_name(rkt)))\u{0}\(m.pointee.partition)"
            guard let key = remaining[name] else { continue }
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                // Nothing at or after the offset any more (retention): no timestamp.
                remaining[name] = nil
                continue
            }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, m.pointee.offset >= key.offset else { continue }
            var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let ts = rd_kafka_message_timestamp(m, &type)
            if ts >= 0 { found[key] = ts }
            remaining[name] = nil
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
