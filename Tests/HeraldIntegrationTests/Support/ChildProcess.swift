import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A program started by a test, with its output in a log file, killed when dropped.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    /// - Parameter currentDirectory: where it runs (default: the test's own).
    init(
        _ executable: String, _ arguments: [String], environment: [String: String], logPath: String,
        currentDirectory: String? = nil
    ) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        // Every herald gets its own free port for /metrics unless the test chose one: several run at once.
        process.environment =
            environment["HERALD_HTTP_ADDRESS"] == nil
            ? environment.merging(["HERALD_HTTP_ADDRESS": "127.0.0.1:0"]) { a, _ in a } : environment
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) {
        kill(process.processIdentifier, sig)
    }

    /// Waits for the process to exit (bounded) and returns its exit status.
    func waitForExit(timeout: Duration = .seconds(120)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if let status = exitedWithoutReaping() { return status }
            guard ContinuousClock.now < deadline else {
                kill(process.processIdentifier, SIGKILL)
                Issue.record("process did not exit in time; output:\n\(output.suffix(3000))")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // A signal death reports the signal number: make it distinguishable from exit codes.
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// The exit status when the child has exited, read with `waitid(WNOWAIT)`, which leaves it
    /// for Foundation to reap. Foundation.Process learns of an exit through a socket the child
    /// inherits; a process another test spawns at that moment can inherit the socket too, and
    /// `isRunning` then stays true until that process exits
    /// (swiftlang/swift-corelibs-foundation#4795): seen as a false "did not exit in time" when
    /// the whole suite runs at once.
    private func exitedWithoutReaping() -> Int32? {
        var info = siginfo_t()
        let pid = process.processIdentifier
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == pid else {
            return nil
        }
        let status = info._sifields._sigchld.si_status
        return info.si_code == Int32(CLD_EXITED) ? status : 128 + status
    }
}

enum HeraldBinary {
    /// The built `herald`: $HERALD_BINARY (set by `make test`), else .build/debug/herald.
    static var path: String {
        if let path = ProcessInfo.processInfo.environment["HERALD_BINARY"] { return path }
        return repository + "/.build/debug/herald"
    }

    /// The repository's root directory (the tests run from the source tree).
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The repository's `Templates/`.
    static var templates: String { repository + "/Templates" }

    /// The mail settings `herald run` needs, writing mail as .eml files into `directory`.
    static func fileMail(_ directory: String) -> [String: String] {
        [
            "HERALD_SMTP_URL": "file://" + directory, "HERALD_MAIL_FROM": "Herald Tests <no-reply@herald.test>",
            "HERALD_LINK_BASE_URL": "https://auth.herald.test", "HERALD_TEMPLATES_DIR": templates,
        ]
    }

    /// How a `herald` run ended: its exit status and what it wrote.
    struct Outcome {
        let status: Int32
        let stdout: String
        let stderr: String

        var lines: [String] { stdout.split(separator: "\n").map(String.init) }

        /// Each line of standard output as a JSON object.
        func objects() throws -> [[String: Any]] {
            try lines.map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            }
        }
    }

    /// Runs `herald ARGUMENTS` to its end (a liveness bound, not a speed check), its output in
    /// files under `dir`, with `PATH` and `environment` added to this process's environment, or,
    /// with `inheritEnvironment` false, with only those.
    static func run(
        _ arguments: [String], dir: String, environment: [String: String] = [:], inheritEnvironment: Bool = true
    ) async throws -> Outcome {
        let base = "\(dir)/herald-\(UUID().uuidString)"
        let pid = try TestProcess.spawn(
            [path] + arguments, stdout: base + ".out", stderr: base + ".err",
            environment: ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }, inheritEnvironment: inheritEnvironment)
        let deadline = ContinuousClock.now + .seconds(180)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                _ = waitpid(pid, nil, 0)
                throw TestHarnessFailure(description: "herald \(arguments.joined(separator: " ")) did not finish")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return Outcome(
            status: (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), stdout: read(base + ".out"),
            stderr: read(base + ".err"))
    }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herald-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }
}
