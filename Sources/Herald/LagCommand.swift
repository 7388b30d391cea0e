import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldRuntime
import HeraldSettings
import Logging

struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "Show a consumer group's committed offsets, high watermarks, lag in records and seconds, and a status per partition.",
        discussion: """
            Reads offsets without joining the group, so it is safe beside live consumers. \
            Defaults to HERALD_KAFKA_GROUP and the user and auth topics. Samples twice, --window apart: \
            OK (no lag, or the group commits and keeps up), LAGGING (the group commits but lag grew), \
            STALLED (lag while the committed offset did not move), STOPPED (lag and nothing committed). \
            Lag in seconds is the age of the record at the committed offset (now minus its Kafka timestamp).
            """)

    @Option(help: "Bootstrap servers (host:port,...).")
    var brokers: String?

    @Option(help: "Consumer group (default HERALD_KAFKA_GROUP).")
    var group: String?

    @Option(name: .customLong("topic"), help: "Topic (repeatable; default: the user and auth topics).")
    var topics: [String] = []

    @Option(help: "Time between the two samples a status is judged on (e.g. 3s, 500ms).")
    var window = "3s"

    @Flag(help: "Print JSON (one object per line with --watch).")
    var json = false

    @Flag(help: "Refresh every window until interrupted.")
    var watch = false

    func run() async throws {
        let settings = try Environment.settings()
        let kafka = settings.kafka
        HeraldLogging.bootstrap(format: settings.log.format, level: "error")
        guard let windowDuration = Duration(parsing: window), windowDuration > .zero else {
            throw ValidationError("--window: expected a positive duration such as 3s or 500ms")
        }
        let address = try Environment.brokers(kafka, override: brokers)
        let groupID = group ?? kafka.groupID
        // The same secret properties as `herald run`: a refused one is named, its value never shown.
        let inspector = try KafkaInspector(
            bootstrapServers: address.servers, groupID: groupID,
            properties: kafka.properties.merging(KafkaInspector.lagProperties) { _, ours in ours },
            secretProperties: kafka.secretProperties, logger: Logger(label: "herald.lag"))
        try await Environment.requireReachable(address, kafka)
        var partitions: [(topic: String, partition: Int32)] = []
        for topic in topics.isEmpty ? [kafka.userTopic, kafka.authTopic] : topics {
            let count = try await inspector.partitionCount(topic)
            partitions += (0..<Int32(count)).map { (topic, $0) }
        }
        var first = try await inspector.lag(partitions)
        repeat {
            try await Task.sleep(for: windowDuration)
            let last = try await inspector.lag(partitions)
            let report = LagReport(group: groupID, window: windowDuration, first: first, last: last)
            // Written straight to the descriptor: with --watch a pipe reader sees each report at once.
            let text = json ? try report.json() : (watch ? "\u{1B}[2J\u{1B}[H" : "") + report.table()
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
            first = last
        } while watch
    }
}

/// `herald lag`'s two outputs of a report (`LagReport`: the statuses are judged in HeraldKafka).
extension LagReport {
    func json() throws -> String {
        let partitions: [[String: Any]] = rows.map { r in
            [
                "topic": r.lag.topic, "partition": Int(r.lag.partition), "low": r.lag.low, "high": r.lag.high,
                "committed": JSONOutput.nullable(r.lag.committed), "lag": r.lag.lagMessages,
                "lag_seconds": (r.lag.lagSeconds * 1000).rounded() / 1000, "status": r.status.rawValue,
            ]
        }
        let object: [String: Any] = [
            "group": group, "window_seconds": window.seconds, "sampled_at": RFC3339.format(EventTime.now()),
            "partitions": partitions, "total_lag": totalLag, "max_lag_seconds": (maxLagSeconds * 1000).rounded() / 1000,
            "status": status.rawValue,
        ]
        return try JSONOutput.line(object)
    }

    func table() -> String {
        var lines = ["group \(group)"]
        lines.append(
            "TOPIC".padding(toLength: 28, withPad: " ", startingAt: 0)
                + "PART        LOW       HIGH  COMMITTED        LAG    LAG (s)  STATUS")
        for (lag, status) in rows {
            let cells = [
                String(lag.partition).leftPad(4), String(lag.low).leftPad(10), String(lag.high).leftPad(10),
                (lag.committed.map(String.init) ?? "-").leftPad(10), String(lag.lagMessages).leftPad(10),
                String(format: "%.1f", lag.lagSeconds).leftPad(10), status.rawValue,
            ]
            lines.append(lag.topic.padding(toLength: 28, withPad: " ", startingAt: 0) + cells.joined(separator: " "))
        }
        lines.append("total lag \(totalLag) records, oldest \(String(format: "%.1f", maxLagSeconds)) s, status \(status.rawValue)")
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
