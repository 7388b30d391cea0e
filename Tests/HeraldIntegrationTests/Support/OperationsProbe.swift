import Foundation
import Testing

/// Reads Herald's operations endpoints (with curl, so a test never depends on
/// FoundationNetworking) and parses /metrics with prometheus_client's parser.
struct OperationsProbe {
    let port: Int

    struct Sample: Decodable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    struct Family: Decodable {
        let name: String
        let type: String
        let samples: [Sample]
    }

    struct Metrics: Decodable {
        let families: [Family]

        func samples(_ name: String) -> [Sample] {
            families.flatMap(\.samples).filter { $0.name == name }
        }

        func sum(_ name: String, where match: [String: String] = [:]) -> Double {
            samples(name).filter { s in match.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
        }

        func value(_ name: String, _ labels: [String: String]) -> Double? {
            samples(name).first { s in labels.allSatisfy { s.labels[$0.key] == $0.value } }?.value
        }
    }

    struct Response {
        let status: Int
        let body: String
    }

    /// How often the operations tests poll: each poll starts curl (a new TCP connection) and
    /// python3, beside suites running in parallel on two cores.
    static let pollInterval: Duration = .milliseconds(250)

    static let parser = HeraldBinary.repository + "/Tests/HeraldIntegrationTests/Support/parse_metrics.py"

    /// GET `path`: the status code and body (status 0 when nothing answered).
    func get(_ path: String) throws -> Response {
        let output = try Self.run(
            "/usr/bin/curl", ["-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"], input: nil)
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return Response(status: Int(lines.last ?? "") ?? 0, body: lines.dropLast().joined(separator: "\n"))
    }

    /// /metrics, parsed by prometheus_client (a text that does not parse fails the call).
    func metrics() throws -> Metrics {
        let response = try get("/metrics")
        guard response.status == 200 else { throw TestHarnessFailure(description: "/metrics answered \(response.status)") }
        let json = try Self.run("/usr/bin/python3", [Self.parser], input: response.body)
        return try JSONDecoder().decode(Metrics.self, from: Data(json.utf8))
    }

    /// The JSON body of /readyz or /healthz and its status.
    func health(_ path: String) throws -> (status: Int, checks: [String: Bool]) {
        let response = try get(path)
        guard response.status != 0 else { return (0, [:]) }
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any] ?? [:]
        let checks = object["checks"] as? [String: [String: Any]] ?? [:]
        return (response.status, checks.mapValues { $0["ok"] as? Bool ?? false })
    }

    static func run(_ executable: String, _ arguments: [String], input: String?) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 || executable.hasSuffix("curl") else {
            throw TestHarnessFailure(
                description:
                    "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(String(decoding: err, as: UTF8.self))"
            )
        }
        return String(decoding: out, as: UTF8.self)
    }
}
