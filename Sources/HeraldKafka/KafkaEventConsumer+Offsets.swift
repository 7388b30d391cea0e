/// Offsets: workers store a batch's next offset once its outcome is final; librdkafka commits
/// what is stored every commit interval (`enable.auto.commit`, see `KafkaConsumerSettings`),
/// and the poll thread commits synchronously after a revocation's drain and at shutdown.
extension KafkaEventConsumer {
    enum CommitReason: String {
        case revocation, shutdown
    }

    /// Stores `next` as the partition's next offset to consume. Called by the partition's
    /// worker on Swift's pool: storing only records the offset in librdkafka's memory.
    func storeOffset(_ partition: Partition, _ next: Int64) {
        guard let error = client.storeOffset(partition, next: next) else { return }
        // After shutdown the client is gone: the batch is redelivered to the next consumer.
        guard error.code != .clientClosed else { return }
        logger.debug(
            "offset not stored (partition no longer assigned); its records will be redelivered",
            metadata: ["partition": "\(partition)", "offset": "\(next)", "error": "\(error)"])
    }

    /// Commits the stored offsets now, waiting for the group coordinator's answer.
    func commitStoredOffsets(_ reason: CommitReason) {
        // Blocks this (the poll) thread until the coordinator answers.
        let error = client.commitStoredOffsets(async: false)
        if error == nil || error?.code == .noOffset {
            // The final commit is worth a line at the default level; the periodic ones are not.
            logger.log(
                level: reason == .shutdown ? .info : .debug, error == nil ? "offsets committed" : "no new offsets to commit",
                metadata: ["reason": "\(reason)"])
        } else if let error {
            logger.warning("offset commit failed", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }
}
