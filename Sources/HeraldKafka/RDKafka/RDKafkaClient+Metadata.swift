import CRdKafka

/// Questions to the cluster that need no group membership: metadata, watermarks and a
/// group's committed offsets. Each blocks on a broker round trip (up to `timeoutMs`), so
/// they are made on the inspector's own queue, never on Swift's cooperative pool.
extension RDKafkaClient {
    /// Asks the brokers for metadata (`rd_kafka_metadata`): throws when none answers in time.
    func checkReachable(timeoutMs: Int32) throws(KafkaError) {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 0, nil, &metadata, timeoutMs)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err) }
    }

    /// The number of partitions of `topic`, from the cluster's metadata.
    func partitionCount(_ topic: String, timeoutMs: Int32) throws(KafkaError) -> Int {
        guard let rkt = rd_kafka_topic_new(handle, topic, nil) else { throw KafkaError.make(.unknownTopic, "cannot open topic \(topic)") }
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 0, rkt, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError.rdKafka(err) }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { throw KafkaError.make(.unknownTopic, "no metadata for \(topic)") }
        let t = metadata.pointee.topics[0]
        if t.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.rdKafka(t.err, message: "topic \(topic)") }
        return Int(t.partition_cnt)
    }

    /// The low and high watermarks of one partition (`rd_kafka_query_watermark_offsets`).
    func watermarks(_ partition: KafkaPartition, timeoutMs: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(handle, partition.topic, partition.partition, &low, &high, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.rdKafka(err, message: "watermarks of \(partition)") }
        return (low, high)
    }

    /// The client's group's committed offset of each partition (`rd_kafka_committed`, one
    /// request to the group coordinator): `RDKafkaClient.noOffset` where none is committed.
    func committed(_ partitions: [KafkaPartition], timeoutMs: Int32) throws(KafkaError) -> [KafkaPartition: Int64] {
        let list = RDKafkaPartitionList(partitions)
        let err = rd_kafka_committed(handle, list.pointer, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let topics = Set(partitions.map(\.topic))
            throw KafkaError.rdKafka(err, message: "committed offsets" + (topics.count == 1 ? " of \(topics.first!)" : ""))
        }
        var result: [KafkaPartition: Int64] = [:]
        for e in list.entries { result[e.partition] = e.offset }
        return result
    }

    /// The offset librdkafka reports for a partition with no committed offset (-1001).
    static let noOffset = Int64(RD_KAFKA_OFFSET_INVALID)
}
