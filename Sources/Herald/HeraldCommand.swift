import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldRuntime
import HeraldSettings

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
            BrokerCommand.self, LagCommand.self, DeadLetterCommand.self,
        ],
        defaultSubcommand: nil
    )

    /// The one place that decides the exit code: commands and helpers throw.
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
        } catch {
            Foundation.exit(Self.exitCode(for: error))
        }
    }

    /// Says what went wrong on standard error and returns the exit code: 78 (EX_CONFIG) for a
    /// bad setting, 1 for a schema behind its migrations, ArgumentParser's codes otherwise.
    static func exitCode(for error: any Error) -> Int32 {
        switch error {
        case let error as ConfigurationError:
            return configurationError(error)
        case let error as KafkaError where error.code == .configuration:
            // A refused librdkafka property: a configuration error like any other.
            return configurationError(
                ConfigurationError(setting: "HERALD_KAFKA_PROPERTY_* / HERALD_KAFKA_PROPERTIES_FILE", problem: error.message))
        case let error as DatabaseSchemaBehind:
            FileHandle.standardError.write(Data("herald: \(error)\n".utf8))
            return 1
        default:
            exit(withError: error)
        }
    }

    static func configurationError(_ error: ConfigurationError) -> Int32 {
        FileHandle.standardError.write(Data("herald: configuration error: \(error)\n".utf8))
        return 78
    }
}
