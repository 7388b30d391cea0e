import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import Logging

enum Environment {
    static var variables: [String: String] { ProcessInfo.processInfo.environment }

    /// Where `make run` (scripts/postgres.sh) writes the URL of the PostgreSQL it started.
    static let makeRunDatabaseURLFile = "var/postgres/url"

    static func readFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Loads the configuration or exits with a message naming the bad setting.
    static func configuration() -> HeraldConfiguration {
        load(variables)
    }

    /// The configuration for the client commands that need a database (`mail`, `migrate`,
    /// `outbox`): in a `make run` tree (`./var/postgres/url` exists) with none of `variables`
    /// set, they use the database `make run` started, as `publish` and `lag` use its broker,
    /// and say so on standard error. `herald run` never does this.
    static func configuration(makeRunDatabaseUnless variables: [String]) -> HeraldConfiguration {
        var env = self.variables
        let isSet = variables.contains { env[$0] != nil || env[$0 + "_FILE"] != nil }
        if !isSet, let url = try? readFile(makeRunDatabaseURLFile).trimmingCharacters(in: .whitespacesAndNewlines), !url.isEmpty {
            env["HERALD_DATABASE_URL"] = url
            FileHandle.standardError.write(
                Data("herald: HERALD_DATABASE_URL is unset: using the `make run` database (\(makeRunDatabaseURLFile))\n".utf8))
        }
        return load(env)
    }

    private static func load(_ env: [String: String]) -> HeraldConfiguration {
        do {
            return try HeraldConfiguration.load(environment: env, readFile: readFile)
        } catch {
            fail(error)
        }
    }

    /// Stops with a configuration error (exit code 78, EX_CONFIG).
    static func fail(_ error: ConfigurationError) -> Never {
        FileHandle.standardError.write(Data("herald: configuration error: \(error)\n".utf8))
        exit(78)
    }

    /// Bootstrap servers, and the embedded broker's bootstrap file when they came from it.
    struct BrokerAddress {
        let servers: String
        let bootstrapFile: String?
    }

    /// Where client commands (`publish`, `lag`) find brokers: `override` (--brokers), else
    /// HERALD_KAFKA_BROKERS, else (unset or `embedded`) the file the embedded broker wrote.
    static func brokers(_ configuration: HeraldConfiguration, override: String?) throws -> BrokerAddress {
        if let override { return BrokerAddress(servers: override, bootstrapFile: nil) }
        if let brokers = configuration.kafka.brokers { return BrokerAddress(servers: brokers, bootstrapFile: nil) }
        return try embeddedBroker(configuration)
    }

    /// The address the embedded broker of `herald run` or `herald broker` wrote.
    static func embeddedBroker(_ configuration: HeraldConfiguration) throws -> BrokerAddress {
        let path = configuration.kafka.bootstrapFile
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
    static func requireReachable(_ address: BrokerAddress, _ configuration: HeraldConfiguration) async throws {
        // Its connection errors would only repeat the one message below.
        var quiet = Logger(label: "herald.kafka.check")
        quiet.logLevel = .critical
        let inspector = try KafkaInspector(
            bootstrapServers: address.servers, properties: configuration.kafka.properties,
            secretProperties: configuration.kafka.secretProperties, timeout: reachabilityTimeout, logger: quiet)
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
