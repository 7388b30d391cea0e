import Dispatch
import HeraldCore

/// Pausing, under `PartitionPauses`' rule: a partition is paused while its worker waits on a
/// retry, or while its records fill its share of the memory budget. The poll thread asks after
/// each turn and tells librdkafka what changed.
extension KafkaEventConsumer {
    func reconcilePauses() {
        defer { reportMemory() }
        let workers = loop.workers
        let share = settings.memoryBudget.share(assigned: workers.count)
        let records = settings.memoryBudget.records
        let used = memory.current
        let retryingBefore = loop.pauses.retrying
        let changes = loop.pauses.reconcile(workers.keys) {
            workers[$0]?.isRetrying ?? false
        } memory: { partition in
            PartitionPauses.Memory.of(
                held: workers[partition]?.heldBytes ?? 0, share: share, used: used, records: records)
        }
        guard !changes.isEmpty else { return }
        memoryPauses.add(changes.pause.count { !loop.pauses.retrying.contains($0) }, ordering: .relaxed)
        if !changes.pause.isEmpty { client.pause(changes.pause) }
        if !changes.resume.isEmpty { client.resume(changes.resume) }
        // Retries are logged; memory pauses come and go with the load, many times a second.
        let startedRetrying = loop.pauses.retrying.subtracting(retryingBefore)
        let stoppedRetrying = retryingBefore.subtracting(loop.pauses.retrying)
        if !startedRetrying.isEmpty {
            logger.info("partitions paused while retrying", metadata: ["partitions": "\(startedRetrying.map(\.description).sorted())"])
        }
        if !stoppedRetrying.isEmpty {
            logger.info("partitions resumed", metadata: ["partitions": "\(stoppedRetrying.map(\.description).sorted())"])
        }
        observer.pausedPartitions(loop.pauses.count)
    }

    /// Tells the observer where the memory budget stands, at most every 100 ms.
    private func reportMemory() {
        let now = DispatchTime.now().uptimeNanoseconds
        guard now &- loop.memoryReportedAt >= 100_000_000 else { return }
        loop.memoryReportedAt = now
        observer.memorySampled(
            MemorySample(
                recordBytes: memory.current, recordLimit: settings.memoryBudget.records,
                pausedPartitions: loop.pauses.memoryOnlyCount, pauses: memoryPauses.load(ordering: .relaxed)))
    }
}
