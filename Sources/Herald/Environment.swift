import Foundation
import HeraldCore

enum Environment {
    static var variables: [String: String] { ProcessInfo.processInfo.environment }

    static func readFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Loads the configuration or exits with a message naming the bad setting.
    static func configuration() -> HeraldConfiguration {
        do {
            return try HeraldConfiguration.load(environment: variables, readFile: readFile)
        } catch {
            fail(error)
        }
    }

    /// Stops with a configuration error (exit code 78, EX_CONFIG).
    static func fail(_ error: ConfigurationError) -> Never {
        FileHandle.standardError.write(Data("herald: configuration error: \(error)\n".utf8))
        exit(78)
    }

    /// Where to find brokers for client commands: HERALD_KAFKA_BROKERS, else the file the
    /// embedded broker wrote.
    static func brokers(_ configuration: HeraldConfiguration, override: String?) throws -> String {
        if let override { return override }
        if let brokers = configuration.kafka.brokers { return brokers }
        let path = configuration.kafka.bootstrapFile
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw HeraldCLIError(
                "no broker: set HERALD_KAFKA_BROKERS, pass --brokers, or start `herald run`/`herald broker` (which write \(path))")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct HeraldCLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
