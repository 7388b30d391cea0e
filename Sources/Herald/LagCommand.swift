import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
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

    /// The inspector reads one record per lagging partition for its timestamp: keep fetches small.
    static let inspectorProperties = [
        "max.partition.fetch.bytes": "65536", "fetch.max.bytes": "1048576", "queued.min.messages": "1",
    ]

    enum Status: String, Comparable {
        case ok = "OK", lagging = "LAGGING", stalled = "STALLED", stopped = "STOPPED"

        private var rank: Int { [.ok: 0, .lagging: 1, .stalled: 2, .stopped: 3][self]! }
        static func < (a: Status, b: Status) -> Bool { a.rank < b.rank }

        /// Burrow's idea on two samples of one partition, `first` taken a window before `last`.
        static func judge(first: PartitionLag, last: PartitionLag) -> Status {
            if last.lagMessages == 0 { return .ok }
            guard let committed = last.committed else { return .stopped }
            if first.committed == committed { return .stalled }
            return last.lagMessages > first.lagMessages ? .lagging : .ok
        }
    }

    func run() async throws {
        let config = Environment.configuration()
        HeraldLogging.bootstrap(format: config.logFormat, level: "error")
        guard let windowDuration = parseDuration(window), windowDuration > .zero else {
            throw ValidationError("--window: expected a positive duration such as 3s or 500ms")
        }
        let address = try Environment.brokers(config, override: brokers)
        let groupID = group ?? config.kafka.groupID
        // The same secret properties as `herald run`: a refused one is named, its value never shown.
        let inspector = try KafkaInspector(
            bootstrapServers: address.servers, groupID: groupID,
            properties: config.kafka.properties.merging(Self.inspectorProperties) { _, ours in ours },
            secretProperties: config.kafka.secretProperties, logger: Logger(label: "herald.lag"))
        try await Environment.requireReachable(address, config)
        var partitions: [(topic: String, partition: Int32)] = []
        for topic in topics.isEmpty ? [config.kafka.userTopic, config.kafka.authTopic] : topics {
            let count = try await inspector.partitionCount(topic)
            partitions += (0..<Int32(count)).map { (topic, $0) }
        }
        var first = try await inspector.lag(partitions)
        repeat {
            try await Task.sleep(for: windowDuration)
            let last = try await inspector.lag(partitions)
            let report = Report(group: groupID, window: windowDuration, first: first, last: last)
            // Written straight to the descriptor: with --watch a pipe reader sees each report at once.
            let text = json ? try report.json() : (watch ? "\u{1B}[2J\u{1B}[H" : "") + report.table()
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
            first = last
        } while watch
    }

    struct Report {
        let group: String
        let window: Duration
        let rows: [(lag: PartitionLag, status: Status)]

        init(group: String, window: Duration, first: [PartitionLag], last: [PartitionLag]) {
            self.group = group
            self.window = window
            rows = zip(first, last).map { ($1, Status.judge(first: $0, last: $1)) }
        }

        var totalLag: Int64 { rows.reduce(0) { $0 + $1.lag.lagMessages } }
        var maxLagSeconds: Double { rows.map(\.lag.lagSeconds).max() ?? 0 }
        var status: Status { rows.map(\.status).max() ?? .ok }

        func json() throws -> String {
            let partitions: [[String: Any]] = rows.map { r in
                [
                    "topic": r.lag.topic, "partition": Int(r.lag.partition), "low": r.lag.low, "high": r.lag.high,
                    "committed": JSONOutput.nullable(r.lag.committed), "lag": r.lag.lagMessages,
                    "lag_seconds": (r.lag.lagSeconds * 1000).rounded() / 1000, "status": r.status.rawValue,
                ]
            }
            let object: [String: Any] = [
                "group": group, "window_seconds": Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18,
                "sampled_at": RFC3339.format(EventTime.now()), "partitions": partitions, "total_lag": totalLag,
                "max_lag_seconds": (maxLagSeconds * 1000).rounded() / 1000, "status": status.rawValue,
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
            lines.append(
                "total lag \(totalLag) records, oldest \(String(format: "%.1f", maxLagSeconds)) s, status \(status.rawValue)")
            return lines.joined(separator: "\n")
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
