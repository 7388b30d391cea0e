import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldRuntime
import HeraldSettings
import Logging
import ServiceLifecycle

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run only the embedded Kafka broker (librdkafka's mock cluster), for tests, benchmarks and kcat.",
        discussion: """
            Creates the catalogue's topics and their dead-letter topics, writes the bootstrap \
            address to --bootstrap-file, prints it, and serves until SIGTERM or SIGINT (then removes the file). \
            Data lives in memory; the mock keeps only the newest ~5 MB per partition. \
            With --rtt-file, the broker reads that file every 200 ms: a number of milliseconds \
            delays every response by that much (a slow broker, for fault injection); 0, an \
            empty or a missing file brings it back to normal.
            """)

    @Option(help: "Partitions per topic.")
    var partitions: Int = 4

    @Option(help: "Extra topics to create (repeatable).")
    var topic: [String] = []

    @Option(help: "Where to write the bootstrap address (default: HERALD_EMBEDDED_BOOTSTRAP_FILE or var/kafka-bootstrap).")
    var bootstrapFile: String?

    @Option(help: "A file holding a round-trip time in milliseconds, read every 200 ms (missing or 0: normal).")
    var rttFile: String?

    func validate() throws {
        guard (1...1024).contains(partitions) else { throw ValidationError("--partitions must be in 1...1024") }
    }

    func run() async throws {
        let settings = try Environment.settings()
        let kafka = settings.kafka
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level)
        let logger = Logger(label: "herald.embedded-broker")
        let broker = try EmbeddedBroker(logger: logger)
        var topics = [kafka.userTopic, kafka.authTopic]
        topics += topics.map { kafka.deadLetterTopic(for: $0) }
        topics += topic
        for t in topics { try broker.createTopic(t, partitions: partitions) }
        let path = bootstrapFile ?? kafka.bootstrapFile
        try BootstrapFile.write(broker.bootstrapServers, to: path)
        FileHandle.standardOutput.write(Data((broker.bootstrapServers + "\n").utf8))
        logger.notice("embedded broker ready", metadata: ["bootstrap": "\(broker.bootstrapServers)", "topics": "\(topics)"])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: EmbeddedBrokerService(broker: broker, bootstrapFile: path))
        ]
        if let rttFile { services.append(.init(service: RoundTripTimeFile(path: rttFile, broker: broker, logger: logger))) }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// `herald broker --rtt-file`: applies the round-trip time written in a file to the broker,
/// so a test can slow the broker down and bring it back while clients stay connected.
struct RoundTripTimeFile: Service {
    let path: String
    let broker: EmbeddedBroker
    let logger: Logger

    /// The delay the file asks for: a whole number of milliseconds; missing or empty is 0.
    static func read(_ path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return 0 }
        guard let milliseconds = Int(trimmed), (0...600_000).contains(milliseconds) else { return nil }
        return milliseconds
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var current = 0
            var warned = false
            while true {
                if let wanted = Self.read(path) {
                    warned = false
                    if wanted != current {
                        broker.setRoundTripTime(milliseconds: wanted)
                        current = wanted
                        logger.notice("embedded broker round-trip time set", metadata: ["rtt_ms": "\(wanted)"])
                    }
                } else if !warned {
                    warned = true
                    logger.warning("--rtt-file does not hold a number of milliseconds (0...600000)", metadata: ["path": "\(path)"])
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}
