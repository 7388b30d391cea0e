import Foundation
import HeraldCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `herald` as a process at the edges of its life: which broker it may use (fail closed),
/// signals while it starts and when it stops, secrets in refused Kafka properties, a
/// `make run` tree's files, and a client command against a broker that is not there.
@Suite("herald: brokers, start-up and shutdown", .serialized, .timeLimit(.minutes(10)))
struct StartupShutdownTests {
    static let base = ["PATH": "/usr/bin:/bin", "HERALD_LOG_FORMAT": "json"]

    /// One JSON log line (every value is a string).
    struct LogLine {
        let fields: [String: String]
        var level: String { fields["level"] ?? "" }
        var logger: String { fields["logger"] ?? "" }
        var msg: String { fields["msg"] ?? "" }
    }

    static func lines(_ output: String) -> [LogLine] {
        output.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] else { return nil }
            return LogLine(fields: object)
        }
    }

    /// The index of the first line after `start` whose message is `msg`, or nil.
    static func index(of msg: String, in lines: [LogLine], after start: Int = -1, where extra: (LogLine) -> Bool = { _ in true }) -> Int? {
        lines.indices.first { $0 > start && lines[$0].msg == msg && extra(lines[$0]) }
    }

    static func herald(
        _ arguments: [String], _ environment: [String: String], dir: String, name: String, in cwd: String? = nil
    ) throws -> ChildProcess {
        try ChildProcess(
            HeraldBinary.path, arguments, environment: environment, logPath: "\(dir)/\(name).log", currentDirectory: cwd)
    }

    @Test(
        "HERALD_KAFKA_BROKERS unset: herald run and the outbox relay refuse to start (78) and name it; the relay refuses the embedded broker"
    )
    func brokersFailClosed() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let bootstrapFile = dir + "/kafka-bootstrap"
        let configured = Self.base.merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }.merging([
            "HERALD_DATABASE_URL": "postgresql://herald@127.0.0.1:1/x", "HERALD_EMBEDDED_BOOTSTRAP_FILE": bootstrapFile,
        ]) { $1 }

        let run = try Self.herald(["run"], configured, dir: dir, name: "run-unset")
        #expect(try await run.waitForExit() == 78)
        #expect(run.output.contains("HERALD_KAFKA_BROKERS"), "\(run.output)")
        #expect(run.output.contains("embedded"), "the message says how to ask for the development broker: \(run.output)")

        let relay = try Self.herald(["outbox", "relay"], configured, dir: dir, name: "relay-unset")
        #expect(try await relay.waitForExit() == 78)
        #expect(relay.output.contains("HERALD_KAFKA_BROKERS"), "\(relay.output)")

        // The embedded broker would acknowledge outbox rows, which are then marked processed, and forget them.
        let embedded = configured.merging(["HERALD_KAFKA_BROKERS": "embedded"]) { $1 }
        let runRelaying = try Self.herald(
            ["run"], embedded.merging(["HERALD_OUTBOX_ENABLED": "true"]) { $1 }, dir: dir, name: "run-outbox-embedded")
        #expect(try await runRelaying.waitForExit() == 78)
        for name in ["HERALD_KAFKA_BROKERS", "HERALD_OUTBOX_ENABLED", "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER"] {
            #expect(runRelaying.output.contains(name), "\(name): \(runRelaying.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: bootstrapFile), "refused before any broker started")
        // So would the mail events relay (HERALD_MAIL_EVENTS_ENABLED): the same rule.
        let runMailEvents = try Self.herald(
            ["run"], embedded.merging(["HERALD_MAIL_EVENTS_ENABLED": "true"]) { $1 }, dir: dir, name: "run-mail-events-embedded")
        #expect(try await runMailEvents.waitForExit() == 78)
        for name in ["HERALD_KAFKA_BROKERS", "HERALD_MAIL_EVENTS_ENABLED", "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER"] {
            #expect(runMailEvents.output.contains(name), "\(name): \(runMailEvents.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: bootstrapFile), "refused before any broker started")

        try "127.0.0.1:1\n".write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
        let relayEmbedded = try Self.herald(["outbox", "relay"], embedded, dir: dir, name: "relay-embedded")
        #expect(try await relayEmbedded.waitForExit() == 78)
        for name in ["HERALD_KAFKA_BROKERS", "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER", "herald outbox relay"] {
            #expect(relayEmbedded.output.contains(name), "\(name): \(relayEmbedded.output)")
        }
    }

    @Test("HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER=true: the relay publishes to the embedded broker's address")
    func relayAllowedOnEmbedded() async throws {
        let fixture = try await OutboxFixture.start()
        _ = try await fixture.insert([("User", "00000000-0000-0000-0000-000000000001", "UserCreated", "{}")])
        let dir = try HeraldBinary.temporaryDirectory()
        try (fixture.cluster.bootstrap + "\n").write(toFile: dir + "/kafka-bootstrap", atomically: true, encoding: .utf8)
        let relay = try Self.herald(
            ["outbox", "relay", "--once"],
            Self.base.merging([
                "HERALD_DATABASE_URL": fixture.pg.url, "HERALD_KAFKA_BROKERS": "embedded",
                "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER": "true", "HERALD_EMBEDDED_BOOTSTRAP_FILE": dir + "/kafka-bootstrap",
            ]) { $1 }, dir: dir, name: "relay")
        #expect(try await relay.waitForExit(timeout: .seconds(180)) == 0, "\(relay.output.suffix(2000))")
        #expect(relay.output.contains(#""published":1"#), "\(relay.output.suffix(2000))")
        #expect(try fixture.count("status = 'processed'") == 1)
        await fixture.shutdown()
    }

    @Test(
        "HERALD_KAFKA_BROKERS=embedded (outbox relay allowed): an idle SIGTERM drains, logs the final commit, stops the lag sampler before the broker, removes the bootstrap file, exits 0"
    )
    func embeddedIdleStop() async throws {
        let redis = try await RedisServer.start()
        defer { redis.shutdown() }
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        // The outbox relay runs too, told that the embedded broker is acceptable here.
        _ = try pg.psql(OutboxFixture.seedsTable)
        let dir = try HeraldBinary.temporaryDirectory()
        let bootstrapFile = dir + "/kafka-bootstrap"
        let environment = Self.base.merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }.merging([
            "HERALD_OUTBOX_ENABLED": "true", "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER": "true",
            "HERALD_KAFKA_BROKERS": "embedded", "HERALD_EMBEDDED_BOOTSTRAP_FILE": bootstrapFile, "HERALD_REDIS_URL": redis.url,
            "HERALD_DATABASE_URL": pg.url, "HERALD_DATABASE_AUTO_MIGRATE": "true", "HERALD_COMMIT_INTERVAL": "200ms",
            // The sampler reads lag often: if its client outlived the broker, it would complain.
            "HERALD_LAG_INTERVAL": "100ms",
        ]) { $1 }
        let herald = try Self.herald(["run"], environment, dir: dir, name: "herald")
        try await TestCluster.eventually("partitions assigned", timeout: .seconds(180)) {
            herald.output.contains("partitions assigned")
        }
        #expect(herald.output.contains("embedded broker started"))
        #expect(herald.output.contains("outbox relay started"))
        #expect(FileManager.default.fileExists(atPath: bootstrapFile))

        // A client command finds the embedded broker through the bootstrap file.
        let publish = try Self.herald(
            ["publish", "--example", "RoleDeleted", "--set", "role=editor"],
            ["PATH": "/usr/bin:/bin", "HERALD_EMBEDDED_BOOTSTRAP_FILE": bootstrapFile], dir: dir, name: "publish")
        #expect(try await publish.waitForExit() == 0, "\(publish.output)")
        try await TestCluster.eventually("the event applied") {
            try redis.probe(["EXISTS", "invalid_role: editor"]).integer == 1
        }

        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0, "\(herald.output.suffix(3000))")
        let lines = Self.lines(herald.output)
        let signal = try #require(Self.index(of: "SIGTERM received: stopping", in: lines), "\(herald.output.suffix(3000))")
        let draining = try #require(Self.index(of: "consumer stopping: draining in-flight work", in: lines, after: signal))
        let finalCommit = try #require(
            lines.indices.first { $0 > draining && $0 > signal && lines[$0].fields["reason"] == "shutdown" && lines[$0].level == "info" },
            "the final commit is logged at info")
        let stopped = try #require(Self.index(of: "consumer stopped", in: lines, after: finalCommit))
        let end = try #require(Self.index(of: "herald stopped", in: lines, after: stopped))
        #expect(end == lines.count - 1, "nothing is logged after herald stopped: \(lines[end...].map(\.msg))")
        let complaints = lines[signal...].filter { ["warning", "error", "critical"].contains($0.level) }
        #expect(complaints.isEmpty, "a quiet shutdown: \(complaints.map { "\($0.logger): \($0.msg)" })")
        #expect(!lines[stopped...].contains { $0.logger == "herald.kafka.lag" }, "the lag sampler stopped before the broker")
        #expect(Self.index(of: "outbox relay stopped", in: lines, after: stopped) != nil)
        #expect(!FileManager.default.fileExists(atPath: bootstrapFile), "the bootstrap file is removed at exit")
    }

    @Test("SIGTERM or SIGINT while herald waits for an unreachable PostgreSQL: it stops there and exits 0")
    func signalDuringStartup() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let port = try TestPorts.free()
        let environment = Self.base.merging(HeraldBinary.fileMail(dir + "/mail")) { a, _ in a }.merging([
            "HERALD_DATABASE_URL": "postgresql://herald@127.0.0.1:\(port)/postgres", "HERALD_DATABASE_CONNECT_TIMEOUT": "1s",
        ]) { $1 }
        for (signal, name, brokers) in [(SIGTERM, "SIGTERM", "127.0.0.1:1"), (SIGINT, "SIGINT", "embedded")] {
            let bootstrapFile = "\(dir)/\(name)-bootstrap"
            let herald = try Self.herald(
                ["run"], environment.merging(["HERALD_KAFKA_BROKERS": brokers, "HERALD_EMBEDDED_BOOTSTRAP_FILE": bootstrapFile]) { $1 },
                dir: dir, name: name)
            try await TestCluster.eventually("\(name): waiting for PostgreSQL", timeout: .seconds(180)) {
                herald.output.contains("database unavailable; retrying")
            }
            herald.signal(signal)
            #expect(try await herald.waitForExit() == 0, "\(name): \(herald.output.suffix(3000))")
            let lines = Self.lines(herald.output)
            let received = try #require(
                Self.index(of: "\(name) received while starting: stopping before anything runs", in: lines), "\(herald.output.suffix(3000))"
            )
            #expect(Self.index(of: "herald stopped during start-up", in: lines, after: received) == lines.count - 1)
            #expect(!lines.contains { $0.msg == "consumer started" || $0.msg.hasPrefix("serving /metrics") }, "nothing else started")
            #expect(!FileManager.default.fileExists(atPath: bootstrapFile), "\(name): no embedded broker's file left behind")
        }
    }

    @Test("a refused librdkafka property is named, never a secret's value (herald lag and publish, as herald run)")
    func refusedPropertySecrets() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let cases: [(variable: String, value: String, property: String, secret: Bool)] = [
            // A secret-looking name librdkafka does not know.
            ("HERALD_KAFKA_PROPERTY_SASL_PASSWORDS", "hunter2-lag", "sasl.passwords", true),
            // A misspelt secret: unknown names never show their value either.
            ("HERALD_KAFKA_PROPERTY_SASL_PASWORD", "hunter3-typo", "sasl.pasword", true),
            // An ordinary property with a bad value still shows it.
            ("HERALD_KAFKA_PROPERTY_FETCH_WAIT_MAX_MS", "soon", "fetch.wait.max.ms", false),
        ]
        for c in cases {
            for arguments in [["lag", "--brokers", "127.0.0.1:1"], ["publish", "--brokers", "127.0.0.1:1", "--example", "RoleDeleted"]] {
                let herald = try Self.herald(arguments, Self.base.merging([c.variable: c.value]) { $1 }, dir: dir, name: UUID().uuidString)
                let what = "\(arguments[0]) \(c.variable)"
                #expect(try await herald.waitForExit() == 78, "\(what): \(herald.output)")
                #expect(herald.output.contains(c.property), "\(what): \(herald.output)")
                #expect(herald.output.contains(c.value) == !c.secret, "\(what): \(herald.output)")
            }
        }
    }

    @Test("herald publish against a stopped make run fails fast (75) naming the address and asking whether make run is running")
    func publishWithoutBroker() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        let address = "127.0.0.1:\(try TestPorts.free())"
        try (address + "\n").write(toFile: dir + "/kafka-bootstrap", atomically: true, encoding: .utf8)
        let publish = try Self.herald(
            ["publish", "--example", "RoleDeleted"], ["PATH": "/usr/bin:/bin", "HERALD_EMBEDDED_BOOTSTRAP_FILE": dir + "/kafka-bootstrap"],
            dir: dir, name: "publish")
        #expect(try await publish.waitForExit(timeout: .seconds(180)) == 75, "\(publish.output)")
        #expect(publish.output.contains(address), "\(publish.output)")
        #expect(publish.output.contains("make run"), "\(publish.output)")
        #expect(!publish.output.contains("published"), "\(publish.output)")
    }

    @Test("in a make run tree, migrate and mail use var/postgres/url when HERALD_DATABASE_URL is unset, and say so")
    func makeRunDatabase() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.shutdown() }
        let tree = try HeraldBinary.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: tree + "/var/postgres", withIntermediateDirectories: true)
        try (pg.url + "\n").write(toFile: tree + "/var/postgres/url", atomically: true, encoding: .utf8)
        let environment = ["PATH": "/usr/bin:/bin"]

        let migrate = try Self.herald(["migrate"], environment, dir: tree, name: "migrate", in: tree)
        #expect(try await migrate.waitForExit() == 0, "\(migrate.output)")
        #expect(migrate.output.contains("var/postgres/url"), "\(migrate.output)")
        let list = try Self.herald(["mail", "list"], environment, dir: tree, name: "mail-list", in: tree)
        #expect(try await list.waitForExit() == 0, "\(list.output)")
        #expect(list.output.contains("var/postgres/url"), "\(list.output)")

        // Elsewhere, nothing to fall back on: the setting is named.
        let elsewhere = try HeraldBinary.temporaryDirectory()
        let missing = try Self.herald(["mail", "list"], environment, dir: elsewhere, name: "mail-list", in: elsewhere)
        #expect(try await missing.waitForExit() == 78)
        #expect(missing.output.contains("HERALD_DATABASE_URL"), "\(missing.output)")
    }
}
