import Foundation
import HeraldCore
import HeraldKafka
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `herald dlq list`, `show` and `replay` as processes, against a `herald broker` process, with
/// a `herald run` dead-lettering the records and consuming the replays (real Redis and
/// PostgreSQL).
@Suite("herald dlq as a process", .serialized, .timeLimit(.minutes(10)))
struct DeadLetterProcessTests {
    typealias Setup = HeraldProcessTests.Setup

    typealias Outcome = HeraldBinary.Outcome

    /// Runs `herald dlq ARGUMENTS --brokers …` to its end (a liveness bound, not a speed check).
    static func dlq(_ setup: Setup, _ arguments: [String], environment: [String: String] = [:]) async throws -> Outcome {
        try await run(["dlq"] + arguments + ["--brokers", setup.bootstrap], dir: setup.dir, environment: environment)
    }

    static func run(_ arguments: [String], dir: String, environment: [String: String] = [:]) async throws -> Outcome {
        try await HeraldBinary.run(arguments, dir: dir, environment: environment)
    }

    /// A dead letter as Herald writes one, produced straight to `<topic>.dlq` (for letters a
    /// past version of Herald wrote, or ones too large to keep).
    static func deadLetter(
        _ original: OutboundRecord, partition: Int32 = 0, offset: Int64, timestamp: Int64? = nil, errorClass: String,
        eventID: String?, eventType: String?, omitted: Int? = nil
    ) -> OutboundRecord {
        var headers = original.headers
        headers.append(MessageHeader(DeadLetterHeader.originalTopic, original.topic))
        headers.append(MessageHeader(DeadLetterHeader.originalPartition, String(partition)))
        headers.append(MessageHeader(DeadLetterHeader.originalOffset, String(offset)))
        if let timestamp { headers.append(MessageHeader(DeadLetterHeader.originalTimestamp, String(timestamp))) }
        headers.append(MessageHeader(DeadLetterHeader.consumerGroup, "herald-before"))
        headers.append(MessageHeader(DeadLetterHeader.errorClass, errorClass))
        headers.append(MessageHeader(DeadLetterHeader.errorMessage, "rejected by an earlier version"))
        headers.append(MessageHeader(DeadLetterHeader.attempts, "1"))
        headers.append(MessageHeader(DeadLetterHeader.failedAt, RFC3339.format(EventTime.now())))
        if let eventID { headers.append(MessageHeader(DeadLetterHeader.eventID, eventID)) }
        if let eventType { headers.append(MessageHeader(DeadLetterHeader.eventType, eventType)) }
        if let omitted { headers.append(MessageHeader(DeadLetterHeader.valueOmitted, String(omitted))) }
        return OutboundRecord(
            topic: original.topic + ".dlq", key: original.key, value: omitted == nil ? original.value : nil, headers: headers)
    }

    static let authDLQ = TestCluster.authTopic + ".dlq"
    static let userDLQ = TestCluster.userTopic + ".dlq"

    @Test(
        "poison records dead-lettered by herald run: list counts them, show filters and escapes, replay sends them back with key, value and headers and a count, --dry-run sends nothing, the count stops a loop, nothing is committed"
    )
    func listShowReplay() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        let group = "dlq-e2e"
        let herald = try setup.herald("herald", group: group)

        // Poison: three records that are not JSON (one with an address, one with a terminal
        // escape after a byte that is not UTF-8, one of 5,000 bytes), two of a type Herald does
        // not know yet, a user event missing its user, and one letter an earlier Herald wrote
        // without its value (too large).
        let notJSON: [[UInt8]] = [
            Array("not json, from ada@example.com".utf8), [0xFF] + Array("\u{1B}[2J".utf8),
            Array(repeating: UInt8(ascii: "x"), count: 5000),
        ]
        var poison = notJSON.enumerated().map { i, value in
            OutboundRecord(
                topic: TestCluster.authTopic, key: Array("k-\(i)".utf8), value: value, headers: [MessageHeader("trace", "t-\(i)")])
        }
        poison += (0..<2).map { i in
            TestCluster.event(
                ["event_type": "FancyNewEvent", "event_id": "fancy-\(i)", "occurred_at": RFC3339.format(EventTime.now())],
                key: "fancy-key-\(i)", headers: [MessageHeader("trace", "fancy-\(i)")])
        }
        poison.append(TestCluster.event(["event_type": "UserDeleted", "event_id": "no-user"], topic: TestCluster.userTopic, key: "nobody"))
        try await setup.producer.send(poison)
        let tooLarge = OutboundRecord(topic: TestCluster.authTopic, key: Array("big".utf8), value: Array("{}".utf8))
        try await setup.producer.send([
            Self.deadLetter(
                tooLarge, offset: 99, errorClass: "HandlerRejected", eventID: "big-1", eventType: "RoleDeleted", omitted: 2_097_152)
        ])
        let inspector = try setup.inspector("dlq-e2e-test-reader")
        try await TestCluster.eventually("every poison record dead-lettered") {
            let auth = try await inspector.readAll(Self.authDLQ).count
            let user = try await inspector.readAll(Self.userDLQ).count
            return auth == 6 && user == 1
        }

        // list --json: one object per dead-letter topic, counts by class and type.
        var out = try await Self.dlq(setup, ["list", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let topics = Dictionary(uniqueKeysWithValues: try out.objects().map { ($0["topic"] as? String ?? "", $0) })
        #expect(Set(topics.keys) == [Self.authDLQ, Self.userDLQ], "\(out.stdout)")
        let auth = try #require(topics[Self.authDLQ])
        #expect(auth["count"] as? Int == 6)
        #expect(auth["source_topic"] as? String == TestCluster.authTopic)
        let groups = (auth["groups"] as? [[String: Any]] ?? []).map {
            "\($0["error_class"] as? String ?? "-")/\($0["event_type"] as? String ?? "-")=\($0["count"] as? Int ?? -1)"
        }
        #expect(groups == ["NotJSON/-=3", "UnknownEventType/FancyNewEvent=2", "HandlerRejected/RoleDeleted=1"], "\(groups)")
        let oldest = try #require(RFC3339.parse(auth["oldest"] as? String ?? ""))
        let newest = try #require(RFC3339.parse(auth["newest"] as? String ?? ""))
        #expect(oldest <= newest)
        let user = try #require(topics[Self.userDLQ])
        #expect(user["count"] as? Int == 1)
        let userGroups = user["groups"] as? [[String: Any]] ?? []
        #expect(userGroups.first?["error_class"] as? String == "ValidationFailed", "\(userGroups)")
        #expect(userGroups.first?["event_type"] as? String == "UserDeleted", "\(userGroups)")
        out = try await Self.dlq(setup, ["list"])
        #expect(out.status == 0 && out.stdout.contains("\(Self.authDLQ): 6 dead letters"), "\(out.stdout)")

        // show --class (any letter case) --json: the three records that are not JSON, each with its provenance.
        out = try await Self.dlq(setup, ["show", "--class", "notjson", "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        let shown = Dictionary(uniqueKeysWithValues: try out.objects().map { ($0["key"] as? String ?? "", $0) })
        #expect(shown.count == 3 && Set(shown.keys) == ["k-0", "k-1", "k-2"], "\(out.stdout)")
        for (key, letter) in shown {
            #expect(letter["error_class"] as? String == "NotJSON")
            #expect(letter["original_topic"] as? String == TestCluster.authTopic)
            #expect(letter["consumer_group"] as? String == group)
            #expect(letter["replay_count"] as? Int == 0)
            #expect(letter["failed_at"] is String && letter["error_message"] is String)
            let headers = letter["headers"] as? [[String: Any]] ?? []
            #expect(headers.count == 1 && headers.first?["key"] as? String == "trace", "\(key): \(headers)")
        }
        #expect(shown["k-0"]?["value"] as? String == "not json, from ada@example.com")
        #expect(shown["k-1"]?["value"] as? String == #"\xFF\x1B[2J"#)
        #expect(shown["k-2"]?["value_bytes"] as? Int == 5000 && shown["k-2"]?["value_truncated"] as? Bool == true)
        #expect((shown["k-2"]?["value"] as? String)?.utf8.count == 1024)

        // As text, with addresses masked as HERALD_LOG_MASK_EMAILS masks the logs; no raw escape reaches the terminal.
        out = try await Self.dlq(setup, ["show", "--class", "NotJSON"], environment: ["HERALD_LOG_MASK_EMAILS": "true"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("a***@example.com") && !out.stdout.contains("ada@example.com"), "\(out.stdout)")
        #expect(out.stdout.contains(#"\xFF\x1B[2J"#) && !out.stdout.utf8.contains(0x1B))
        #expect(out.stdout.contains("(5000 bytes, first 1024 shown)"), "\(out.stdout)")
        out = try await Self.dlq(setup, ["show", "--type", "FancyNewEvent"])
        #expect(out.status == 0)
        #expect(out.lines.filter { $0.contains("UnknownEventType") }.count == 2 && !out.stdout.contains("NotJSON"), "\(out.stdout)")

        // --dry-run: what would go, and nothing published.
        let sourceBefore = try await inspector.readAll(TestCluster.authTopic)
        out = try await Self.dlq(setup, ["replay", "--class", "UnknownEventType", "--dry-run"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.lines.filter { $0.hasPrefix("would replay \(Self.authDLQ)") }.count == 2, "\(out.stdout)")
        #expect(out.stdout.contains("dry run: would replay 2, refused 0, skipped 5"), "\(out.stdout)")
        #expect(try await inspector.readAll(TestCluster.authTopic).count == sourceBefore.count)

        // replay: both back in their topic, acknowledged before the command ended.
        out = try await Self.dlq(setup, ["replay", "--class", "UnknownEventType", "--type", "FancyNewEvent"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("replayed 2, refused 0, skipped 5 (not matching), failed 0"), "\(out.stdout)")
        let letters = try await inspector.readAll(Self.authDLQ).map(DeadLetterRecord.init)
        let replayed = try await inspector.readAll(TestCluster.authTopic).filter { $0.header(DeadLetterHeader.replayCount) != nil }
        #expect(replayed.count == 2)
        for record in replayed {
            let source = try #require(poison.first { $0.key == record.key })
            let letter = try #require(letters.first { $0.message.key == record.key })
            #expect(record.value == source.value)
            #expect(record.headers == source.headers + [MessageHeader(DeadLetterHeader.replayCount, "1")])
            #expect(record.partition == letter.originalPartition, "back to the partition it was consumed from")
            #expect(record.timestamp != nil && record.timestamp == letter.originalTimestamp, "with its original timestamp")
        }

        // Herald still knows no FancyNewEvent: they come back, carrying their replay count.
        try await TestCluster.eventually("the replays dead-lettered again") { try await inspector.readAll(Self.authDLQ).count == 8 }
        let again = try await inspector.readAll(Self.authDLQ).map(DeadLetterRecord.init).filter { $0.replayCount == .times(1) }
        #expect(again.count == 2 && again.allSatisfy { $0.errorClass == "UnknownEventType" && $0.consumerGroup == group })

        // --max-replays 1: the first letters go again, the ones that came back are refused.
        out = try await Self.dlq(setup, ["replay", "--class", "UnknownEventType", "--max-replays", "1"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("replayed 2, refused 2"), "\(out.stdout)")
        #expect(out.lines.filter { $0.hasPrefix("refused") && $0.contains("already replayed 1 time (--max-replays 1)") }.count == 2)

        // A letter without its value cannot be replayed, and says why.
        out = try await Self.dlq(setup, ["replay", "--class", "HandlerRejected", "--topic", TestCluster.authTopic])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("replayed 0, refused 1"), "\(out.stdout)")
        #expect(out.stdout.contains("its value was not kept (herald.value.omitted: 2097152 bytes"), "\(out.stdout)")

        // No dlq command joined Herald's group or committed anything, under either group.
        for name in [group, KafkaDeadLetterReader.groupID] {
            let offsets = try setup.inspector(name)
            for topic in [Self.authDLQ, Self.userDLQ] {
                let committed = try await offsets.committed(topic)
                #expect(committed.count == 2 && committed.values.allSatisfy { $0 < 0 }, "\(name) on \(topic): \(committed)")
            }
            await offsets.close()
        }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test(
        "a replay changes nothing already applied: an older revocation (dated by its kept timestamp) leaves the newer time in Redis, an event in the inbox is a duplicate"
    )
    func replayIsIdempotent() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        let port = try TestPorts.free()
        let herald = try setup.herald("herald", group: "dlq-idem", environment: ["HERALD_HTTP_ADDRESS": "127.0.0.1:\(port)"])
        let probe = OperationsProbe(port: port)

        // Two letters an earlier Herald wrote: a revocation, and a new user (inbox, welcome mail).
        // The revocation has no time of its own: its record's timestamp dates it, and the
        // replay keeps that timestamp (dated now, it would move the key forward).
        let older = TestCluster.event(["event_type": "UserSessionsRevoked", "event_id": "rev-old", "user_id": "u-idem"], key: "u-idem")
        let created = TestCluster.event(
            [
                "event_type": "UserCreated", "event_id": "created-1", "user_id": "u-idem", "username": "idem",
                "email": "idem@example.com", "locale": "en", "occurred_at": RFC3339.format(EventTime.now()),
            ], key: "u-idem")
        try await setup.producer.send([
            Self.deadLetter(
                older, offset: 10, timestamp: 1_700_000_100_000, errorClass: "HandlerRejected", eventID: "rev-old",
                eventType: "UserSessionsRevoked"),
            Self.deadLetter(created, offset: 11, errorClass: "HandlerRejected", eventID: "created-1", eventType: "UserCreated"),
        ])
        // Since then: a newer revocation, and the same UserCreated delivered and applied.
        let newer = TestCluster.event(
            ["event_type": "UserSessionsRevoked", "event_id": "rev-new", "user_id": "u-idem", "event_timestamp": 1_700_000_200],
            key: "u-idem")
        try await setup.producer.send([newer, created])
        try await TestCluster.eventually("both applied", every: OperationsProbe.pollInterval) {
            let applied = try probe.metrics().sum("herald_events_total", where: ["outcome": "applied"])
            let revokedAt = try setup.redis.probe(["GET", "revoked_user: u-idem"]).text
            return applied == 2 && revokedAt == "1700000200"
        }
        #expect(try setup.postgres.psql("SELECT count(*) FROM herald.notifications") == "1")

        let out = try await Self.dlq(setup, ["replay"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("replayed 2, refused 0, skipped 0 (not matching), failed 0"), "\(out.stdout)")

        try await TestCluster.eventually("the replays processed", every: OperationsProbe.pollInterval) {
            let metrics = try probe.metrics()
            return metrics.sum("herald_events_total", where: ["type": "UserSessionsRevoked", "outcome": "applied"]) == 2
                && metrics.sum("herald_events_total", where: ["type": "UserCreated", "outcome": "duplicate"]) == 1
        }
        // The older revocation moved nothing; the user was not created twice, nor welcomed twice.
        #expect(try setup.redis.probe(["GET", "revoked_user: u-idem"]).text == "1700000200")
        #expect(try setup.postgres.psql("SELECT count(*) FROM herald.processed_events WHERE event_id = 'created-1'") == "1")
        #expect(try setup.postgres.psql("SELECT count(*) FROM herald.notifications") == "1")
        // And nothing was dead-lettered again.
        let inspector = try setup.inspector("dlq-idem-test-reader")
        #expect(try await inspector.readAll(Self.authDLQ).count == 2)
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("bad options exit 64 naming the option, a bad setting 78 naming it, no broker 75")
    func exitCodes() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let broker = ["--brokers", "127.0.0.1:1"]
        for (arguments, option) in [
            (["list", "--since", "yesterday"], "--since"), (["show", "--class", "Nope"], "--class"),
            (["show", "--offset", "3"], "--offset"), (["show", "--limit", "0"], "--limit"),
            (["show", "--max-bytes", "-1"], "--max-bytes"), (["replay", "--max-replays", "0"], "--max-replays"),
            (["replay", "--topic", "no topic"], "--topic"), (["replay", "--partition", "-1"], "--partition"),
        ] {
            let out = try await Self.run(["dlq"] + arguments + broker, dir: dir)
            #expect(out.status == 64, "\(arguments): \(out.stderr)")
            #expect(out.stderr.contains(option), "\(arguments): \(out.stderr)")
        }
        var out = try await Self.run(["dlq", "list"] + broker, dir: dir, environment: ["HERALD_DLQ_SUFFIX": "/dlq"])
        #expect(out.status == 78 && out.stderr.contains("HERALD_DLQ_SUFFIX"), "\(out.stderr)")
        out = try await Self.run(["dlq", "replay"] + broker, dir: dir)
        #expect(out.status == 75 && out.stderr.contains("127.0.0.1:1"), "\(out.stderr)")
    }
}
