import Foundation
import HeraldCore
import HeraldKafka
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// /metrics, /healthz, /readyz and `herald lag` against the built `herald` with real Redis,
/// PostgreSQL and a broker in another process.
@Suite("operations: metrics, health, lag", .serialized, .timeLimit(.minutes(10)))
struct OperationsTests {
    typealias Setup = HeraldProcessTests.Setup

    static func herald(
        _ setup: Setup, _ name: String, group: String, port: Int, environment extra: [String: String] = [:]
    ) throws -> ChildProcess {
        try setup.herald(
            name, group: group,
            environment: [
                "HERALD_HTTP_ADDRESS": "127.0.0.1:\(port)", "HERALD_LAG_INTERVAL": "250ms", "HERALD_RETRY_INITIAL": "100ms",
                "HERALD_RETRY_MAX": "500ms", "HERALD_READINESS_TIMEOUT": "1s", "HERALD_REDIS_CONNECT_TIMEOUT": "500ms",
            ].merging(extra) { _, b in b })
    }

    /// `herald lag --json` for `group`, decoded.
    static func lagCommand(_ setup: Setup, group: String) throws -> [String: Any] {
        let output = try OperationsProbe.run(
            HeraldBinary.path, ["lag", "--json", "--brokers", setup.bootstrap, "--group", group, "--window", "300ms"], input: nil)
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
    }

    @Test("lag while the handler is blocked: grows to N in records, grows in seconds, herald lag agrees; back to 0 after")
    func lagWhileBlocked() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        let group = "ops-lag"
        let port = try TestPorts.free()
        let herald = try Self.herald(setup, "herald", group: group, port: port)
        let probe = OperationsProbe(port: port)

        // Some events through, so the group has committed offsets on both auth partitions, then Redis goes away.
        let first = 10
        try await setup.producer.send(HeraldProcessTests.revocations(0..<first))
        try await TestCluster.eventually("first event applied and ready", every: OperationsProbe.pollInterval) {
            let applied = try setup.redis.probe(["DBSIZE"]).integer ?? 0
            let ready = try probe.health("/readyz").status
            return applied >= first && ready == 200
        }
        try await TestCluster.eventually("lag 0 on 4 partitions", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            return m.samples("herald_kafka_consumer_lag_messages").count == 4 && m.sum("herald_kafka_consumer_lag_messages") == 0
                && m.sum("herald_kafka_consumer_committed_offset") == Double(first)
        }
        try await setup.redis.stop()
        let n = 40
        try await setup.producer.send(HeraldProcessTests.revocations(first..<(first + n)))

        var seconds = 0.0
        try await TestCluster.eventually("exported lag is \(n)", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            seconds = m.samples("herald_kafka_consumer_lag_seconds").map(\.value).max() ?? 0
            return m.sum("herald_kafka_consumer_lag_messages") == Double(n) && seconds > 0
        }
        try await TestCluster.eventually("lag in seconds grows while blocked", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            return (m.samples("herald_kafka_consumer_lag_seconds").map(\.value).max() ?? 0) > seconds
        }
        let metrics = try probe.metrics()
        #expect(metrics.sum("herald_partitions_retrying") >= 1)
        #expect(metrics.sum("herald_kafka_partitions_paused") >= 1)
        #expect(metrics.sum("herald_event_retries_total") >= 1)
        // The blocked partitions hold their records against the default budget's records part.
        #expect(metrics.sum("herald_memory_records_limit_bytes") == Double(32 << 20) / 8 * 5)
        #expect(metrics.sum("herald_memory_records_bytes") > 0)
        #expect(metrics.samples("herald_memory_partitions_paused").count == 1)
        let readiness = try probe.health("/readyz")
        #expect(readiness.status == 503)
        #expect(readiness.checks["redis"] == false)
        #expect(readiness.checks["postgres"] == true)
        #expect(readiness.checks["kafka"] == true)
        #expect(try probe.health("/healthz").status == 200)

        // herald lag, from outside the group, against the metric and against offsets read here.
        let report = try Self.lagCommand(setup, group: group)
        #expect(report["total_lag"] as? Int == n)
        let inspector = try setup.inspector(group)
        var independent: Int64 = 0
        for topic in [TestCluster.userTopic, TestCluster.authTopic] {
            let committed = try await inspector.committed(topic)
            for (p, mark) in try await inspector.watermarks(topic) {
                let c = committed[p] ?? -1
                independent += mark.high - (c >= 0 ? c : mark.low)
            }
        }
        #expect(independent == Int64(n))
        let records = try await inspector.readAll(TestCluster.authTopic)
        let partitions = report["partitions"] as? [[String: Any]] ?? []
        for row in partitions {
            let topic = row["topic"] as? String ?? ""
            let partition = row["partition"] as? Int ?? -1
            let labels = ["topic": topic, "partition": String(partition)]
            let lag = row["lag"] as? Int ?? -1
            #expect(Double(lag) == metrics.value("herald_kafka_consumer_lag_messages", labels), "\(labels)")
            #expect(Double(row["high"] as? Int ?? -1) == metrics.value("herald_kafka_partition_high_watermark", labels))
            // The metric shows where the group resumes: the low watermark while nothing is committed.
            let resume = row["committed"] as? Int ?? row["low"] as? Int ?? -1
            #expect(Double(resume) == metrics.value("herald_kafka_consumer_committed_offset", labels))
            guard lag > 0 else {
                #expect(row["status"] as? String == "OK")
                continue
            }
            #expect(row["status"] as? String == "STALLED", "\(row)")
            // Sampled after the scrape, from the same record: at least the metric's age, and
            // at most the age of that record's timestamp now.
            let reported = row["lag_seconds"] as? Double ?? -1
            let metric = metrics.value("herald_kafka_consumer_lag_seconds", labels) ?? .infinity
            #expect(reported + 0.001 >= metric, "\(labels): herald lag \(reported) s, metric \(metric) s")
            let committed = Int64(row["committed"] as? Int ?? -1)
            let record = try #require(records.first { Int($0.partition) == partition && $0.offset == committed })
            let age = Date().timeIntervalSince1970 - Double(try #require(record.timestamp)) / 1000
            #expect(reported <= age + 0.001, "\(labels): herald lag \(reported) s, the record is \(age) s old")
        }

        // Redis is back: everything is applied, and lag returns to 0 in both units.
        try await setup.redis.start()
        try await TestCluster.eventually("lag back to 0", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            return m.sum("herald_kafka_consumer_lag_messages") == 0 && m.sum("herald_kafka_consumer_lag_seconds") == 0
                && m.sum("herald_partitions_retrying") == 0
        }
        // (Redis restarted without persistence: the first keys are gone, the blocked ones are there.)
        for i in first..<(first + n) {
            #expect(try setup.redis.probe(["GET", "revoked_user: user-\(i)"]).text == String(1_700_000_000 + i))
        }
        let after = try Self.lagCommand(setup, group: group)
        #expect(after["total_lag"] as? Int == 0)
        #expect(after["status"] as? String == "OK")
        try await TestCluster.eventually("ready again", every: OperationsProbe.pollInterval) { try probe.health("/readyz").status == 200 }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("/metrics parses as Prometheus text, counters move as events flow, label sets stay small")
    func metricsParseAndMove() async throws {
        let setup = try await Setup(partitions: 2)
        defer { setup.teardown() }
        let port = try TestPorts.free()
        let herald = try Self.herald(setup, "herald", group: "ops-metrics", port: port)
        let probe = OperationsProbe(port: port)
        try await TestCluster.eventually("metrics served", every: OperationsProbe.pollInterval) { (try? probe.metrics()) != nil }
        let before = try probe.metrics()
        #expect(before.sum("herald_events_total") == 0)

        let good = 30
        let bad = 3
        var records = HeraldProcessTests.revocations(0..<good)
        records += (0..<bad).map {
            OutboundRecord(topic: TestCluster.authTopic, key: Array("bad".utf8), value: Array("not json \($0)".utf8))
        }
        // An event type Herald does not know: counted as "other", never as its own label value.
        records.append(TestCluster.event(["event_type": "SomethingNew\(UUID().uuidString.prefix(8))", "event_id": "x-1"], key: "x"))
        // A welcome mail, so the mail metrics have series.
        records.append(
            TestCluster.event(
                ["event_type": "UserCreated", "event_id": "ops-u1", "user_id": "u1", "username": "ada", "email": "ada@example.com"],
                topic: TestCluster.userTopic, key: "u1"))
        try await setup.producer.send(records)
        try await TestCluster.eventually("counters moved", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            // The assigned-partitions gauge is set by the lag sampler: polled as well, since on
            // a busy machine its first sample can come after the events.
            return m.sum("herald_events_total", where: ["outcome": "applied"]) == Double(good + 1)
                && m.sum("herald_dead_letters_total") == Double(bad + 1) && m.sum("herald_kafka_partitions_assigned") == 4
        }
        let m = try probe.metrics()
        #expect(m.sum("herald_events_total", where: ["outcome": "dead_lettered"]) == Double(bad + 1))
        #expect(m.sum("herald_events_total", where: ["type": "UserSessionsRevoked", "outcome": "applied"]) == Double(good))
        #expect(m.sum("herald_handler_duration_seconds_count") >= 1)
        #expect(m.sum("herald_kafka_rebalances_total", where: ["kind": "assigned"]) >= 1)
        #expect(m.sum("herald_kafka_partitions_assigned") == 4)

        // Names follow the conventions; labels come from small sets, never ids.
        let allowedLabels: Set<String> = [
            "topic", "partition", "type", "outcome", "kind", "status", "dependency", "final", "reason", "le", "relay",
        ]
        for family in m.families where family.name.hasPrefix("herald_") {
            if family.type == "counter" { #expect(family.samples.allSatisfy { $0.name.hasSuffix("_total") }, "\(family.name)") }
            #expect(family.samples.count <= 64, "\(family.name) has \(family.samples.count) series")
            for sample in family.samples {
                #expect(Set(sample.labels.keys).isSubset(of: allowedLabels), "\(sample.name) \(sample.labels)")
                for value in sample.labels.values {
                    #expect(
                        !value.hasPrefix("user-") && !value.hasPrefix("e2e-") && !value.hasPrefix("SomethingNew"),
                        "\(sample.name) \(sample.labels)")
                }
            }
        }
        #expect(m.samples("herald_events_total").contains { $0.labels["type"] == "other" })

        // Every metric an alert or a Grafana panel in ops/ uses is one this herald exports.
        try await TestCluster.eventually("a mail outcome counted", every: OperationsProbe.pollInterval) {
            try probe.metrics().sum("herald_mail_outcomes_total", where: ["status": "sent"]) >= 1
        }
        let names = Set(try probe.metrics().families.flatMap(\.samples).map(\.name)).sorted()
        let file = setup.dir + "/exported-metrics.txt"
        try Data(names.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: file))
        let check = try OperationsProbe.run("/usr/bin/python3", [OpsKitTests.checker, "--exported", file], input: nil)
        #expect(check.contains(" 0 failed"), "\(check)")
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }

    @Test("/readyz turns not ready when Redis or PostgreSQL is down, and ready again after; /healthz stays up; emails masked in logs")
    func readiness() async throws {
        let setup = try await Setup(partitions: 1)
        defer { setup.teardown() }
        let port = try TestPorts.free()
        let herald = try Self.herald(
            setup, "herald", group: "ops-ready", port: port, environment: ["HERALD_LOG_MASK_EMAILS": "true"])
        let probe = OperationsProbe(port: port)
        try await TestCluster.eventually("ready", every: OperationsProbe.pollInterval) { try probe.health("/readyz").status == 200 }
        #expect(try probe.health("/readyz").checks == ["kafka": true, "redis": true, "postgres": true])

        try await setup.redis.stop()
        try await TestCluster.eventually("not ready: redis", every: OperationsProbe.pollInterval) {
            let r = try probe.health("/readyz")
            return r.status == 503 && r.checks["redis"] == false && r.checks["postgres"] == true
        }
        #expect(try probe.health("/healthz").status == 200)
        try await setup.redis.start()
        try await TestCluster.eventually("ready after redis", every: OperationsProbe.pollInterval) {
            try probe.health("/readyz").status == 200
        }
        try await TestCluster.eventually("redis errors and a reconnect counted", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            return m.sum("herald_dependency_errors_total", where: ["dependency": "redis"]) >= 1
                && m.sum("herald_dependency_reconnects_total", where: ["dependency": "redis"]) >= 1
        }

        try await setup.postgres.stop()
        try await TestCluster.eventually("not ready: postgres", every: OperationsProbe.pollInterval) {
            let r = try probe.health("/readyz")
            return r.status == 503 && r.checks["postgres"] == false && r.checks["redis"] == true
        }
        try await TestCluster.eventually("herald_ready is 0", every: OperationsProbe.pollInterval) {
            try probe.metrics().sum("herald_ready") == 0
        }
        try await setup.postgres.start()
        try await TestCluster.eventually("ready after postgres", every: OperationsProbe.pollInterval) {
            try probe.health("/readyz").status == 200
        }
        try await TestCluster.eventually("herald_ready is 1", every: OperationsProbe.pollInterval) {
            try probe.metrics().sum("herald_ready") == 1
        }
        // The start-up line names the sender (HERALD_MAIL_FROM): masked.
        #expect(herald.output.contains("n***@herald.test"), "\(herald.output.prefix(3000))")
        #expect(!herald.output.contains("no-reply@herald.test"))
        try await TestCluster.eventually("postgres errors and a reconnect counted", every: OperationsProbe.pollInterval) {
            let m = try probe.metrics()
            return m.sum("herald_dependency_errors_total", where: ["dependency": "postgres"]) >= 1
                && m.sum("herald_dependency_reconnects_total", where: ["dependency": "postgres"]) >= 1
        }
        herald.signal(SIGTERM)
        #expect(try await herald.waitForExit() == 0)
    }
}
