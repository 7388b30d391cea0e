import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// End to end with the built `herald` binary as a process, the embedded broker in another
/// process (`herald broker`), and a real redis-server.
@Suite("herald as a process", .serialized, .timeLimit(.minutes(10)))
struct HeraldProcessTests {
    struct Setup {
        let dir: String
        let broker: ChildProcess
        let bootstrap: String
        let redis: RedisServer
        let postgres: PostgresServer
        let producer: KafkaProducer

        /// `topics`: created besides the catalogue's (`herald broker --topic`).
        init(partitions: Int, topics: [String] = []) async throws {
            dir = try HeraldBinary.temporaryDirectory()
            let file = dir + "/bootstrap"
            broker = try ChildProcess(
                HeraldBinary.path,
                ["broker", "--partitions", String(partitions), "--bootstrap-file", file] + topics.flatMap { ["--topic", $0] },
                environment: ["PATH": "/usr/bin:/bin"], logPath: dir + "/broker.log")
            var address: String?
            try await TestCluster.eventually("broker bootstrap file", timeout: .seconds(180)) {
                address = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                return !(address ?? "").isEmpty
            }
            bootstrap = address!
            redis = try await RedisServer.start()
            postgres = try await PostgresServer.start()
            producer = try KafkaProducer(bootstrapServers: bootstrap, logger: TestLogging.logger("e2e.producer"))
        }

        func herald(_ name: String, group: String, environment extra: [String: String] = [:]) throws -> ChildProcess {
            try ChildProcess(
                HeraldBinary.path, ["run"],
                environment: [
                    "PATH": "/usr/bin:/bin",
                    "HERALD_KAFKA_BROKERS": bootstrap,
                    "HERALD_KAFKA_GROUP": group,
                    "HERALD_REDIS_URL": redis.url,
                    "HERALD_DATABASE_URL": postgres.url,
                    "HERALD_DATABASE_AUTO_MIGRATE": "true",
                    "HERALD_COMMIT_INTERVAL": "200ms",
                    "HERALD_KAFKA_PROPERTY_SESSION_TIMEOUT_MS": "6000",
                    "HERALD_KAFKA_PROPERTY_HEARTBEAT_INTERVAL_MS": "500",
                    "HERALD_LOG_FORMAT": "json",
                ].merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }.merging(extra) { _, b in b },
                logPath: "\(dir)/\(name).log")
        }

        func inspector(_ group: String) throws -> KafkaInspector {
            try KafkaInspector(bootstrapServers: bootstrap, groupID: group, logger: TestLogging.logger("e2e.inspector"))
        }

        func teardown() {
            redis.shutdown()
            postgres.shutdown()
            broker.signal(SIGTERM)
        }
    }

    static func revocations(_ range: Range<Int>) -> [OutboundRecord] {
        range.map { i in
            TestCluster.event(
                [
                    "event_type": "UserSessionsRevoked", "event_id": "e2e-\(i)", "user_id": "user-\(i)",
                    "event_timestamp": 1_700_000_000 + i,
                ],
                key: "user-\(i)")
        }
    }

    @Test("kill -9 midway, start again: every event applied, none lost")
    func killNineMidway() async throws {
        let setup = try await Setup(partitions: 4)
        defer { setup.teardown() }
        let count = 20_000
        try await setup.producer.send(Self.revocations(0..<count))

        var herald = try setup.herald("herald-1", group: "e2e-kill")
        try await TestCluster.eventually("some events applied") {
            (try setup.redis.probe(["DBSIZE"]).integer ?? 0) > 0
        }
        herald.signal(SIGKILL)
        _ = try await herald.waitForExit()
        let appliedBeforeKill = try setup.redis.probe(["DBSIZE"]).integer ?? 0

        herald = try setup.herald("herald-2", group: "e2e-kill")
        try await TestCluster.eventually("all \(count) applied after restart", timeout: .seconds(180)) {
            (try setup.redis.probe(["DBSIZE"]).integer ?? 0) >= count
        }
        // On a busy machine the first run may have applied everything before the kill: the
        // SIGTERM must still find the second one running (not still loading, which a signal kills).
        try await TestCluster.eventually("the second herald consuming", timeout: .seconds(180)) {
            herald.output.contains("consumer started")
        }
        herald.signal(SIGTERM)
        let status = try await herald.waitForExit()
        #expect(status == 0, "exit status \(status); output ends: \(herald.output.suffix(2000))")
        #expect(try setup.redis.probe(["DBSIZE"]).integer == count)
        // Revocation-only events need no exactly-once bookkeeping: none is in the inbox.
        #expect(try setup.postgres.psql("SELECT count(*) FROM herald.processed_events") == "0")
        #expect(appliedBeforeKill > 0)
        for i in [0, 4_321, count - 1] {
            #expect(try setup.redis.probe(["GET", "revoked_user: user-\(i)"]).text == String(1_700_000_000 + i))
        }
    }

    @Test("SIGTERM: clean exit 0 with offsets committed; a restart consumes nothing twice")
    func sigtermCommits() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        // Good events, and bad ones: a bad record consumed twice would be dead-lettered twice.
        var records = Self.revocations(0..<500)
        records += (0..<10).map {
            OutboundRecord(topic: TestCluster.authTopic, key: Array("bad".utf8), value: Array("not json \($0)".utf8))
        }
        try await setup.producer.send(records)

        var herald = try setup.herald("herald-1", group: "e2e-term")
        let inspector = try setup.inspector("e2e-term")
        try await TestCluster.eventually("all applied and dead-lettered") {
            let applied = try setup.redis.probe(["DBSIZE"]).integer ?? 0
            let letters = try await inspector.readAll(TestCluster.authTopic + ".dlq").count
            return applied >= 500 && letters >= 10
        }
        herald.signal(SIGTERM)
        let status = try await herald.waitForExit()
        #expect(status == 0, "exit status \(status); output ends: \(herald.output.suffix(2000))")
        #expect(herald.output.contains("consumer stopped"))

        let committed = try await inspector.committed(TestCluster.authTopic)
        let marks = try await inspector.watermarks(TestCluster.authTopic)
        for (p, mark) in marks { #expect(committed[p] == mark.high, "partition \(p)") }

        // Restart with one new event: only it is consumed; no bad record is dead-lettered again.
        try await setup.producer.send(Self.revocations(500..<501))
        herald = try setup.herald("herald-2", group: "e2e-term")
        try await TestCluster.eventually("the new event") { (try setup.redis.probe(["DBSIZE"]).integer ?? 0) >= 501 }
        try await Task.sleep(for: .seconds(1))
        herald.signal(SIGINT)
        let secondStatus = try await herald.waitForExit()
        #expect(secondStatus == 0, "exit status \(secondStatus); output ends: \(herald.output.suffix(2000))")
        #expect(try await inspector.readAll(TestCluster.authTopic + ".dlq").count == 10)
    }

    @Test("herald broker --rtt-file: the broker slows down and comes back at run time; a client stays connected through both")
    func brokerRoundTripFile() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let file = dir + "/bootstrap"
        let rtt = dir + "/rtt"
        try "400".write(toFile: rtt, atomically: true, encoding: .utf8)
        let broker = try ChildProcess(
            HeraldBinary.path, ["broker", "--partitions", "1", "--bootstrap-file", file, "--rtt-file", rtt],
            environment: ["PATH": "/usr/bin:/bin", "HERALD_LOG_FORMAT": "json"], logPath: dir + "/broker.log")
        defer { broker.signal(SIGKILL) }
        var bootstrap = ""
        try await TestCluster.eventually("broker bootstrap file", timeout: .seconds(30)) {
            bootstrap = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return !bootstrap.isEmpty
        }
        try await TestCluster.eventually("the slow round trip applied") { broker.output.contains(#""rtt_ms":"400""#) }
        let producer = try KafkaProducer(bootstrapServers: bootstrap, logger: TestLogging.logger("e2e.producer"))
        try await producer.send([TestCluster.roleEvent("slow", id: "rtt-1", at: 1_764_000_000)])

        try "not a number".write(toFile: rtt, atomically: true, encoding: .utf8)
        try await TestCluster.eventually("a bad file is named") { broker.output.contains("does not hold a number") }
        try FileManager.default.removeItem(atPath: rtt)
        try await TestCluster.eventually("back to normal") { broker.output.contains(#""rtt_ms":"0""#) }
        try await producer.send([TestCluster.roleEvent("fast", id: "rtt-2", at: 1_764_000_001)])
        await producer.close()
        let inspector = try KafkaInspector(bootstrapServers: bootstrap, groupID: "rtt", logger: TestLogging.logger("e2e.inspector"))
        #expect(try await inspector.readAll(TestCluster.authTopic).count == 2)
        broker.signal(SIGTERM)
        #expect(try await broker.waitForExit() == 0)
    }

    @Test("herald run refuses a database whose schema is behind and says to run herald migrate; herald migrate fixes it")
    func schemaBehind() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let dir = try HeraldBinary.temporaryDirectory()
        let env = ["PATH": "/usr/bin:/bin", "HERALD_DATABASE_URL": pg.url, "HERALD_KAFKA_BROKERS": "127.0.0.1:1"]
            .merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }
        let refused = try ChildProcess(HeraldBinary.path, ["run"], environment: env, logPath: "\(dir)/refused.log")
        #expect(try await refused.waitForExit() == 1)
        #expect(refused.output.contains("herald migrate"))
        let migrate = try ChildProcess(HeraldBinary.path, ["migrate"], environment: env, logPath: "\(dir)/migrate.log")
        #expect(try await migrate.waitForExit() == 0)
        #expect(try pg.psql("SELECT count(*) FROM herald.schema_migrations") == String(HeraldSchema.migrations.count))
        let again = try ChildProcess(HeraldBinary.path, ["migrate"], environment: env, logPath: "\(dir)/again.log")
        #expect(try await again.waitForExit() == 0)
        #expect(again.output.contains("up to date"))
    }

    @Test("a bad configuration stops herald at start-up with a message naming the setting")
    func badConfiguration() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let cases: [(String, String)] = [
            ("HERALD_REDIS_URL", "http://nope"),
            ("HERALD_KAFKA_BROKERS", "no-port"),
            ("HERALD_LOG_LEVEL", "loud"),
            ("HERALD_RETRY_INITIAL", "fast"),
            ("HERALD_MAIL_RATE_LIMITS", "password_reset=lots"),
            ("HERALD_MAIL_MAX_AGE", "password_reset=soon"),
            ("HERALD_LINK_BASE_URL", "ftp://example.com"),
        ]
        for (name, value) in cases {
            let herald = try ChildProcess(
                HeraldBinary.path, ["run"],
                environment: ["PATH": "/usr/bin:/bin", "HERALD_KAFKA_BROKERS": "127.0.0.1:1"].merging([name: value]) { $1 },
                logPath: "\(dir)/\(name).log")
            let status = try await herald.waitForExit()
            #expect(status == 78, "\(name)")
            #expect(herald.output.contains(name), "\(name): \(herald.output)")
        }
        // A daemon that needs the database and has none configured names the setting.
        let noDatabase = try ChildProcess(
            HeraldBinary.path, ["run"], environment: ["PATH": "/usr/bin:/bin", "HERALD_KAFKA_BROKERS": "127.0.0.1:1"],
            logPath: "\(dir)/no-database.log")
        #expect(try await noDatabase.waitForExit() == 78)
        #expect(noDatabase.output.contains("HERALD_DATABASE_URL"))

        // Mail on (the default) needs an SMTP URL, a sender and a link base.
        let database = [
            "PATH": "/usr/bin:/bin", "HERALD_KAFKA_BROKERS": "127.0.0.1:1", "HERALD_DATABASE_URL": "postgresql://127.0.0.1:1/x",
        ]
        let noSMTP = try ChildProcess(HeraldBinary.path, ["run"], environment: database, logPath: "\(dir)/no-smtp.log")
        #expect(try await noSMTP.waitForExit() == 78)
        #expect(noSMTP.output.contains("HERALD_SMTP_URL"))

        // A broken template stops herald with a message naming the file.
        let templates = dir + "/templates"
        try FileManager.default.copyItem(atPath: HeraldBinary.templates, toPath: templates)
        try "{{#recipientName}} never closed".write(
            toFile: templates + "/pt/welcome.subject.mustache", atomically: true, encoding: .utf8)
        let brokenTemplate = try ChildProcess(
            HeraldBinary.path, ["run"],
            environment: database.merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }
                .merging(["HERALD_TEMPLATES_DIR": templates]) { _, b in b },
            logPath: "\(dir)/broken-template.log")
        #expect(try await brokenTemplate.waitForExit() == 78)
        #expect(brokenTemplate.output.contains("pt/welcome.subject.mustache"), "\(brokenTemplate.output)")

        let secret = try ChildProcess(
            HeraldBinary.path, ["run"],
            environment: [
                "PATH": "/usr/bin:/bin", "HERALD_KAFKA_BROKERS": "127.0.0.1:1", "HERALD_REDIS_URL": "redis://:hunter2@host:notaport",
            ],
            logPath: "\(dir)/secret.log")
        #expect(try await secret.waitForExit() == 78)
        #expect(!secret.output.contains("hunter2"))
        #expect(secret.output.contains("HERALD_REDIS_URL"))
    }
}
