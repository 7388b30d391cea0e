/// Pausing, under `PartitionPauses`' rule: a partition is paused exactly while its worker
/// waits on a retry. The poll thread asks after each turn and tells librdkafka what changed.
extension KafkaEventConsumer {
    func reconcilePauses() {
        let workers = loop.workers
        let changes = loop.pauses.reconcile(workers.keys) { workers[$0]?.isRetrying ?? false }
        guard !changes.isEmpty else { return }
        if !changes.pause.isEmpty {
            client.pause(changes.pause)
            logger.info("partitions paused while retrying", metadata: ["partitions": "\(changes.pause.map(\.description).sorted())"])
        }
        if !changes.resume.isEmpty {
            client.resume(changes.resume)
            logger.info("partitions resumed", metadata: ["partitions": "\(changes.resume.map(\.description).sorted())"])
        }
        observer.pausedPartitions(loop.pauses.count)
    }
}
