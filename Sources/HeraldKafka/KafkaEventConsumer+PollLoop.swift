import Dispatch
import HeraldCore

/// The poll loop: the consumer queue, then each partition's own queue into its worker, as far
/// as the worker has room. Each assigned partition's librdkafka queue is detached from the
/// consumer queue, so librdkafka's prefetch limits apply per partition: a partition whose
/// worker is behind stops being read, its queue fills and librdkafka stops fetching it, while
/// the others go on. (With one shared queue a single busy partition, or a burst, made every
/// partition unfetchable until librdkafka's next wake-up, which cost two thirds of the
/// throughput.)
extension KafkaEventConsumer {
    /// Turns until shutdown is requested, or returns the consumer's fatal error.
    func pollUntilShutdown() -> KafkaError? {
        let high = settings.maxBufferedPerPartition
        let readBatch = max(64, min(high, 1024))
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
                var waitingOnWorkers = false
                for (partition, queue) in loop.queues {
                    guard let worker = loop.workers[partition] else { continue }
                    let room = high - worker.buffered
                    if room <= 0 {
                        waitingOnWorkers = true
                        continue
                    }
                    let count = queue.consume(upTo: min(room, readBatch), buffer: &buffer) { message in
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
                    _ = wakeup.wait(timeout: .now() + .milliseconds(waitingOnWorkers ? 20 : 100))
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
