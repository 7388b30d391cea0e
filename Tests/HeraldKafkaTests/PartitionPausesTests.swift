import Testing

@testable import HeraldKafka

@Suite("Partition pauses")
struct PartitionPausesTests {
    static let a = KafkaPartition(topic: "t", partition: 0)
    static let b = KafkaPartition(topic: "t", partition: 1)
    static let c = KafkaPartition(topic: "u", partition: 0)

    @Test("a partition is paused when its worker starts retrying, once, and resumed when the retry ends")
    func followsRetries() {
        var pauses = PartitionPauses()
        let all = [Self.a, Self.b, Self.c]
        var changes = pauses.reconcile(all) { _ in false }
        #expect(changes.isEmpty)
        changes = pauses.reconcile(all) { $0 == Self.b }
        #expect(changes == PartitionPauses.Changes(pause: [Self.b], resume: []))
        #expect(pauses.retrying == [Self.b])
        // Still retrying: nothing to tell librdkafka again.
        changes = pauses.reconcile(all) { $0 == Self.b }
        #expect(changes.isEmpty)
        changes = pauses.reconcile(all) { $0 != Self.b }
        #expect(changes == PartitionPauses.Changes(pause: [Self.a, Self.c], resume: [Self.b]))
        #expect(pauses.retrying == [Self.a, Self.c])
        changes = pauses.reconcile(all) { _ in false }
        #expect(changes == PartitionPauses.Changes(pause: [], resume: [Self.a, Self.c]))
        #expect(pauses.count == 0)
    }

    @Test("partitions without a worker keep their state")
    func onlyListedPartitions() {
        var pauses = PartitionPauses()
        _ = pauses.reconcile([Self.a]) { _ in true }
        let changes = pauses.reconcile([Self.b]) { _ in false }
        #expect(changes.isEmpty)
        #expect(pauses.retrying == [Self.a])
    }

    @Test("an assigned partition starts resumed; a revoked one is forgotten; a failed rebalance forgets all")
    func assignments() {
        var pauses = PartitionPauses()
        _ = pauses.reconcile([Self.a, Self.b, Self.c]) { _ in true }
        pauses.assigned([Self.a])
        #expect(pauses.retrying == [Self.b, Self.c])
        // Its new worker retries again: paused again.
        let changes = pauses.reconcile([Self.a]) { _ in true }
        #expect(changes.pause == [Self.a])
        pauses.revoked([Self.b])
        #expect(pauses.retrying == [Self.a, Self.c])
        pauses.removeAll()
        #expect(pauses.retrying.isEmpty)
    }

    // MARK: Memory

    @Test("the memory rule: full at the share or when the records part is used up, roomy at half and seven eighths")
    func memoryRule() {
        typealias M = PartitionPauses.Memory
        #expect(M.of(held: 1000, share: 1000, used: 1000, records: 8000) == .full)
        #expect(M.of(held: 10, share: 1000, used: 8000, records: 8000) == .full)
        #expect(M.of(held: 999, share: 1000, used: 999, records: 8000) == .between)
        #expect(M.of(held: 500, share: 1000, used: 7000, records: 8000) == .roomy)
        #expect(M.of(held: 500, share: 1000, used: 7001, records: 8000) == .between)
        // A partition that holds nothing may take a record of any size, unless the whole
        // records part is in use.
        #expect(M.of(held: 0, share: 1000, used: 7000, records: 8000) == .roomy)
        #expect(M.of(held: 0, share: 1000, used: 7999, records: 8000) == .between)
        #expect(M.of(held: 0, share: 1000, used: 8000, records: 8000) == .full)
        // One record larger than the share, alone: full until it is processed.
        #expect(M.of(held: 5000, share: 1000, used: 5000, records: 8000) == .full)
    }

    @Test("memory pauses with hysteresis: paused when full, kept between, resumed when roomy; retries and memory combine")
    func memoryPauses() {
        var pauses = PartitionPauses()
        let all = [Self.a, Self.b]
        var memory: [KafkaPartition: PartitionPauses.Memory] = [Self.a: .full, Self.b: .roomy]
        var changes = pauses.reconcile(all, isRetrying: { _ in false }, memory: { memory[$0]! })
        #expect(changes == PartitionPauses.Changes(pause: [Self.a], resume: []))
        #expect(pauses.isPaused(Self.a) && !pauses.isPaused(Self.b))
        // Memory pauses are not retries (the paused-partitions metric counts retries).
        #expect(pauses.count == 0)
        memory[Self.a] = .between
        changes = pauses.reconcile(all, isRetrying: { _ in false }, memory: { memory[$0]! })
        #expect(changes.isEmpty)
        #expect(pauses.isPaused(Self.a))
        // Retrying while full: one pause; the retry ends while still full: stays paused.
        changes = pauses.reconcile(all, isRetrying: { $0 == Self.a }, memory: { memory[$0]! })
        #expect(changes.isEmpty)
        #expect(pauses.count == 1)
        changes = pauses.reconcile(all, isRetrying: { _ in false }, memory: { memory[$0]! })
        #expect(changes.isEmpty)
        memory[Self.a] = .roomy
        changes = pauses.reconcile(all, isRetrying: { _ in false }, memory: { memory[$0]! })
        #expect(changes == PartitionPauses.Changes(pause: [], resume: [Self.a]))
        // Roomy but retrying: paused for the retry alone.
        changes = pauses.reconcile(all, isRetrying: { $0 == Self.b }, memory: { memory[$0]! })
        #expect(changes == PartitionPauses.Changes(pause: [Self.b], resume: []))
        pauses.revoked([Self.b])
        #expect(!pauses.isPaused(Self.b))
    }

    @Test("the budget's parts, a partition's share, and librdkafka's prefetch sized from it")
    func budget() {
        let budget = MemoryBudget(bytes: 32 << 20)
        #expect(budget.records == 20 << 20)
        #expect(budget.share(assigned: 32) == (20 << 20) / 32)
        #expect(budget.share(assigned: 0) == budget.records)
        let properties = Dictionary(uniqueKeysWithValues: budget.consumerProperties)
        #expect(properties["fetch.max.bytes"] == String(1 << 20))
        #expect(properties["max.partition.fetch.bytes"] == String(64 << 10))
        #expect(properties["queued.max.messages.kbytes"] == "64")
        #expect(budget.producerProperties["queue.buffering.max.kbytes"] == "4096")
        let big = MemoryBudget(bytes: 1 << 30)
        #expect(Dictionary(uniqueKeysWithValues: big.consumerProperties)["max.partition.fetch.bytes"] == String(1 << 20))
    }
}
