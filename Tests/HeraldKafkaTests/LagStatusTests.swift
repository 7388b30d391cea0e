import HeraldCore
import HeraldKafka
import Testing

/// `herald lag`'s judgement of a partition on two samples a window apart.
@Suite("Lag status")
struct LagStatusTests {
    func sample(committed: Int64?, high: Int64, low: Int64 = 0) -> PartitionLag {
        PartitionLag(
            topic: "t", partition: 0, committed: committed, low: low, high: high, oldestUnconsumedTimestamp: nil, sampledAt: 0)
    }

    @Test("no lag is OK, whatever the committed offset did")
    func noLag() {
        #expect(LagStatus.judge(first: sample(committed: 5, high: 10), last: sample(committed: 10, high: 10)) == .ok)
        #expect(LagStatus.judge(first: sample(committed: 10, high: 10), last: sample(committed: 10, high: 10)) == .ok)
        #expect(LagStatus.judge(first: sample(committed: nil, high: 0), last: sample(committed: nil, high: 0)) == .ok)
    }

    @Test("lag with nothing ever committed is STOPPED")
    func stopped() {
        #expect(LagStatus.judge(first: sample(committed: nil, high: 3), last: sample(committed: nil, high: 5)) == .stopped)
    }

    @Test("lag while the committed offset stands still is STALLED")
    func stalled() {
        #expect(LagStatus.judge(first: sample(committed: 4, high: 10), last: sample(committed: 4, high: 10)) == .stalled)
        #expect(LagStatus.judge(first: sample(committed: 4, high: 10), last: sample(committed: 4, high: 20)) == .stalled)
    }

    @Test("a moving committed offset is OK while lag does not grow, LAGGING when it grows")
    func moving() {
        #expect(LagStatus.judge(first: sample(committed: 4, high: 10), last: sample(committed: 8, high: 12)) == .ok)
        #expect(LagStatus.judge(first: sample(committed: 4, high: 10), last: sample(committed: 8, high: 14)) == .ok)
        #expect(LagStatus.judge(first: sample(committed: 4, high: 10), last: sample(committed: 5, high: 20)) == .lagging)
    }

    @Test("the report's totals and worst status")
    func report() {
        let first = [sample(committed: 4, high: 10), sample(committed: nil, high: 0), sample(committed: 1, high: 3)]
        let last = [sample(committed: 5, high: 20), sample(committed: nil, high: 0), sample(committed: 1, high: 3)]
        let report = LagReport(group: "g", window: .seconds(3), first: first, last: last)
        #expect(report.rows.map(\.status) == [.lagging, .ok, .stalled])
        #expect(report.totalLag == 15 + 0 + 2)
        #expect(report.status == .stalled)
        #expect(LagReport(group: "g", window: .seconds(3), first: [], last: []).status == .ok)
        #expect(LagStatus.allCases.sorted() == [.ok, .lagging, .stalled, .stopped])
    }
}
