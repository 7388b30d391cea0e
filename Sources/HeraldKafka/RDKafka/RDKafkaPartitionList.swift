import CRdKafka

/// A `rd_kafka_topic_partition_list_t` built from Swift values, destroyed with the value.
struct RDKafkaPartitionList: ~Copyable {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ entries: [(partition: KafkaPartition, offset: Int64)]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(1, entries.count)))
        for e in entries {
            let tp = rd_kafka_topic_partition_list_add(pointer, e.partition.topic, e.partition.partition)
            tp?.pointee.offset = e.offset
        }
    }

    /// A list of partitions without offsets (for pause, resume).
    init(_ partitions: [KafkaPartition]) {
        self.init(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) })
    }

    deinit {
        rd_kafka_topic_partition_list_destroy(pointer)
    }

    /// The list's entries: each partition, its offset and its error (nil for none).
    static func entries(
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) -> [(partition: KafkaPartition, offset: Int64, error: rd_kafka_resp_err_t?)] {
        let count = Int(list.pointee.cnt)
        var result: [(partition: KafkaPartition, offset: Int64, error: rd_kafka_resp_err_t?)] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            let e = list.pointee.elems[i]
            result.append(
                (
                    KafkaPartition(topic: String(cString: e.topic), partition: e.partition), e.offset,
                    e.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : e.err
                ))
        }
        return result
    }

    var entries: [(partition: KafkaPartition, offset: Int64, error: rd_kafka_resp_err_t?)] { Self.entries(pointer) }
}
