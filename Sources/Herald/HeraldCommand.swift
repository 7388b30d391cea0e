import ArgumentParser
import HeraldCore
import HeraldKafka

#if canImport(Glibc)
    import Glibc
#endif

@main
struct HeraldCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "The event worker of the authentication platform.",
        discussion: """
            Herald consumes the auth and user services' events from Kafka and does the slow, failure-prone work: \
            it keeps role invalidations and user revocations in Redis, and queues and sends the platform's \
            transactional email (welcome, address verification, password reset, security notices). Configuration comes from HERALD_* environment variables (see the README); \
            `herald run` requires HERALD_KAFKA_BROKERS (`embedded` starts an in-memory development broker).
            """,
        version: version,
        subcommands: [
            RunCommand.self, MigrateCommand.self, MailCommand.self, TemplatesCommand.self, OutboxCommand.self, PublishCommand.self,
            BrokerCommand.self, LagCommand.self, BenchInboxCommand.self, BenchMailCommand.self, BenchOutboxCommand.self,
        ],
        defaultSubcommand: nil
    )

    static func main() async {
        // A peer that closes a socket mid-write must give EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as KafkaError where error.code == .configuration {
            // A refused librdkafka property: a configuration error like any other (exit 78).
            Environment.fail(
                ConfigurationError(setting: "HERALD_KAFKA_PROPERTY_* / HERALD_KAFKA_PROPERTIES_FILE", problem: error.message))
        } catch {
            exit(withError: error)
        }
    }
}
