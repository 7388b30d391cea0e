import Dispatch

/// The partition workers' lifecycle: one `PartitionWorker` per assigned partition, started on
/// assignment and stopped on revocation, on a failed rebalance and at shutdown.
extension KafkaEventConsumer {
    /// Starts the worker of a newly assigned partition and detaches the partition's queue.
    func startWorker(for partition: Partition) {
        let wakeup = self.wakeup
        let worker = PartitionWorker(
            topic: partition.topic, partition: partition.partition, maxBatch: settings.maxBatch, memory: memory
        ) {
            wakeup.signal()
        }
        worker.start(processor: processor, logger: logger) { [weak self] next in
            self?.storeOffset(partition, next)
        }
        loop.workers[partition] = worker
        if let queue = client.detachedQueue(for: partition) {
            queue.signalOnArrival(wakeup)
            loop.queues[partition] = queue
        }
    }

    /// Lets in-flight batches of `partitions` finish within `timeout`, then abandons the rest.
    /// An abandoned worker stores no offset, even if its batch still completes: its records
    /// are redelivered to whoever gets the partition.
    func stopWorkers(for partitions: [Partition], timeout: Duration) {
        for p in partitions {
            // Releasing the queue turns its wake-up off and destroys it.
            loop.queues[p] = nil
        }
        let workers = partitions.compactMap { p in loop.workers.removeValue(forKey: p) }
        for w in workers {
            w.close()
            // A batch waiting on a failing dependency is abandoned at once rather than after the
            // drain timeout: it is redelivered to whoever gets the partition.
            if w.isRetrying {
                logger.notice(
                    "partition waits on a dependency; abandoning its in-flight records (redelivered)",
                    metadata: ["topic": "\(w.topic)", "partition": "\(w.partition)"])
                w.cancel()
            }
        }
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.seconds * 1000))
        var stragglers: [PartitionWorker] = []
        for w in workers where w.finished.wait(timeout: deadline) == .timedOut {
            stragglers.append(w)
        }
        for w in stragglers {
            logger.warning(
                "partition did not finish in time; abandoning its in-flight records",
                metadata: ["topic": "\(w.topic)", "partition": "\(w.partition)", "retrying": "\(w.isRetrying)"])
            // From now on the worker stores no offset, even if its batch still completes.
            w.cancel()
        }
        // Cancelled work ends at its next suspension point; a dependency call in progress is
        // bounded by its own timeout. A worker still running after this wait can no longer
        // reach the client: it was cancelled, and the client's gate guards the handle itself.
        let hardDeadline = DispatchTime.now() + .milliseconds(Int(timeout.seconds * 1000))
        for w in stragglers where w.finished.wait(timeout: hardDeadline) == .timedOut {
            logger.error(
                "partition work did not stop after cancellation; its records are not committed",
                metadata: ["topic": "\(w.topic)", "partition": "\(w.partition)"])
        }
    }
}
