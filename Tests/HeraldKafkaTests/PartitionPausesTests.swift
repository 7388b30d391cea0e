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
        #expect(pauses.paused == [Self.b])
        // Still retrying: nothing to tell librdkafka again.
        changes = pauses.reconcile(all) { $0 == Self.b }
        #expect(changes.isEmpty)
        changes = pauses.reconcile(all) { $0 != Self.b }
        #expect(changes == PartitionPauses.Changes(pause: [Self.a, Self.c], resume: [Self.b]))
        #expect(pauses.paused == [Self.a, Self.c])
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
        #expect(pauses.paused == [Self.a])
    }

    @Test("an assigned partition starts resumed; a revoked one is forgotten; a failed rebalance forgets all")
    func assignments() {
        var pauses = PartitionPauses()
        _ = pauses.reconcile([Self.a, Self.b, Self.c]) { _ in true }
        pauses.assigned([Self.a])
        #expect(pauses.paused == [Self.b, Self.c])
        // Its new worker retries again: paused again.
        let changes = pauses.reconcile([Self.a]) { _ in true }
        #expect(changes.pause == [Self.a])
        pauses.revoked([Self.b])
        #expect(pauses.paused == [Self.a, Self.c])
        pauses.removeAll()
        #expect(pauses.paused.isEmpty)
    }
}
