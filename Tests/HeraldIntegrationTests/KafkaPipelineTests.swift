import Foundation
import HeraldCore
import HeraldKafka
import Synchronization
import Testing

/// The consumer against librdkafka's mock cluster, in process: delivery, offsets, dead
/// letters, retries, restarts and rebalances.
@Suite("Kafka pipeline", .timeLimit(.minutes(10)))
struct KafkaPipelineTests {
    @Test("every event is applied once and its offset committed")
    func appliesAndCommits() async throws {
        let cluster = try TestCluster(partitions: 3)
        let applier = RecordingApplier()
        let count = 300
        try await cluster.send(
            (0..<count).map { TestCluster.roleEvent("role-\($0 % 17)", id: "e\($0)", at: 1_700_000_000 + $0) })
        let consumer = try TestConsumer(cluster: cluster, group: "g-apply", applier: applier)
        try await TestCluster.eventually("\(count) events applied") { applier.applied.count >= count }
        try await consumer.stop()

        #expect(Set(applier.applied.map(\.id.rawValue)) == Set((0..<count).map { "e\($0)" }))
        #expect(applier.applied.count == count)
        // Per-partition order: offsets only increase within a partition.
        for p in 0..<Int32(3) {
            let offsets = applier.applied.filter { $0.partition == p }.map(\.offset)
            #expect(offsets == offsets.sorted())
        }
        let inspector = try cluster.inspector(group: "g-apply")
        let committed = try await inspector.committed(TestCluster.authTopic)
        let marks = try await inspector.watermarks(TestCluster.authTopic)
        for (p, mark) in marks {
            #expect(committed[p] == mark.high, "partition \(p) committed \(committed[p] ?? -1) of \(mark.high)")
        }
        #expect(try await inspector.readAll(TestCluster.authTopic + ".dlq").isEmpty)
    }

    @Test("while the consumer runs, its poll thread commits what is stored every commit interval, not only at shutdown")
    func commitsWhileRunning() async throws {
        let cluster = try TestCluster(partitions: 2)
        let applier = RecordingApplier()
        try await cluster.send((0..<40).map { TestCluster.roleEvent("r\($0 % 5)", id: "c\($0)", at: 1_700_000_000) })
        let consumer = try TestConsumer(cluster: cluster, group: "g-commit", applier: applier)
        let inspector = try cluster.inspector(group: "g-commit")
        let marks = try await inspector.watermarks(TestCluster.authTopic)
        try await TestCluster.eventually("every offset committed by a running consumer") {
            let committed = try await inspector.committed(TestCluster.authTopic)
            return marks.allSatisfy { committed[$0.key] == $0.value.high }
        }
        // More events later: committed too, the consumer still running.
        try await cluster.send((40..<50).map { TestCluster.roleEvent("r\($0 % 5)", id: "c\($0)", at: 1_700_000_000) })
        let later = try await inspector.watermarks(TestCluster.authTopic)
        try await TestCluster.eventually("the later offsets committed as well") {
            let committed = try await inspector.committed(TestCluster.authTopic)
            return later.allSatisfy { committed[$0.key] == $0.value.high }
        }
        try await consumer.stop()
        #expect(Set(applier.applied.map(\.id.rawValue)).count == 50)
    }

    @Test("a restart after a clean shutdown consumes nothing twice")
    func restartConsumesNothingTwice() async throws {
        let cluster = try TestCluster(partitions: 2)
        let first = RecordingApplier()
        try await cluster.send((0..<50).map { TestCluster.roleEvent("r\($0)", id: "a\($0)", at: 1_700_000_000) })
        var consumer = try TestConsumer(cluster: cluster, group: "g-restart", applier: first)
        try await TestCluster.eventually("first 50") { first.applied.count >= 50 }
        try await consumer.stop()

        try await cluster.send((50..<60).map { TestCluster.roleEvent("r\($0)", id: "a\($0)", at: 1_700_000_000) })
        let second = RecordingApplier()
        consumer = try TestConsumer(cluster: cluster, group: "g-restart", applier: second)
        try await TestCluster.eventually("next 10") { second.applied.count >= 10 }
        try await Task.sleep(for: .milliseconds(500))
        try await consumer.stop()
        #expect(Set(second.applied.map(\.id.rawValue)) == Set((50..<60).map { "a\($0)" }))
        #expect(second.applied.count == 10)
    }

    @Test("malformed, empty, binary, 1 MiB and unknown records are dead-lettered with provenance; later events still apply")
    func deadLetters() async throws {
        let cluster = try TestCluster(partitions: 1)
        let applier = RecordingApplier()
        let topic = TestCluster.authTopic
        let key = Array("k".utf8)
        var huge = Array(#"{"event_type":"RoleDeleted","role":""#.utf8)
        huge += [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        huge += Array(#""}"#.utf8)
        let bad: [(String, OutboundRecord, Rejection.Class)] = [
            ("not json", OutboundRecord(topic: topic, key: key, value: Array("hello, world".utf8)), .notJSON),
            ("empty", OutboundRecord(topic: topic, key: key, value: []), .notJSON),
            ("null value", OutboundRecord(topic: topic, key: key, value: nil), .notJSON),
            ("binary", OutboundRecord(topic: topic, key: key, value: [0xFF, 0x00, 0xFE, 0x7B, 0x01]), .notJSON),
            ("json array", OutboundRecord(topic: topic, key: key, value: Array("[1,2]".utf8)), .notJSON),
            ("no type", TestCluster.event(["role": "admin"], key: "k"), .invalidEnvelope),
            ("unknown type", TestCluster.event(["event_type": "Nope", "role": "admin"], key: "k"), .unknownEventType),
            ("missing role", TestCluster.event(["event_type": "RoleDeleted"], key: "k"), .validationFailed),
            ("1 MiB role", OutboundRecord(topic: topic, key: key, value: huge), .validationFailed),
        ]
        var records = [TestCluster.roleEvent("before", id: "good-1", at: 1_700_000_000)]
        records += bad.map {
            var r = $0.1
            r.headers.append(MessageHeader("x-test-case", $0.0))
            return r
        }
        records.append(TestCluster.roleEvent("after", id: "good-2", at: 1_700_000_001))
        try await cluster.send(records)

        let consumer = try TestConsumer(cluster: cluster, group: "g-dlq", applier: applier)
        let inspector = try cluster.inspector()
        try await TestCluster.eventually("good events applied") { applier.applied.count >= 2 }
        var letters: [InboundMessage] = []
        try await TestCluster.eventually("\(bad.count) dead letters") {
            letters = try await inspector.readAll(topic + ".dlq")
            return letters.count >= bad.count
        }
        try await consumer.stop()

        #expect(applier.applied.map(\.id.rawValue) == ["good-1", "good-2"])
        #expect(letters.count == bad.count)
        for (index, (name, record, errorClass)) in bad.enumerated() {
            let letter = try #require(letters.first { $0.header("x-test-case")?.stringValue == name }, "dead letter for \(name)")
            #expect(letter.value ?? [] == record.value ?? [], "\(name): original value kept")
            #expect(letter.key == key, "\(name): original key kept")
            #expect(letter.header("herald.original.topic")?.stringValue == topic)
            #expect(letter.header("herald.original.partition")?.stringValue == "0")
            #expect(letter.header("herald.original.offset")?.stringValue == String(index + 1))
            #expect(letter.header("herald.original.timestamp")?.stringValue.flatMap { Int64($0) } != nil)
            #expect(letter.header("herald.consumer.group")?.stringValue == "g-dlq")
            #expect(letter.header("herald.error.class")?.stringValue == errorClass.rawValue, "\(name)")
            let message = letter.header("herald.error.message")?.stringValue ?? ""
            #expect(!message.isEmpty)
            #expect(letter.header("herald.attempts")?.stringValue == "1")
            #expect(letter.header("herald.failed.at")?.stringValue.flatMap(RFC3339.parse) != nil)
        }
        let committed = try await cluster.inspector(group: "g-dlq").committed(topic)
        #expect(committed[0] == Int64(records.count))
    }

    @Test("a transient failure pauses the partition and retries; nothing is dead-lettered")
    func transientFailuresRetry() async throws {
        let cluster = try TestCluster(partitions: 1)
        let applier = RecordingApplier()
        applier.failNext(6)
        try await cluster.send((0..<20).map { TestCluster.roleEvent("r", id: "t\($0)", at: 1_700_000_000 + $0) })
        let consumer = try TestConsumer(cluster: cluster, group: "g-retry", applier: applier)
        try await TestCluster.eventually("all applied after retries") { applier.applied.count >= 20 }
        try await consumer.stop()
        #expect(applier.calls > 6)
        #expect(Set(applier.applied.map(\.id.rawValue)).count == 20)
        #expect(try await cluster.inspector().readAll(TestCluster.authTopic + ".dlq").isEmpty)
    }

    @Test("shutdown during a retry abandons the batch: it is not committed and is redelivered")
    func shutdownMidRetryRedelivers() async throws {
        let cluster = try TestCluster(partitions: 1)
        let failing = RecordingApplier()
        failing.failNext(Int.max)
        try await cluster.send((0..<5).map { TestCluster.roleEvent("r", id: "s\($0)", at: 1_700_000_000) })
        var consumer = try TestConsumer(cluster: cluster, group: "g-abandon", applier: failing, drainTimeout: .milliseconds(300))
        try await TestCluster.eventually("retrying") { failing.calls >= 3 }
        try await consumer.stop()
        #expect(failing.applied.isEmpty)

        let healthy = RecordingApplier()
        consumer = try TestConsumer(cluster: cluster, group: "g-abandon", applier: healthy)
        try await TestCluster.eventually("redelivered") { healthy.applied.count >= 5 }
        try await consumer.stop()
        #expect(healthy.applied.map(\.id.rawValue) == (0..<5).map { "s\($0)" })
    }

    @Test("a batch that outlives the drain stores no offset after the consumer is gone; it is redelivered")
    func stragglerAfterShutdown() async throws {
        let cluster = try TestCluster(partitions: 1)
        // Blocks its thread, deaf to cancellation, past the drain and the wait after it.
        let blocking = BlockingApplier()
        let logs = RedisLogRecorder()
        try await cluster.send([TestCluster.roleEvent("r", id: "late-1", at: 1_700_000_000)])
        let consumer = try TestConsumer(
            cluster: cluster, group: "g-late", applier: blocking, drainTimeout: .milliseconds(100), logger: logs.logger)
        try await TestCluster.eventually("the batch is being applied") { blocking.started.load(ordering: .acquiring) }
        try await consumer.stop()  // returns with the batch still in flight; the handle is destroyed
        blocking.release()
        try await TestCluster.eventually("the straggler finished and stored nothing") {
            blocking.finished.load(ordering: .acquiring) && logs.transcript.contains("its offset is not stored")
        }
        let healthy = RecordingApplier()
        let next = try TestConsumer(cluster: cluster, group: "g-late", applier: healthy)
        try await TestCluster.eventually("redelivered") { healthy.applied.count >= 1 }
        try await next.stop()
        #expect(healthy.applied.map(\.id.rawValue) == ["late-1"])
    }

    @Test("of dead letters too large for the broker only those lose their value; a key too large is refused, not dropped")
    func deadLetterTooLarge() async throws {
        let cluster = try TestCluster(partitions: 1)
        let producer = try KafkaProducer(
            bootstrapServers: cluster.bootstrap, properties: ["message.max.bytes": "100000"], logger: TestLogging.logger("test.small"))
        let publisher = KafkaDeadLetterPublisher(producer: producer, logger: TestLogging.logger("test.dlq"))
        func letter(_ offset: Int64, key: Int = 1, value: Int) -> DeadLetter {
            DeadLetter(
                original: InboundMessage(
                    topic: TestCluster.authTopic, partition: 0, offset: offset, key: Array(repeating: UInt8(ascii: "k"), count: key),
                    value: Array(repeating: UInt8(ascii: "v"), count: value)),
                rejection: Rejection(.notJSON, "test"), attempts: 1, consumerGroup: "g", metadata: nil)
        }
        try await publisher.publish([letter(0, value: 10), letter(1, value: 200_000), letter(2, value: 20)])
        var published: [InboundMessage] = []
        try await TestCluster.eventually("three dead letters") {
            published = try await cluster.inspector().readAll(TestCluster.authTopic + ".dlq")
            return published.count >= 3
        }
        let byOffset = Dictionary(uniqueKeysWithValues: published.map { ($0.header("herald.original.offset")?.stringValue ?? "", $0) })
        #expect(byOffset["0"]?.value?.count == 10)
        #expect(byOffset["0"]?.header("herald.value.omitted") == nil)
        #expect(byOffset["1"]?.value == nil || byOffset["1"]?.value?.isEmpty == true)
        #expect(byOffset["1"]?.header("herald.value.omitted")?.stringValue == "200000")
        #expect(byOffset["2"]?.value?.count == 20, "its neighbour's size does not cost it its value")

        // Even without its value the letter is too large: refused, with which letters failed.
        let refused = await #expect(throws: DeadLetterPublishFailure.self) {
            try await publisher.publish([letter(3, value: 5), letter(4, key: 200_000, value: 5)])
        }
        #expect(refused?.unpublished == [1])
        await producer.close()
    }

    @Test("a producer whose idempotence broke reports its fatal error and refuses to send; dead letters then wait")
    func producerFatalError() async throws {
        let cluster = try TestCluster(partitions: 1)
        let producer = try KafkaProducer(bootstrapServers: cluster.bootstrap, logger: TestLogging.logger("test.fatal"))
        try await producer.send([TestCluster.roleEvent("r", id: "before", at: 1_764_000_000)])
        #expect(producer.fatalError == nil)
        let watcher = Task { await producer.waitForFatalError() }
        cluster.broker.failProduceRequests(1, with: .outOfOrderSequence)
        _ = try? await producer.send([TestCluster.roleEvent("r", id: "during", at: 1_764_000_001)])
        let fatal = try #require(await watcher.value)
        #expect(fatal.isFatal)
        #expect(producer.fatalError?.isFatal == true)
        // Every later send fails at once with the fatal error: nothing can be dead-lettered,
        // so a partition with a dead letter waits (reason dead_letter_refused) until Herald,
        // which watches for this, is restarted with a new producer.
        let errors = try await producer.deliver([TestCluster.roleEvent("r", id: "after", at: 1_764_000_002)])
        #expect(errors.count == 1 && errors[0]?.isFatal == true)
        #expect(errors[0]?.isTransient == false)
        await producer.close()
    }

    @Test("backpressure: a tiny memory budget pauses partitions and still delivers everything, in order; nothing stays held")
    func backpressure() async throws {
        let cluster = try TestCluster(partitions: 2)
        let applier = RecordingApplier()
        let count = 2000
        try await cluster.send((0..<count).map { TestCluster.roleEvent("r\($0 % 2)", id: "b\($0)", at: 1_700_000_000) })
        // 64 KiB: a share of 10 KiB per partition (4 assigned), about 30 records.
        let consumer = try TestConsumer(
            cluster: cluster, group: "g-bp", applier: applier, memoryBudget: MemoryBudget(bytes: 64 << 10))
        try await TestCluster.eventually("all applied") { applier.applied.count >= count }
        try await TestCluster.eventually("every record released") { consumer.consumer.memoryInUse == 0 }
        #expect(consumer.consumer.memoryPauseCount > 0)
        try await consumer.stop()
        #expect(Set(applier.applied.map(\.id.rawValue)).count == count)
        for p in 0..<Int32(2) {
            let offsets = applier.applied.filter { $0.partition == p }.map(\.offset)
            #expect(offsets == offsets.sorted())
        }
    }

    @Test("records larger than a partition's share of the budget are each taken alone and dead-lettered once")
    func largeRecordsUnderABudget() async throws {
        let cluster = try TestCluster(partitions: 4)
        let applier = RecordingApplier()
        let topic = TestCluster.authTopic
        // 2 MiB: a share of 160 KiB per partition (8 assigned); each record is 500 KB (the mock
        // cluster keeps only the newest ~5 MB of a partition).
        var records: [OutboundRecord] = []
        for i in 0..<12 {
            var value = Array(#"{"event_type":"RoleDeleted","role":""#.utf8)
            value += [UInt8](repeating: UInt8(ascii: "x"), count: 500_000)
            value += Array(#""}"#.utf8)
            records.append(OutboundRecord(topic: topic, key: Array("k\(i % 4)".utf8), value: value))
        }
        records += (0..<4).map {
            TestCluster.event(
                ["event_type": "RoleDeleted", "event_id": "after-\($0)", "role": "after\($0)", "event_timestamp": 1_700_000_000],
                key: "k\($0)")
        }
        try await cluster.send(records)
        let consumer = try TestConsumer(
            cluster: cluster, group: "g-large", applier: applier, memoryBudget: MemoryBudget(bytes: 2 << 20))
        let inspector = try cluster.inspector()
        var letters: [InboundMessage] = []
        try await TestCluster.eventually("12 dead letters and the later events applied") {
            letters = try await inspector.readAll(topic + ".dlq")
            return letters.count >= 12 && applier.applied.count >= 4
        }
        try await TestCluster.eventually("every record released") { consumer.consumer.memoryInUse == 0 }
        #expect(consumer.consumer.memoryPauseCount > 0)
        try await consumer.stop()
        // Each once: no position dead-lettered twice, every value whole.
        let positions = letters.map {
            "\($0.header("herald.original.partition")?.stringValue ?? "")/\($0.header("herald.original.offset")?.stringValue ?? "")"
        }
        #expect(Set(positions).count == 12)
        #expect(letters.count == 12)
        #expect(letters.allSatisfy { ($0.value?.count ?? 0) > 500_000 })
        #expect(Set(applier.applied.map(\.id.rawValue)) == Set((0..<4).map { "after-\($0)" }))
    }

    @Test("two members of one group share the partitions; every event is applied at least once")
    func rebalance() async throws {
        let cluster = try TestCluster(partitions: 4)
        let a = RecordingApplier()
        let b = RecordingApplier()
        try await cluster.send((0..<400).map { TestCluster.roleEvent("r\($0 % 13)", id: "x\($0)", at: 1_700_000_000) })
        let first = try TestConsumer(cluster: cluster, group: "g-rebalance", applier: a)
        try await TestCluster.eventually("first member consumes") { !a.applied.isEmpty }
        let second = try TestConsumer(cluster: cluster, group: "g-rebalance", applier: b)
        try await TestCluster.eventually("both members assigned") {
            !first.consumer.assignment.isEmpty && !second.consumer.assignment.isEmpty
        }
        try await cluster.send((400..<800).map { TestCluster.roleEvent("r\($0 % 13)", id: "x\($0)", at: 1_700_000_000) })
        try await TestCluster.eventually("all applied") {
            Set((a.applied + b.applied).map(\.id.rawValue)).count >= 800
        }
        #expect(first.consumer.assignment.isDisjoint(with: second.consumer.assignment))
        try await first.stop()
        try await second.stop()
        #expect(!b.applied.isEmpty)
        // At-least-once: whatever is committed was applied. (The mock cluster refuses commits
        // while a rebalance is in progress, which real brokers accept, so a member that
        // leaves mid-rebalance may leave its last offsets uncommitted: redelivered, not lost.)
        let committed = try await cluster.inspector(group: "g-rebalance").committed(TestCluster.authTopic)
        let applied = Set((a.applied + b.applied).map { "\($0.partition)/\($0.offset)" })
        for (p, offset) in committed where offset > 0 {
            for o in 0..<offset { #expect(applied.contains("\(p)/\(o)"), "committed \(p)/\(offset) but \(o) not applied") }
        }
    }
}

/// Blocks the calling thread, deaf to cancellation, until the test calls `release()`; then
/// applies nothing.
final class BlockingApplier: EffectApplier {
    let started = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
    private let gate = DispatchSemaphore(value: 0)

    func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID> {
        started.store(true, ordering: .releasing)
        gate.wait()
        finished.store(true, ordering: .releasing)
        return []
    }

    func release() { gate.signal() }
}
