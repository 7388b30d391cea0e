import CRdKafka

/// A consumer's calls. All are made by the thread that owns the client, except
/// `storeOffset`, which workers make; several block, as noted, and are never made on Swift's
/// cooperative pool.
extension RDKafkaClient {
    /// Whether the group uses the cooperative rebalance protocol (incremental assignments)
    /// rather than the eager one (everything revoked, then everything assigned).
    var isCooperative: Bool {
        guard let name = rd_kafka_rebalance_protocol(handle) else { return false }
        return String(cString: name) == "COOPERATIVE"
    }

    func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = RDKafkaPartitionList(topics.map { (KafkaPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA), 0) })
        let err = rd_kafka_subscribe(handle, list.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.rdKafka(err, message: "cannot subscribe to \(topics.joined(separator: ", "))")
        }
    }

    /// Polls the consumer queue once (`rd_kafka_consumer_poll`, which blocks up to
    /// `timeoutMs` and runs the rebalance callback) and passes the message it returned, if
    /// any, to `body`.
    /// - Returns: whether a message was polled.
    @discardableResult
    func pollConsumer<E: Error>(timeoutMs: Int32, _ body: (RDKafkaMessage) throws(E) -> Void) throws(E) -> Bool {
        guard let m = rd_kafka_consumer_poll(handle, timeoutMs) else { return false }
        defer { rd_kafka_message_destroy(m) }
        try body(RDKafkaMessage(m))
        return true
    }

    /// Takes the partitions a rebalance assigns (incrementally under the cooperative protocol).
    func assign(_ rebalance: RDKafkaRebalance) -> KafkaError? {
        if isCooperative {
            return rd_kafka_incremental_assign(handle, rebalance.list).map { KafkaError.rdKafka(consuming: $0) }
        }
        let err = rd_kafka_assign(handle, rebalance.list)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.rdKafka(err)
    }

    /// Gives up the partitions a rebalance revokes (all of them under the eager protocol).
    func unassign(_ rebalance: RDKafkaRebalance) -> KafkaError? {
        if isCooperative {
            return rd_kafka_incremental_unassign(handle, rebalance.list).map { KafkaError.rdKafka(consuming: $0) }
        }
        unassignAll()
        return nil
    }

    /// Drops the whole assignment.
    func unassignAll() {
        rd_kafka_assign(handle, nil)
    }

    /// Assigns `positions` to this client outside any group (the inspector): records are read
    /// from the given offsets. Replaces any earlier assignment.
    func assign(_ positions: [(partition: KafkaPartition, offset: Int64)]) throws(KafkaError) {
        let list = RDKafkaPartitionList(positions)
        let err = rd_kafka_assign(handle, list.pointer)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.rdKafka(err, message: "cannot assign \(positions.count) partitions")
        }
    }

    /// Resumes every partition of `rebalance` (one paused in an earlier assignment may still be).
    func resume(_ rebalance: RDKafkaRebalance) {
        rd_kafka_resume_partitions(handle, rebalance.list)
    }

    /// Stops fetching `partitions` until resumed.
    func pause(_ partitions: [KafkaPartition]) {
        let list = RDKafkaPartitionList(partitions)
        rd_kafka_pause_partitions(handle, list.pointer)
    }

    func resume(_ partitions: [KafkaPartition]) {
        let list = RDKafkaPartitionList(partitions)
        rd_kafka_resume_partitions(handle, list.pointer)
    }

    /// The consumer queue (see `RDKafkaQueue`).
    func consumerQueue() -> RDKafkaQueue {
        RDKafkaQueue.consumer(of: self)
    }

    /// `partition`'s own queue, detached from the consumer queue (see `RDKafkaQueue`).
    func detachedQueue(for partition: KafkaPartition) -> RDKafkaQueue? {
        RDKafkaQueue.detachedPartition(partition, of: self)
    }

    /// Records `next` as the partition's next offset to commit (`rd_kafka_offsets_store`: in
    /// memory only, non-blocking, safe from any thread).
    /// - Returns: nil when stored; `.clientClosed` once the client is destroyed; librdkafka's
    ///   error otherwise (the partition is no longer assigned).
    func storeOffset(_ partition: KafkaPartition, next: Int64) -> KafkaError? {
        let outcome = withOpenHandle { handle -> KafkaError? in
            let list = RDKafkaPartitionList([(partition, next)])
            let err = rd_kafka_offsets_store(handle, list.pointer)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { return KafkaError.rdKafka(err) }
            return list.entries.first?.error.map { KafkaError.rdKafka($0) }
        }
        return outcome ?? KafkaError.clientClosed("the consumer is closed")
    }

    /// Commits the stored offsets of the assigned partitions (`rd_kafka_commit` with no list).
    /// Synchronous (`async: false`) blocks until the group coordinator answers; asynchronous
    /// returns at once and the result is not reported.
    /// - Returns: nil when committed (or sent); `.noOffset` when nothing new was stored.
    func commitStoredOffsets(async: Bool) -> KafkaError? {
        let err = rd_kafka_commit(handle, nil, async ? 1 : 0)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.rdKafka(err)
    }

    /// Leaves the group (`rd_kafka_consumer_close` blocks: it revokes the assignment, which
    /// runs the rebalance callback, and waits for the coordinator).
    func closeConsumer() -> KafkaError? {
        let err = rd_kafka_consumer_close(handle)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.rdKafka(err)
    }
}
