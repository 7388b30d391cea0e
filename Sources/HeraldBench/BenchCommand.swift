import ArgumentParser
import Foundation
import HeraldKafka
import HeraldRuntime
import HeraldSettings

/// `herald-bench`: the benchmarks `make bench` runs, outside the shipped `herald`. They reuse
/// its wiring (`Daemon`, `MailWiring`, the adapters) and its `HERALD_*` settings.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald-bench",
        abstract: "Herald's benchmarks (make bench): scripts/bench.sh and scripts/bench-mail.sh run them.",
        subcommands: [
            BenchRunCommand.self, BenchInboxCommand.self, BenchMailCommand.self, BenchOutboxCommand.self, BenchJSONCommand.self,
            BenchLatencyCommand.self,
        ])

    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("herald-bench: configuration error: \(error)\n".utf8))
            Foundation.exit(78)
        } catch {
            exit(withError: error)
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Nearest-rank percentiles of sorted samples (`p` in 0...1).
enum Percentile {
    static func of(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
    }
}
