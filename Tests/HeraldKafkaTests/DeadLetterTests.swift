import HeraldCore
import HeraldKafka
import Testing

/// `herald dlq`'s pure parts: a dead letter's provenance read back, the filter, the replay
/// policy (what goes back, what is refused and why), and `list`'s figures.
@Suite("Dead letters: selection and replay")
struct DeadLetterTests {
    static let failedAt = "2026-05-01T12:00:00.000Z"

    /// A dead letter as `KafkaDeadLetterPublisher` writes one: the original headers, then the provenance.
    static func letter(
        topic: String = "auth_service_topic.dlq", partition: Int32 = 0, offset: Int64 = 0, original: String = "auth_service_topic",
        errorClass: String = "NotJSON", eventType: String? = nil, failedAt: String? = DeadLetterTests.failedAt,
        timestamp: Int64? = 1_777_000_000_000, key: [UInt8]? = Array("user-1".utf8), value: [UInt8]? = Array("not json".utf8),
        headers: [MessageHeader] = [MessageHeader("ce_type", "UserSessionsRevoked")], extra: [MessageHeader] = []
    ) -> DeadLetterRecord {
        var all = headers
        all.append(MessageHeader(DeadLetterHeader.originalTopic, original))
        all.append(MessageHeader(DeadLetterHeader.originalPartition, "2"))
        all.append(MessageHeader(DeadLetterHeader.originalOffset, "41"))
        all.append(MessageHeader(DeadLetterHeader.originalTimestamp, "1776999999000"))
        all.append(MessageHeader(DeadLetterHeader.consumerGroup, "herald"))
        all.append(MessageHeader(DeadLetterHeader.errorClass, errorClass))
        all.append(MessageHeader(DeadLetterHeader.errorMessage, "expected a JSON object"))
        all.append(MessageHeader(DeadLetterHeader.attempts, "1"))
        if let failedAt { all.append(MessageHeader(DeadLetterHeader.failedAt, failedAt)) }
        if let eventType {
            all.append(MessageHeader(DeadLetterHeader.eventID, "e-1"))
            all.append(MessageHeader(DeadLetterHeader.eventType, eventType))
        }
        all += extra
        return DeadLetterRecord(
            InboundMessage(topic: topic, partition: partition, offset: offset, timestamp: timestamp, key: key, value: value, headers: all))
    }

    static let policy = DeadLetterReplayPolicy(maxReplays: 3, suffix: ".dlq")

    // MARK: reading a letter

    @Test("a letter's provenance headers are read back; the original headers are the others, in order")
    func provenance() {
        let r = Self.letter(eventType: "RoleDeleted", headers: [MessageHeader("b", "2"), MessageHeader("a", "1")])
        #expect(r.originalTopic == "auth_service_topic")
        #expect(r.originalPartition == 2 && r.originalOffset == 41 && r.originalTimestamp == 1_776_999_999_000)
        #expect(r.consumerGroup == "herald" && r.attempts == 1)
        #expect(r.errorClass == "NotJSON" && r.errorMessage == "expected a JSON object")
        #expect(r.eventID == "e-1" && r.eventType == "RoleDeleted")
        #expect(r.failedAt == RFC3339.parse(Self.failedAt))
        #expect(!r.valueOmitted && r.valueOmittedBytes == nil)
        #expect(r.replayCount == .times(0))
        #expect(r.originalHeaders == [MessageHeader("b", "2"), MessageHeader("a", "1")])
    }

    @Test("the time of failure is herald.failed.at, else the letter's own timestamp")
    func failedTime() {
        #expect(Self.letter().failedTime == RFC3339.parse(Self.failedAt))
        #expect(Self.letter(failedAt: nil, timestamp: 1_000).failedTime == EventTime(millisecondsSinceEpoch: 1_000))
        #expect(Self.letter(failedAt: "yesterday", timestamp: 2_000).failedTime == EventTime(millisecondsSinceEpoch: 2_000))
        #expect(Self.letter(failedAt: nil, timestamp: nil).failedTime == nil)
    }

    @Test("the replay count: absent is 0, a number is read, anything else is unreadable")
    func replayCount() {
        #expect(Self.letter(extra: [MessageHeader(DeadLetterHeader.replayCount, "2")]).replayCount == .times(2))
        for bad in ["", "-1", "two", "1e3", "99999999999999999999999"] {
            #expect(Self.letter(extra: [MessageHeader(DeadLetterHeader.replayCount, bad)]).replayCount == .unreadable(bad), "\(bad)")
        }
    }

    // MARK: the filter

    @Test("an empty filter selects everything")
    func emptyFilter() {
        #expect(DeadLetterFilter().matches(Self.letter()))
        #expect(DeadLetterFilter().matches(Self.letter(failedAt: nil, timestamp: nil)))
    }

    @Test("by error class and event type: any of those given; a letter without a type matches no type")
    func classAndType() {
        let filter = DeadLetterFilter(errorClasses: ["NotJSON", "ValidationFailed"])
        #expect(filter.matches(Self.letter(errorClass: "NotJSON")))
        #expect(filter.matches(Self.letter(errorClass: "ValidationFailed")))
        #expect(!filter.matches(Self.letter(errorClass: "UnknownEventType")))
        let types = DeadLetterFilter(eventTypes: ["RoleDeleted"])
        #expect(types.matches(Self.letter(eventType: "RoleDeleted")))
        #expect(!types.matches(Self.letter(eventType: "UserDeleted")))
        #expect(!types.matches(Self.letter(eventType: nil)))
        let both = DeadLetterFilter(errorClasses: ["ValidationFailed"], eventTypes: ["RoleDeleted"])
        #expect(both.matches(Self.letter(errorClass: "ValidationFailed", eventType: "RoleDeleted")))
        #expect(!both.matches(Self.letter(errorClass: "NotJSON", eventType: "RoleDeleted")))
    }

    @Test("--class is matched in any letter case and names only known classes")
    func classNames() {
        #expect(DeadLetterFilter.errorClass(named: "notjson") == "NotJSON")
        #expect(DeadLetterFilter.errorClass(named: "ValidationFailed") == "ValidationFailed")
        #expect(DeadLetterFilter.errorClass(named: "Validation") == nil)
    }

    @Test("--since: at or after the time, by herald.failed.at; a letter with no time is left out")
    func since() {
        let at = RFC3339.parse(Self.failedAt)!
        #expect(DeadLetterFilter(since: at).matches(Self.letter()))
        #expect(!DeadLetterFilter(since: EventTime(millisecondsSinceEpoch: at.millisecondsSinceEpoch + 1)).matches(Self.letter()))
        #expect(!DeadLetterFilter(since: at).matches(Self.letter(failedAt: nil, timestamp: nil)))
    }

    @Test("--since reads RFC 3339 or a duration back from now, nothing else")
    func sinceParsing() {
        let now = EventTime(millisecondsSinceEpoch: 1_800_000_000_000)
        #expect(DeadLetterFilter.since(parsing: "2h", now: now) == EventTime(millisecondsSinceEpoch: 1_800_000_000_000 - 7_200_000))
        #expect(DeadLetterFilter.since(parsing: "90s", now: now) == EventTime(millisecondsSinceEpoch: 1_800_000_000_000 - 90_000))
        #expect(DeadLetterFilter.since(parsing: "2026-05-01T14:00:00+02:00", now: now) == RFC3339.parse(Self.failedAt))
        for bad in ["", "2", "yesterday", "-2h", "2026-05-01", "2 h"] {
            #expect(DeadLetterFilter.since(parsing: bad, now: now) == nil, "\(bad)")
        }
    }

    @Test("--partition and --offset select one position, and narrow what is read")
    func position() {
        let filter = DeadLetterFilter(partition: 1, offset: 7)
        #expect(filter.matches(Self.letter(partition: 1, offset: 7)))
        #expect(!filter.matches(Self.letter(partition: 0, offset: 7)))
        #expect(!filter.matches(Self.letter(partition: 1, offset: 8)))
        #expect(filter.range(partition: 1, low: 0, high: 10) == 7..<8)
        #expect(filter.range(partition: 0, low: 0, high: 10) == nil)
        #expect(filter.range(partition: 1, low: 8, high: 10) == nil, "removed by retention")
        #expect(filter.range(partition: 1, low: 0, high: 7) == nil, "not written yet")
        #expect(DeadLetterFilter(partition: 1).range(partition: 1, low: 3, high: 10) == 3..<10)
        #expect(DeadLetterFilter().range(partition: 4, low: 3, high: 10) == 3..<10)
        #expect(DeadLetterFilter().range(partition: 4, low: 5, high: 5) == nil, "empty")
    }

    // MARK: replay

    @Test(
        "a replay keeps key, value, original headers and timestamp, drops the provenance, adds the count, goes to the original partition"
    )
    func replayRecord() throws {
        let r = Self.letter(headers: [MessageHeader("ce_type", "RoleDeleted"), MessageHeader(key: "empty", value: nil)])
        guard case .replay(let out, let count) = Self.policy.decide(r) else {
            Issue.record("refused")
            return
        }
        #expect(count == 1)
        #expect(out.topic == "auth_service_topic")
        #expect(out.partition == 2)
        #expect(out.timestamp == 1_776_999_999_000, "the original record's timestamp")
        #expect(out.key == Array("user-1".utf8))
        #expect(out.value == Array("not json".utf8))
        #expect(
            out.headers == [
                MessageHeader("ce_type", "RoleDeleted"), MessageHeader(key: "empty", value: nil),
                MessageHeader(DeadLetterHeader.replayCount, "1"),
            ])
        #expect(!out.headers.contains { $0.key.hasPrefix("herald.") && $0.key != DeadLetterHeader.replayCount })
    }

    @Test("a record with no key or no value is replayed as it was")
    func replayNulls() {
        guard case .replay(let out, _) = Self.policy.decide(Self.letter(key: nil, value: nil)) else {
            Issue.record("refused")
            return
        }
        #expect(out.key == nil && out.value == nil)
    }

    @Test("the count goes up from the one the record carried, and replays stop at --max-replays")
    func replayCountLimit() {
        for (carried, expected) in [(0, 1), (1, 2), (2, 3)] {
            let r = Self.letter(extra: [MessageHeader(DeadLetterHeader.replayCount, String(carried))])
            guard case .replay(let out, let count) = Self.policy.decide(r) else {
                Issue.record("refused at \(carried)")
                continue
            }
            #expect(count == expected)
            #expect(
                out.headers.filter { $0.key == DeadLetterHeader.replayCount } == [
                    MessageHeader(DeadLetterHeader.replayCount, String(expected))
                ])
        }
        for carried in [3, 4, 100] {
            let r = Self.letter(extra: [MessageHeader(DeadLetterHeader.replayCount, String(carried))])
            guard case .refuse(let reason) = Self.policy.decide(r) else {
                Issue.record("replayed at \(carried)")
                continue
            }
            #expect(reason.contains("already replayed \(carried) times") && reason.contains("--max-replays 3"), "\(reason)")
        }
        let once = DeadLetterReplayPolicy(maxReplays: 1, suffix: ".dlq")
        guard case .refuse = once.decide(Self.letter(extra: [MessageHeader(DeadLetterHeader.replayCount, "1")])) else {
            Issue.record("replayed past --max-replays 1")
            return
        }
    }

    @Test("the count a replayed record carries is the one among its original headers, the last one if repeated")
    func repeatedCount() {
        let r = Self.letter(
            headers: [MessageHeader(DeadLetterHeader.replayCount, "0"), MessageHeader(DeadLetterHeader.replayCount, "2")])
        guard case .replay(let out, let count) = Self.policy.decide(r) else {
            Issue.record("refused")
            return
        }
        #expect(count == 3)
        #expect(out.headers.filter { $0.key == DeadLetterHeader.replayCount }.count == 1)
    }

    @Test("refused, with the reason: an unreadable count, an omitted value, no or another original topic")
    func refusals() {
        func reason(_ r: DeadLetterRecord, _ policy: DeadLetterReplayPolicy = DeadLetterTests.policy) -> String? {
            if case .refuse(let reason) = policy.decide(r) { return reason }
            return nil
        }
        #expect(reason(Self.letter(extra: [MessageHeader(DeadLetterHeader.replayCount, "x")]))?.contains("not a whole number") == true)
        let omitted = reason(Self.letter(value: nil, extra: [MessageHeader(DeadLetterHeader.valueOmitted, "2097152")]))
        #expect(omitted?.contains("value was not kept") == true && omitted?.contains("2097152 bytes") == true, "\(omitted ?? "")")
        #expect(omitted?.contains("auth_service_topic[2] at offset 41") == true, "\(omitted ?? "")")
        #expect(reason(Self.letter(original: "")) != nil)
        let noTopic = DeadLetterRecord(InboundMessage(topic: "auth_service_topic.dlq", partition: 0, offset: 0, value: Array("x".utf8)))
        #expect(reason(noTopic)?.contains("no herald.original.topic") == true)
        // A letter in auth_service_topic.dlq claiming to come from elsewhere goes nowhere.
        #expect(reason(Self.letter(original: "user_service_topic")) != nil)
        #expect(reason(Self.letter(original: "billing")) != nil)
        #expect(reason(Self.letter(original: "bad topic\n")) != nil)
        // A custom suffix.
        let custom = DeadLetterReplayPolicy(maxReplays: 3, suffix: "-dead")
        #expect(reason(Self.letter(topic: "auth_service_topic-dead"), custom) == nil)
        #expect(reason(Self.letter(topic: "auth_service_topic.dlq"), custom) != nil)
    }

    @Test("the source topic of a dead-letter topic")
    func sourceTopic() {
        #expect(DeadLetterReplayPolicy.sourceTopic(of: "auth_service_topic.dlq", suffix: ".dlq") == "auth_service_topic")
        #expect(DeadLetterReplayPolicy.sourceTopic(of: "auth_service_topic", suffix: ".dlq") == nil)
        #expect(DeadLetterReplayPolicy.sourceTopic(of: ".dlq", suffix: ".dlq") == nil)
    }

    // MARK: list

    @Test("list: counts by error class and event type, largest first, oldest and newest per group and in all")
    func summary() {
        var summary = DeadLetterSummary()
        #expect(summary.count == 0 && summary.oldest == nil && summary.groups.isEmpty)
        summary.add(Self.letter(errorClass: "NotJSON", failedAt: "2026-05-01T12:00:00Z"))
        summary.add(Self.letter(errorClass: "NotJSON", failedAt: "2026-05-01T10:00:00Z"))
        summary.add(Self.letter(errorClass: "ValidationFailed", eventType: "RoleDeleted", failedAt: "2026-05-02T00:00:00Z"))
        summary.add(Self.letter(errorClass: "ValidationFailed", eventType: "UserDeleted", failedAt: nil, timestamp: nil))
        #expect(summary.count == 4)
        #expect(summary.oldest == RFC3339.parse("2026-05-01T10:00:00Z"))
        #expect(summary.newest == RFC3339.parse("2026-05-02T00:00:00Z"))
        let groups = summary.groups
        #expect(groups.map(\.count) == [2, 1, 1])
        #expect(groups.map(\.key.errorClass) == ["NotJSON", "ValidationFailed", "ValidationFailed"])
        #expect(groups.map(\.key.eventType) == [nil, "RoleDeleted", "UserDeleted"])
        #expect(groups[0].oldest == RFC3339.parse("2026-05-01T10:00:00Z") && groups[0].newest == RFC3339.parse("2026-05-01T12:00:00Z"))
        #expect(groups[2].oldest == nil && groups[2].newest == nil, "a letter with no time is counted, with no time")
    }
}
