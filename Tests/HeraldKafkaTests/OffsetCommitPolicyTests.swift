import Testing

@testable import HeraldKafka

@Suite("Offset commit policy")
struct OffsetCommitPolicyTests {
    static func settings(_ properties: [String: String] = [:], interval: Duration = .seconds(1)) -> KafkaConsumerSettings {
        KafkaConsumerSettings(
            bootstrapServers: "127.0.0.1:9092", groupID: "g", topics: ["t"], properties: properties, commitInterval: interval)
    }

    /// The value librdkafka ends up with: the last one given.
    static func effective(_ properties: [(String, String)], _ key: String) -> String? {
        properties.last { $0.0 == key }?.1
    }

    @Test("librdkafka stores no offset and commits nothing by itself: the consumer does both")
    func properties() throws {
        let props = try Self.settings().librdkafkaProperties()
        #expect(Self.effective(props, "enable.auto.offset.store") == "false")
        #expect(Self.effective(props, "enable.auto.commit") == "false")
        #expect(Self.effective(props, "group.id") == "g")
    }

    @Test("enable.auto.offset.store=true and enable.auto.commit=false are refused as configuration errors")
    func refused() {
        for (key, value) in [("enable.auto.offset.store", "true"), ("enable.auto.commit", "false"), ("enable.auto.commit", "0")] {
            #expect(throws: KafkaError.self, "\(key)=\(value)") { try Self.settings([key: value]).librdkafkaProperties() }
            do {
                _ = try Self.settings([key: value]).librdkafkaProperties()
            } catch {
                #expect(error.code == .configuration)
                #expect(error.message.contains(key))
            }
        }
    }

    @Test("what agrees with the policy is accepted, and Herald's values still come last")
    func accepted() throws {
        let props = try Self.settings(["enable.auto.commit": "true", "enable.auto.offset.store": "false"]).librdkafkaProperties()
        #expect(Self.effective(props, "enable.auto.commit") == "false")
        #expect(Self.effective(props, "enable.auto.offset.store") == "false")
    }

    @Test("the periodic commit is due once per interval, counted from the last one")
    func schedule() {
        let start = ContinuousClock.now
        var schedule = OffsetCommitPolicy(interval: .milliseconds(200)).schedule(startingAt: start)
        // Milliseconds after the start at which the poll loop turns, and whether a commit is due.
        let turns: [(at: Int, due: Bool)] = [
            (0, false), (199, false), (200, true), (300, false),
            // A late turn commits once, and the next is an interval after it.
            (1000, true), (1199, false), (1200, true),
        ]
        for turn in turns {
            let due = schedule.isDue(at: start + .milliseconds(turn.at))
            #expect(due == turn.due, "at \(turn.at) ms")
        }
    }

    @Test("an interval of zero still commits at most every millisecond")
    func minimumInterval() {
        #expect(OffsetCommitPolicy(interval: .zero).interval == .milliseconds(1))
        #expect(Self.settings(interval: .seconds(5)).commitPolicy.interval == .seconds(5))
    }
}
