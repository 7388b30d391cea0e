import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway OAuth2 token endpoint (`token_server.py`, the client-credentials grant over
/// plain HTTP on 127.0.0.1 and a port free at start) that counts the requests it gets and can
/// be told to fail. The tokens it issues are files in `tokens`, which `SMTPServer`'s
/// `xoauth2` option accepts until they expire.
///
/// Killed when the object goes away (or on `shutdown()`).
final class TokenServer: Sendable {
    /// How the endpoint answers from now on.
    enum Mode: String {
        case ok = ""
        /// HTTP 500 with an HTML body.
        case serverError = "500"
        /// HTTP 401 `invalid_client`, whatever was sent.
        case invalidClient = "401"
        /// HTTP 200 with a body that is not JSON.
        case badJSON = "badjson"
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("token_server.py").path

    let port: Int
    let directory: String
    let clientID: String
    let clientSecret: String
    let scope: String?
    private let process = ServerProcess()

    var url: String { "http://127.0.0.1:\(port)/token" }
    /// Where the issued tokens are (one file each, holding its expiry time).
    var tokens: String { directory + "/tokens" }

    static func start(
        clientID: String = "herald", clientSecret: String = "s3cret-client", scope: String? = "smtp.send", expiresIn: Int = 3600
    ) async throws -> TokenServer {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let server = TokenServer(
                port: try TestPorts.free(), directory: try TestPorts.temporaryDirectory("token"), clientID: clientID,
                clientSecret: clientSecret, scope: scope)
            do {
                try await server.start(expiresIn: expiresIn)
                return server
            } catch {
                lastError = error
                server.shutdown()
            }
        }
        throw lastError ?? SMTPServer.Failure(description: "the token server did not start")
    }

    private init(port: Int, directory: String, clientID: String, clientSecret: String, scope: String?) {
        self.port = port
        self.directory = directory
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
    }

    deinit {
        shutdown()
    }

    private func start(expiresIn: Int) async throws {
        var arguments = [
            SMTPServer.python, Self.script, "--port", String(port), "--dir", directory, "--client-id", clientID, "--client-secret",
            clientSecret, "--expires-in", String(expiresIn),
        ]
        if let scope { arguments += ["--scope", scope] }
        process.started(
            try TestProcess.spawn(arguments, stdout: directory + "/server.log", stderr: directory + "/server.log.err"))
        try await process.waitForFile(directory + "/ready") { exited in
            SMTPServer.Failure(
                description: exited
                    ? "token_server.py exited during start on port \(port):\n\(log())"
                    : "token_server.py did not listen on port \(port) within 120 s:\n\(log())")
        }
    }

    /// Kills the server and removes its directory. Idempotent.
    func shutdown() {
        process.killNow()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Requests received so far (answered or not).
    func requests() -> Int {
        (try? String(contentsOfFile: directory + "/requests", encoding: .utf8)).flatMap { Int($0) } ?? 0
    }

    /// The tokens issued so far.
    func issued() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: tokens).sorted()
    }

    /// The tokens issued so far with their expiry times (Unix seconds), oldest first.
    func expiries() throws -> [(token: String, expires: Double)] {
        try issued().map { token in
            let text = try String(contentsOfFile: tokens + "/" + token, encoding: .utf8)
            return (token, Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        }.sorted { $0.expires < $1.expires }
    }

    /// Revokes `token`: the SMTP server refuses it from now on.
    func revoke(_ token: String) throws {
        try FileManager.default.removeItem(atPath: tokens + "/" + token)
    }

    func set(_ mode: Mode) throws {
        try Data(mode.rawValue.utf8).write(to: URL(fileURLWithPath: directory + "/mode"), options: .atomic)
    }

    func log() -> String {
        ["/server.log", "/server.log.err"].map { (try? String(contentsOfFile: directory + $0, encoding: .utf8)) ?? "" }
            .joined(separator: "\n")
    }
}
