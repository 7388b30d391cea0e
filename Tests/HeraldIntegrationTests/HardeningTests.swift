import Foundation
import HeraldCore
import HeraldKafka
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The promise that only an event's own content dead-letters it, held under faults that
/// dependencies really produce, through the built `herald` binary: a Redis that answers
/// `-ERR`, a PostgreSQL that turned read-only, a dead letter the broker refuses, a broker
/// whose offsets start again at 0.
@Suite("hardening: dependencies fail, nothing is dead-lettered or skipped", .serialized, .timeLimit(.minutes(10)))
struct HardeningTests {
    typealias Setup = HeraldProcessTests.Setup

    static func herald(
        _ setup: Setup, _ name: String, group: String, port: Int, environment extra: [String: String] = [:]
    ) throws -> ChildProcess {
        try OperationsTests.herald(setup, name, group: group, port: port, environment: extra)
    }

    /// Every record in the dead-letter topics of both consumed topics.
    static func deadLetters(_ setup: Setup) async throws -> [InboundMessage] {
        let inspector = try setup.inspector("hardening-dlq-reader")
        var letters: [InboundMessage] = []
        for topic in [TestCluster.userTopic, TestCluster.authTopic] {
            letters += try await inspector.readAll(topic + ".dlq")
        }
        return letters
    }

    static func roleEvents(_ range: Range<Int>) -> [OutboundRecord] {
        range.map { TestCluster.roleEvent("role-\($0)", id: "role-event-\($0)", at: 1_764_000_000 + $0, type: "RoleDeleted") }
    }

    @Test("Redis answers every command with -ERR: nothing dead-lettered, the partitions wait; a real Redis on that port: all applied")
    func redisErrorReplies() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        // The real Redis steps aside; a stand-in takes its port and refuses every command.
        try await setup.redis.stop()
        let standIn = try ChildProcess(
            "/usr/bin/python3",
            [HeraldBinary.repository + "/Tests/HeraldIntegrationTests/Support/redis_error_server.py", String(setup.redis.port)],
            environment: ["PATH": "/usr/bin:/bin"], logPath: setup.dir + "/stand-in.log")
        try await TestCluster.eventually("the stand-in listens") { standIn.output.contains("ready") }

        let port = try TestPorts.free()
        let herald = try Self.herald(setup, "herald", group: "hard-redis", port: port)
        let probe = OperationsProbe(port: port)
        let count = 30
        try await setup.producer.send(Self.roleEvents(0..<count) + HeraldProcessTests.revocations(0..<count))

        try await TestCluster.eventually("partitions stalled on Redis", every: OperationsProbe.pollInterval) {
            let stalled = try probe.metrics().samples("herald_partition_stalled").filter { $0.value == 1 }
            return !stalled.isEmpty && stalled.allSatisfy { $0.labels["reason"]?.hasPrefix("dependency_") == true }
        }
        try await TestCluster.eventually("the stall logged at error level", every: OperationsProbe.pollInterval) {
            herald.output.contains("partition stalled") && herald.output.contains(#""level":"error""#)
        }
        #expect(try await Self.deadLetters(setup).isEmpty, "a refusal by Redis is an outage, not bad content")

        standIn.signal(SIGKILL)
        _ = try await standIn.waitForExit()
        try await setup.redis.start()
        try await TestCluster.eventually("every revocation applied", every: OperationsProbe.pollInterval) {
            (try setup.redis.probe(["DBSIZE"]).integer ?? 0) >= 2 * count
        }
        for i in [0, count - 1] {
            #expect(try setup.redis.probe(["GET", "invalid_role: role-\(i)"]).text == String(1_764_000_000 + i))
            #expect(try setup.redis.probe(["GET", "revoked_user: user-\(i)"]).text == String(1_700_000_000 + i))
        }
        try await TestCluster.eventually("no partition stalled any more", every: OperationsProbe.pollInterval) {
            try probe.metrics().sum("herald_partition_stalled") == 0
        }
        let metrics = try probe.metrics()
        #expect(metrics.sum("herald_events_total", where: ["outcome": "applied"]) == Double(2 * count))
        #expect(metrics.sum("herald_events_total", where: ["outcome": "dead_lettered"]) == 0)
        #expect(try await Self.deadLetters(setup).isEmpty)
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("PostgreSQL turns read-only (a standby after failover): nothing dead-lettered; back to read-write: the mail is sent")
    func postgresReadOnly() async throws {
        let setup = try await Setup(partitions: 1)
        defer { setup.teardown() }
        let port = try TestPorts.free()
        let herald = try Self.herald(
            setup, "herald", group: "hard-pg", port: port, environment: ["HERALD_MAIL_POLL_INTERVAL": "500ms"])
        let probe = OperationsProbe(port: port)
        let pg = setup.postgres
        try await setup.producer.send([
            TestCluster.event(
                ["event_type": "UserRegistered", "event_id": "reg-1", "user_id": "u1", "username": "ada", "email": "ada@example.com"],
                key: "u1")
        ])
        // Herald may not have migrated yet: the table may not exist at the first looks.
        try await TestCluster.eventually("the recipient is stored", every: OperationsProbe.pollInterval) {
            (try? pg.psql("SELECT count(*) FROM herald.recipients WHERE user_id = 'u1'")) == "1"
        }

        // Every new session is now read-only, as on a standby; Herald's sessions are ended.
        _ = try pg.psql("ALTER DATABASE postgres SET default_transaction_read_only = on")
        _ = try pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'herald%'")
        try await setup.producer.send([
            TestCluster.event(["event_type": "PasswordResetRequested", "event_id": "reset-1", "user_id": "u1"], key: "u1"),
            TestCluster.event(["event_type": "UserDeleted", "event_id": "del-2", "user_id": "u2"], key: "u2"),
        ])
        try await TestCluster.eventually("the partition waits on PostgreSQL", every: OperationsProbe.pollInterval) {
            try probe.metrics().samples("herald_partition_stalled").contains {
                $0.value == 1 && $0.labels["reason"]?.hasPrefix("dependency_") == true
            } && herald.output.contains("25006")
        }
        #expect(try await Self.deadLetters(setup).isEmpty, "a read-only database is an outage")
        #expect(try pg.psql("SELECT count(*) FROM herald.notifications") == "0")

        _ = try pg.psql("ALTER DATABASE postgres RESET default_transaction_read_only")
        try await TestCluster.eventually("the reset mail is sent", every: OperationsProbe.pollInterval) {
            try pg.psql("SELECT string_agg(status, ',') FROM herald.notifications WHERE event_id = 'reset-1'") == "sent"
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: setup.dir + "/mail").filter { $0.hasSuffix(".eml") }
        #expect(files.count == 1)
        #expect(try pg.psql("SELECT deleted_at IS NOT NULL FROM herald.recipients WHERE user_id = 'u2'") == "t")
        #expect(try setup.redis.probe(["EXISTS", "revoked_user: u2"]).integer == 1)
        #expect(try await Self.deadLetters(setup).isEmpty)
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("a dead letter the broker refuses even without its value: its partition stalls, visibly; the others go on; nothing is skipped")
    func deadLetterRefusedStalls() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        let group = "hard-dlq"
        let port = try TestPorts.free()
        // Herald's producer refuses records above 100 kB, so a 200 kB key can never be dead-lettered.
        let limited = ["HERALD_KAFKA_PROPERTY_MESSAGE_MAX_BYTES": "100000"]
        var herald = try Self.herald(setup, "herald-1", group: group, port: port, environment: limited)
        let probe = OperationsProbe(port: port)
        let inspector = try setup.inspector(group)

        // Both partitions get committed offsets first.
        try await setup.producer.send(HeraldProcessTests.revocations(0..<20))
        try await TestCluster.eventually("first events committed on both partitions", every: OperationsProbe.pollInterval) {
            let committed = try await inspector.committed(TestCluster.authTopic)
            let marks = try await inspector.watermarks(TestCluster.authTopic)
            return marks.count == 2 && marks.allSatisfy { $0.value.high > 0 && committed[$0.key] == $0.value.high }
        }
        let poison = OutboundRecord(
            topic: TestCluster.authTopic, key: Array(repeating: UInt8(ascii: "k"), count: 200_000), value: Array("not json".utf8))
        try await setup.producer.send([poison])
        let marks = try await inspector.watermarks(TestCluster.authTopic)
        let before = try await inspector.committed(TestCluster.authTopic)
        let stalledPartition = try #require(marks.first { $0.value.high > (before[$0.key] ?? 0) }?.key)
        let poisonOffset = before[stalledPartition]!
        // Valid events after it: those on the other partition apply, those behind the poison wait.
        try await setup.producer.send(HeraldProcessTests.revocations(20..<60))

        try await TestCluster.eventually("the stalled partition reported with its reason", every: OperationsProbe.pollInterval) {
            try probe.metrics().value(
                "herald_partition_stalled",
                ["topic": TestCluster.authTopic, "partition": String(stalledPartition), "reason": "dead_letter_refused"]) == 1
        }
        try await TestCluster.eventually("herald lag says STALLED", timeout: .seconds(180), every: OperationsProbe.pollInterval) {
            let report = try OperationsTests.lagCommand(setup, group: group)
            let rows = report["partitions"] as? [[String: Any]] ?? []
            return rows.contains {
                $0["topic"] as? String == TestCluster.authTopic && $0["partition"] as? Int == Int(stalledPartition)
                    && $0["status"] as? String == "STALLED"
            }
        }
        #expect(herald.output.contains("dead_letter_refused"))
        let otherPartition: Int32 = stalledPartition == 0 ? 1 : 0
        try await TestCluster.eventually("the other partition keeps going", every: OperationsProbe.pollInterval) {
            let committed = try await inspector.committed(TestCluster.authTopic)
            let marks = try await inspector.watermarks(TestCluster.authTopic)
            return committed[otherPartition] == marks[otherPartition]?.high
        }
        #expect(try await inspector.committed(TestCluster.authTopic)[stalledPartition] == poisonOffset, "nothing skipped")
        #expect(try await Self.deadLetters(setup).isEmpty)
        #expect(try probe.health("/healthz").status == 200, "the consumer still turns: the partition waits, it did not die")

        // Without the limit, the letter goes out with its key and everything behind it applies.
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
        herald = try Self.herald(setup, "herald-2", group: group, port: try TestPorts.free())
        try await TestCluster.eventually("the poison dead-lettered and every event applied", every: OperationsProbe.pollInterval) {
            let letters = try await Self.deadLetters(setup)
            let applied = try setup.redis.probe(["DBSIZE"]).integer ?? 0
            return letters.count == 1 && applied >= 60
        }
        let letter = try #require(try await Self.deadLetters(setup).first)
        #expect(letter.key?.count == 200_000)
        #expect(letter.header("herald.original.offset")?.stringValue == String(poisonOffset))
        try await TestCluster.eventually("committed to the end", every: OperationsProbe.pollInterval) {
            let committed = try await inspector.committed(TestCluster.authTopic)
            let marks = try await inspector.watermarks(TestCluster.authTopic)
            return marks.allSatisfy { committed[$0.key] == $0.value.high }
        }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("the producer fails for good (idempotence broken): Herald exits non-zero instead of keeping a dead producer; nothing is lost")
    func producerFatalExits() async throws {
        let cluster = try TestCluster(partitions: 1)
        let redis = try await RedisServer.start()
        let postgres = try await PostgresServer.start()
        let dir = try HeraldBinary.temporaryDirectory()
        defer {
            redis.shutdown()
            postgres.shutdown()
        }
        try await cluster.send([
            TestCluster.roleEvent("first", id: "fatal-1", at: 1_764_000_000, type: "RoleDeleted"),
            OutboundRecord(topic: TestCluster.authTopic, key: Array("k".utf8), value: Array("not json".utf8)),
            TestCluster.roleEvent("after", id: "fatal-2", at: 1_764_000_001, type: "RoleDeleted"),
        ])
        // The next produce request, the dead letter's, breaks the idempotent producer's sequence.
        cluster.broker.failProduceRequests(1, with: .outOfOrderSequence)
        func start(_ name: String) throws -> ChildProcess {
            try ChildProcess(
                HeraldBinary.path, ["run"],
                environment: [
                    "PATH": "/usr/bin:/bin", "HERALD_KAFKA_BROKERS": cluster.bootstrap, "HERALD_KAFKA_GROUP": "hard-fatal",
                    "HERALD_REDIS_URL": redis.url, "HERALD_DATABASE_URL": postgres.url, "HERALD_DATABASE_AUTO_MIGRATE": "true",
                    "HERALD_COMMIT_INTERVAL": "200ms", "HERALD_LOG_FORMAT": "json",
                ].merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }, logPath: "\(dir)/\(name).log")
        }
        let first = try start("herald-1")
        let status = try await first.waitForExit(timeout: .seconds(180))
        #expect(status == 1, "exit status \(status); output ends: \(first.output.suffix(2000))")
        #expect(first.output.contains("failed for good"))
        let inspector = try cluster.inspector(group: "hard-fatal")
        #expect(try await inspector.committed(TestCluster.authTopic)[0] ?? 0 <= 1, "the poison record was not skipped")
        #expect(try await inspector.readAll(TestCluster.authTopic + ".dlq").isEmpty)

        // Its supervisor starts it again: a new producer publishes the dead letter, the rest applies.
        let second = try start("herald-2")
        try await TestCluster.eventually("dead-lettered once and everything applied") {
            let letters = try await inspector.readAll(TestCluster.authTopic + ".dlq")
            let applied = try redis.probe(["EXISTS", "invalid_role: after"]).integer ?? 0
            return letters.count == 1 && applied == 1
        }
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
    }

    @Test("events without an id after the embedded broker restarts (offsets from 0 again) are new events, not duplicates")
    func idlessEventsAfterBrokerRestart() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let redis = try await RedisServer.start()
        let postgres = try await PostgresServer.start()
        defer {
            redis.shutdown()
            postgres.shutdown()
        }
        let bootstrapFile = dir + "/kafka-bootstrap"
        func start(_ name: String, port: Int) throws -> ChildProcess {
            try ChildProcess(
                HeraldBinary.path, ["run"],
                environment: [
                    "PATH": "/usr/bin:/bin", "HERALD_KAFKA_BROKERS": "embedded", "HERALD_EMBEDDED_BOOTSTRAP_FILE": bootstrapFile,
                    "HERALD_EMBEDDED_PARTITIONS": "2",
                    "HERALD_REDIS_URL": redis.url, "HERALD_DATABASE_URL": postgres.url, "HERALD_DATABASE_AUTO_MIGRATE": "true",
                    "HERALD_COMMIT_INTERVAL": "200ms", "HERALD_LOG_FORMAT": "json", "HERALD_HTTP_ADDRESS": "127.0.0.1:\(port)",
                    "HERALD_LOG_LEVEL": "debug",
                ].merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }, logPath: "\(dir)/\(name).log")
        }
        func publishRegistrations(_ users: Range<Int>) async throws {
            var bootstrap = ""
            try await TestCluster.eventually("the embedded broker's address") {
                bootstrap =
                    (try? String(contentsOfFile: bootstrapFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                return !bootstrap.isEmpty
            }
            let producer = try KafkaProducer(bootstrapServers: bootstrap, logger: TestLogging.logger("hard.producer"))
            // No id anywhere: Herald derives one from the record.
            try await producer.send(
                users.map { i in
                    TestCluster.event(
                        ["event_type": "UserRegistered", "user_id": "u\(i)", "username": "user\(i)", "email": "u\(i)@example.com"],
                        key: "u\(i)")
                })
            await producer.close()
        }

        let firstPort = try TestPorts.free()
        var herald = try start("herald-1", port: firstPort)
        try await publishRegistrations(0..<6)
        try await TestCluster.eventually("six recipients") { (try? postgres.psql("SELECT count(*) FROM herald.recipients")) == "6" }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
        try? FileManager.default.removeItem(atPath: bootstrapFile)

        // A new in-memory broker: its offsets start at 0 again.
        let port = try TestPorts.free()
        herald = try start("herald-2", port: port)
        try await publishRegistrations(6..<12)
        try await TestCluster.eventually("twelve recipients") { try postgres.psql("SELECT count(*) FROM herald.recipients") == "12" }
        let probe = OperationsProbe(port: port)
        let metrics = try probe.metrics()
        #expect(metrics.sum("herald_events_total", where: ["outcome": "applied"]) == 6)
        #expect(metrics.sum("herald_events_total", where: ["outcome": "duplicate"]) == 0)
        #expect(try postgres.psql("SELECT count(*) FROM herald.processed_events") == "12")
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("a redelivered event is counted as a duplicate and logged with its id")
    func duplicatesCounted() async throws {
        let setup = try await Setup(partitions: 1)
        defer { setup.teardown() }
        let port = try TestPorts.free()
        let herald = try Self.herald(setup, "herald", group: "hard-dup", port: port, environment: ["HERALD_LOG_LEVEL": "debug"])
        let probe = OperationsProbe(port: port)
        // An event with a database effect: revocation-only events are not recorded in the
        // inbox (applying them twice changes nothing), so they are never duplicates.
        let event = TestCluster.event(
            [
                "event_type": "UserRegistered", "event_id": "same-id-twice", "user_id": "u-dup", "username": "dup",
                "email": "dup@example.com",
            ],
            key: "u-dup")
        try await setup.producer.send([event])
        try await TestCluster.eventually("applied once", every: OperationsProbe.pollInterval) {
            try probe.metrics().sum("herald_events_total", where: ["outcome": "applied"]) == 1
        }
        // The producer sends it again (a retry after a lost acknowledgement, say).
        try await setup.producer.send([event])
        try await TestCluster.eventually("counted as a duplicate", every: OperationsProbe.pollInterval) {
            try probe.metrics().sum("herald_events_total", where: ["outcome": "duplicate"]) == 1
        }
        #expect(try probe.metrics().sum("herald_events_total", where: ["outcome": "applied"]) == 1)
        #expect(herald.output.contains("already processed") && herald.output.contains("same-id-twice"))
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }
}
