import Dispatch
import HeraldCore

/// The poll loop: the consumer queue, then each partition's own queue into its worker. Each
/// assigned partition's librdkafka queue is detached from the consumer queue and read
/// whenever it has records, so librdkafka's queues stay short (a queued record costs librdkafka
/// three to four times its bytes) and its prefetch limits apply per partition. What bounds
/// memory is the `MemoryBudget`: a partition whose records fill its share is paused
/// (`PartitionPauses`), which stops its fetching, until its worker has drained it to half.
/// (With one shared queue a single busy partition, or a burst, made every partition
/// unfetchable until librdkafka's next wake-up, which cost two thirds of the throughput.)
extension KafkaEventConsumer {
    /// Turns until shutdown is requested, or returns the consumer's fatal error.
    func pollUntilShutdown() -> KafkaError? {
        let readBatch = 1024
        var buffer = RDKafkaMessageBuffer(capacity: readBatch)
        var records: [InboundMessage] = []
        records.reserveCapacity(readBatch)
        let consumerQueue = client.consumerQueue()
        consumerQueue.signalOnArrival(wakeup)
        // The consumer queue is only signalled, never read through this object: keep it (and
        // its wake-up) until the loop ends.
        return withExtendedLifetime(consumerQueue) { () -> KafkaError? in
            while !shutdownRequested.load(ordering: .acquiring) {
                lastLoop.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
                // Rebalances, errors and (before partition queues exist) records arrive on the
                // consumer queue; polling it runs the rebalance callback (`rebalance(_:)`).
                while client.pollConsumer(timeoutMs: 0, receiveStray) {}
                var progressed = false
                for (partition, queue) in loop.queues {
                    guard let worker = loop.workers[partition] else { continue }
                    // Everything librdkafka has for the partition, at once, whatever the budget
                    // says: a record it fetched costs it three to four times its bytes, twice
                    // what it costs here. The budget is enforced by pausing the partition after
                    // this turn (`reconcilePauses`), which stops its fetching; so a partition
                    // goes over its share by at most what one fetch brought, and one that holds
                    // nothing still takes its next record, whatever its size. A paused
                    // partition's queue is read too: pausing makes what librdkafka prefetched
                    // outdated, and reading frees it (what is not outdated is delivered: it is
                    // past the position librdkafka resumes from).
                    if loop.pauses.isPaused(partition) && queue.length == 0 { continue }
                    let count = queue.consume(upTo: readBatch, buffer: &buffer) { message in
                        if let error = message.error {
                            report(error, topic: partition.topic, partition: partition.partition)
                        } else {
                            records.append(message.inbound(topic: partition.topic))
                        }
                    }
                    guard count > 0 else { continue }
                    progressed = true
                    if !records.isEmpty { worker.deliver(records) }
                    records.removeAll(keepingCapacity: true)
                }
                reconcilePauses()
                commitIfDue()
                if let fatal = client.fatalError() {
                    logger.critical("consumer hit a fatal error", metadata: ["error": "\(fatal)"])
                    return fatal
                }
                if !progressed {
                    // Blocks this dedicated thread until a queue has records, a worker drained,
                    // or the timeout passes.
                    _ = wakeup.wait(timeout: .now() + .milliseconds(100))
                }
            }
            return nil
        }
    }

    /// A message polled from the consumer queue: a record only for a partition whose queue is
    /// not (yet) detached. Delivered to its worker in order, or dropped uncommitted.
    private func receiveStray(_ message: RDKafkaMessage) {
        if let error = message.error {
            report(error, topic: message.topic, partition: message.partition)
            return
        }
        guard let topic = message.topic else { return }
        loop.workers[Partition(topic: topic, partition: message.partition)]?.deliver([message.inbound(topic: topic)])
    }

    private func report(_ error: KafkaError, topic: String?, partition: Int32) {
        if error.code == .partitionEOF { return }
        logger.warning(
            "consumer error", metadata: ["topic": "\(topic ?? "-")", "partition": "\(partition)", "error": "\(error)"])
    }
}
