import CRdKafka

/// A rebalance librdkafka asks the consumer to carry out. Valid only during the rebalance
/// callback that passes it (inside `rd_kafka_consumer_poll` or `rd_kafka_consumer_close`):
/// `RDKafkaClient.assign(_:)`, `unassign(_:)` and `resume(_:)` take it back to librdkafka.
struct RDKafkaRebalance {
    enum Kind {
        /// Partitions given to this member.
        case assign
        /// Partitions taken away (all of them under the eager protocol).
        case revoke
        /// The rebalance failed; the member must drop its assignment.
        case failed(KafkaError)
    }

    let kind: Kind
    let partitions: [KafkaPartition]
    /// librdkafka's list, with the positions it chose (`RD_KAFKA_OFFSET_INVALID`: the committed
    /// offset): handed back as is, never rebuilt.
    let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: kind = .assign
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: kind = .revoke
        default: kind = .failed(KafkaError.rdKafka(err))
        }
        self.partitions = RDKafkaPartitionList.entries(list).map(\.partition)
        self.list = list
    }
}
