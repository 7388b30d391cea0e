/// Rebalances, carried out on the poll thread from inside `client.pollConsumer` or
/// `client.closeConsumer` (librdkafka's rebalance callback).
extension KafkaEventConsumer {
    func rebalance(_ rebalance: RDKafkaRebalance) {
        let partitions = rebalance.partitions
        switch rebalance.kind {
        case .assign:
            if let error = client.assign(rebalance) {
                logger.error("\(client.isCooperative ? "incremental assign" : "assign") failed", metadata: ["error": "\(error)"])
            }
            for p in partitions where loop.workers[p] == nil {
                startWorker(for: p)
            }
            // A partition paused in an earlier assignment must not stay paused.
            client.resume(rebalance)
            loop.pauses.assigned(partitions)
            assigned.withLock { $0.formUnion(partitions) }
            inGroup.store(true, ordering: .releasing)
            observer.rebalanced(.assigned, partitions: partitions.count)
            observer.pausedPartitions(loop.pauses.count)
            logger.info("partitions assigned", metadata: ["partitions": "\(partitions.map(\.description).sorted())"])
        case .revoke:
            logger.info("partitions revoked", metadata: ["partitions": "\(partitions.map(\.description).sorted())"])
            stopWorkers(for: partitions, timeout: settings.drainTimeout)
            // Before the partitions are released: their next owner starts from here.
            commitStoredOffsets(.revocation)
            if let error = client.unassign(rebalance) {
                logger.error("incremental unassign failed", metadata: ["error": "\(error)"])
            }
            assigned.withLock { $0.subtract(partitions) }
            // An eager revocation takes everything until the next assignment (possibly empty);
            // a cooperative one leaves the member in its group.
            if !client.isCooperative { inGroup.store(false, ordering: .releasing) }
            loop.pauses.revoked(partitions)
            observer.rebalanced(.revoked, partitions: partitions.count)
            observer.pausedPartitions(loop.pauses.count)
        case .failed(let error):
            logger.error("rebalance failed", metadata: ["error": "\(error)"])
            stopWorkers(for: Array(loop.workers.keys), timeout: settings.drainTimeout)
            client.unassignAll()
            assigned.withLock { $0.removeAll() }
            inGroup.store(false, ordering: .releasing)
            loop.pauses.removeAll()
            observer.rebalanced(.failed, partitions: partitions.count)
            observer.pausedPartitions(0)
        }
    }
}
