/// Pausing: a partition whose worker waits on a retry is paused, so nothing is fetched for it
/// meanwhile; it is resumed when the retry is over.
extension KafkaEventConsumer {
    func reconcilePauses() {
        var pause: [Partition] = []
        var resume: [Partition] = []
        for (partition, worker) in loop.workers {
            let want = worker.isRetrying
            let paused = loop.paused.contains(partition)
            if want && !paused {
                pause.append(partition)
            } else if !want && paused {
                resume.append(partition)
            }
        }
        if !pause.isEmpty {
            client.pause(pause)
            loop.paused.formUnion(pause)
            logger.info("partitions paused while retrying", metadata: ["partitions": "\(pause.map(\.description).sorted())"])
        }
        if !resume.isEmpty {
            client.resume(resume)
            loop.paused.subtract(resume)
            logger.info("partitions resumed", metadata: ["partitions": "\(resume.map(\.description).sorted())"])
        }
        if !pause.isEmpty || !resume.isEmpty { observer.pausedPartitions(loop.paused.count) }
    }
}
