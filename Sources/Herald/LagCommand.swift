import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import Logging

struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "Show a consumer group's committed offsets, high watermarks and lag per partition.",
        discussion: """
            Reads offsets without joining the group, so it is safe beside live consumers. \
            Defaults to HERALD_KAFKA_GROUP and the user and auth topics.
            """)

    @Option(help: "Bootstrap servers (host:port,...).")
    var brokers: String?

    @Option(help: "Consumer group (default HERALD_KAFKA_GROUP).")
    var group: String?

    @Option(name: .customLong("topic"), help: "Topic (repeatable; default: the user and auth topics).")
    var topics: [String] = []

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let config = Environment.configuration()
        HeraldLogging.bootstrap(format: config.logFormat, level: "error")
        let bootstrap = try Environment.brokers(config, override: brokers)
        let groupID = group ?? config.kafka.groupID
        let inspector = try KafkaInspector(
            bootstrapServers: bootstrap, groupID: groupID, properties: config.kafka.properties,
            logger: Logger(label: "herald.lag"))
        var rows: [[String: Any]] = []
        var total: Int64 = 0
        for topic in topics.isEmpty ? [config.kafka.userTopic, config.kafka.authTopic] : topics {
            let marks = try await inspector.watermarks(topic)
            let committed = try await inspector.committed(topic)
            for p in marks.keys.sorted() {
                let mark = marks[p]!
                let c = committed[p] ?? -1
                // With nothing committed, a new member starts at the low watermark (earliest).
                let lag = max(0, mark.high - (c >= 0 ? c : mark.low))
                total += lag
                rows.append([
                    "topic": topic, "partition": Int(p), "low": mark.low, "high": mark.high, "committed": c >= 0 ? c as Any : NSNull(),
                    "lag": lag,
                ])
            }
        }
        if json {
            let object: [String: Any] = ["group": groupID, "partitions": rows, "total_lag": total]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("group \(groupID)")
        print("TOPIC".padding(toLength: 28, withPad: " ", startingAt: 0) + "PART        LOW       HIGH  COMMITTED        LAG")
        for r in rows {
            let committed = (r["committed"] as? Int64).map(String.init) ?? "-"
            print(
                (r["topic"] as! String).padding(toLength: 28, withPad: " ", startingAt: 0)
                    + [
                        String(r["partition"] as! Int), String(r["low"] as! Int64), String(r["high"] as! Int64), committed,
                        String(r["lag"] as! Int64),
                    ]
                    .map { $0.leftPad(4) }.enumerated().map { $0.offset == 0 ? $0.element : " " + $0.element.leftPad(10) }.joined())
        }
        print("total lag \(total)")
    }
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
