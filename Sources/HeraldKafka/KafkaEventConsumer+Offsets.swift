/// Offsets, under `OffsetCommitPolicy`: workers store a batch's next offset once its outcome
/// is final; the poll thread commits what is stored, every commit interval (asynchronously),
/// after a revocation's drain and at shutdown (synchronously).
extension KafkaEventConsumer {
    enum CommitReason: String {
        case interval, revocation, shutdown
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

    /// The periodic commit, once per commit interval: asynchronous, so the poll loop does not
    /// wait for the group coordinator (a failed one is retried by the next).
    func commitIfDue() {
        guard loop.commits.isDue(at: .now) else { return }
        if let error = client.commitStoredOffsets(async: true), error.code != .noOffset {
            logger.debug("offset commit not sent", metadata: ["reason": "\(CommitReason.interval)", "error": "\(error)"])
        }
    }

    /// Commits the stored offsets now, waiting for the group coordinator's answer.
    func commitStoredOffsets(_ reason: CommitReason) {
        // Blocks this (the poll) thread until the coordinator answers.
        let error = client.commitStoredOffsets(async: false)
        if error == nil || error?.code == .noOffset {
            // The final commit is worth a line at the default level; the others are not.
            logger.log(
                level: reason == .shutdown ? .info : .debug, error == nil ? "offsets committed" : "no new offsets to commit",
                metadata: ["reason": "\(reason)"])
        } else if let error {
            logger.warning("offset commit failed", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }
}
