import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldSettings
import Logging

/// The commands' view of the process environment: the settings, and where client commands
/// find a broker.
enum Environment {
    static var variables: [String: String] { ProcessInfo.processInfo.environment }

    /// The settings, validated; a bad one is a `ConfigurationError` (exit 78 in `main`).
    static func settings() throws(ConfigurationError) -> HeraldSettings {
        try HeraldSettings.load(environment: variables)
    }

    /// The settings for the client commands that need a database (`mail`, `migrate`,
    /// `outbox`): in a `make run` tree with none of `variables` set, the database `make run`
    /// started (`MakeRunDatabase`), said on standard error. `herald run` never does this.
    static func settings(makeRunDatabaseUnless variables: [String]) throws(ConfigurationError) -> HeraldSettings {
        let (environment, used) = MakeRunDatabase.environment(self.variables, unless: variables, readFile: HeraldSettings.readFile)
        if used {
            FileHandle.standardError.write(
                Data("herald: HERALD_DATABASE_URL is unset: using the `make run` database (\(MakeRunDatabase.urlFile))\n".utf8))
        }
        return try HeraldSettings.load(environment: environment)
    }

    /// Bootstrap servers, and the embedded broker's bootstrap file when they came from it.
    struct BrokerAddress {
        let servers: String
        let bootstrapFile: String?
    }

    /// Where client commands (`publish`, `lag`) find brokers: `override` (--brokers), else
    /// HERALD_KAFKA_BROKERS, else (unset or `embedded`) the file the embedded broker wrote.
    static func brokers(_ kafka: KafkaSettings, override: String?) throws -> BrokerAddress {
        if let override { return BrokerAddress(servers: override, bootstrapFile: nil) }
        if case .servers(let servers) = kafka.brokers { return BrokerAddress(servers: servers, bootstrapFile: nil) }
        return try embeddedBroker(kafka)
    }

    /// The address the embedded broker of `herald run` or `herald broker` wrote.
    static func embeddedBroker(_ kafka: KafkaSettings) throws -> BrokerAddress {
        let path = kafka.bootstrapFile
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw HeraldCLIError(
                "no broker: set HERALD_KAFKA_BROKERS, pass --brokers, or start `make run` (`herald run` with HERALD_KAFKA_BROKERS=embedded) or `herald broker`, which write \(path)"
            )
        }
        return BrokerAddress(servers: text.trimmingCharacters(in: .whitespacesAndNewlines), bootstrapFile: path)
    }

    /// How long a client command waits for a broker to answer before it gives up.
    static let reachabilityTimeout: Duration = .seconds(5)

    /// Fails fast, with exit code 75 and a message naming the address, when no broker answers
    /// within `reachabilityTimeout`, instead of waiting minutes for delivery timeouts.
    static func requireReachable(_ address: BrokerAddress, _ kafka: KafkaSettings) async throws {
        // Its connection errors would only repeat the one message below.
        var quiet = Logger(label: "herald.kafka.check")
        quiet.logLevel = .critical
        let inspector = try KafkaInspector(
            bootstrapServers: address.servers, properties: kafka.properties, secretProperties: kafka.secretProperties,
            timeout: reachabilityTimeout, logger: quiet)
        var failure: (any Error)?
        do {
            try await inspector.checkReachable(timeout: reachabilityTimeout)
        } catch {
            failure = error
        }
        await inspector.close()
        if let error = failure {
            var message = "herald: no Kafka broker answered at \(address.servers) within \(reachabilityTimeout) (\(error))"
            if let file = address.bootstrapFile {
                message +=
                    ". That address is the embedded broker's, from \(file): is `make run` (or `herald run` with HERALD_KAFKA_BROKERS=embedded) running?"
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            throw ExitCode(75)
        }
    }
}

struct HeraldCLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
