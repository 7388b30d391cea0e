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
            Data lives in memory; the mock keeps only the newest ~5 MB per partition.
            """)

    @Option(help: "Partitions per topic.")
    var partitions: Int = 4

    @Option(help: "Extra topics to create (repeatable).")
    var topic: [String] = []

    @Option(help: "Where to write the bootstrap address (default: HERALD_EMBEDDED_BOOTSTRAP_FILE or var/kafka-bootstrap).")
    var bootstrapFile: String?

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
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: EmbeddedBrokerService(broker: broker, bootstrapFile: path))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
