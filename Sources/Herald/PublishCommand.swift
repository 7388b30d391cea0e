import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldRuntime
import HeraldSettings
import Logging

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish events to Kafka: an example of a contract event, JSON given inline, or JSON lines from a file.",
        discussion: """
            Examples:
              herald publish --example RoleDeleted --set role=editor
              herald publish --topic auth_service_topic '{"event_type":"UserSessionsRevoked","user_id":"42"}'
              herald publish --topic auth_service_topic --file events.jsonl
            Brokers: --brokers, else HERALD_KAFKA_BROKERS, else the address the embedded broker \
            wrote to HERALD_EMBEDDED_BOOTSTRAP_FILE (default var/kafka-bootstrap). \
            Records are produced idempotently and the command waits for every acknowledgement. \
            When no broker answers within 5 s it stops (exit 75) naming the address.
            """)

    @Option(help: "Bootstrap servers (host:port,...).")
    var brokers: String?

    @Option(help: "Topic to publish to (default: the example's topic).")
    var topic: String?

    @Option(help: "Publish a generated example of this contract event type (fresh id and time).")
    var example: String?

    @Option(name: .customLong("set"), help: "With --example: override a payload field (field=value; repeatable).")
    var overrides: [String] = []

    @Option(help: "Sets the ce_type header.")
    var type: String?

    @Option(help: "Record key.")
    var key: String?

    @Option(name: .customLong("header"), help: "Header key=value (repeatable).")
    var headers: [String] = []

    @Option(help: "Read one JSON payload per line from this file ('-' for standard input).")
    var file: String?

    @Option(help: "Publish each payload this many times (with --example, each with a fresh id).")
    var count: Int = 1

    @Argument(help: "JSON payloads.")
    var payloads: [String] = []

    func validate() throws {
        let sources = [example != nil, file != nil, !payloads.isEmpty].filter { $0 }.count
        guard sources == 1 else { throw ValidationError("give exactly one of --example, --file or payload arguments") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        if example == nil, topic == nil { throw ValidationError("--topic is required unless --example is given") }
        if example == nil, !overrides.isEmpty { throw ValidationError("--set only applies to --example") }
    }

    func run() async throws {
        let settings = try Environment.settings()
        let kafka = settings.kafka
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level == "info" ? "warning" : settings.log.level)
        let address = try Environment.brokers(kafka, override: brokers)
        let bootstrap = address.servers

        var extraHeaders: [MessageHeader] = try headers.map { pair in
            guard let eq = pair.firstIndex(of: "=") else { throw ValidationError("--header expects key=value") }
            return MessageHeader(String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
        }
        if let type { extraHeaders.append(MessageHeader("ce_type", type)) }

        var records: [OutboundRecord] = []
        if let example {
            guard let sample = EventExample(type: example) else {
                throw ValidationError("unknown event type \(example); known: \(EventExample.types.joined(separator: ", "))")
            }
            let fields = try overrides.map { pair -> (String, String) in
                guard let eq = pair.firstIndex(of: "=") else { throw ValidationError("--set expects field=value") }
                return (String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
            }
            let target = topic ?? kafka.topic[sample.topic]!
            for _ in 0..<count {
                let payload = try sample.payload(overrides: fields)
                records.append(
                    OutboundRecord(topic: target, key: Array((key ?? sample.key(payload)).utf8), value: payload, headers: extraHeaders))
            }
        } else {
            let lines: [String]
            if let file {
                let text =
                    file == "-"
                    ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    : try String(contentsOfFile: file, encoding: .utf8)
                lines = text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            } else {
                lines = payloads
            }
            for _ in 0..<count {
                for line in lines {
                    records.append(
                        OutboundRecord(topic: topic!, key: key.map { Array($0.utf8) }, value: Array(line.utf8), headers: extraHeaders))
                }
            }
        }

        // A stopped broker would otherwise keep the records queued for minutes (message.timeout.ms).
        try await Environment.requireReachable(address, kafka)
        let producer = try KafkaProducer(
            bootstrapServers: bootstrap, properties: kafka.properties, secretProperties: kafka.secretProperties,
            clientID: "herald-publish",
            logger: Logger(label: "herald.publish"))
        var sent = 0
        do {
            while sent < records.count {
                let chunk = Array(records[sent..<min(records.count, sent + 50_000)])
                try await producer.send(chunk)
                sent += chunk.count
            }
        } catch {
            await producer.close()
            throw HeraldCLIError("published \(sent) of \(records.count) record(s), then: \(error)")
        }
        await producer.close()
        let topics = Set(records.map(\.topic)).sorted().joined(separator: ", ")
        print("published \(sent) record(s) to \(topics)")
        if records.count == 1, let value = records[0].value {
            print(String(decoding: value, as: UTF8.self))
        }
    }
}
