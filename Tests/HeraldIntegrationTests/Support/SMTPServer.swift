import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A throwaway SMTP server for integration tests: `smtp_server.py` (Debian's
/// python3-aiosmtpd, run by /usr/bin/python3) on 127.0.0.1 and a port free at start, storing
/// every accepted message in its own temporary directory.
///
///     let server = try await SMTPServer.start(.init(script: ["451", "250"]))
///     … send to server.port …
///     let mail = try server.received()      // envelope, connection id and raw bytes
///     try await server.stop(); try await server.start()   // down for a while, same port
///
/// The server is killed when the object goes away (or on `shutdown()`). A missing python3 or
/// python3-aiosmtpd is an error, not a skip: the tests fail loudly.
final class SMTPServer: Sendable {
    struct Options: Sendable {
        /// PEM certificate and key: the server offers STARTTLS (or speaks TLS at once with
        /// `implicitTLS`).
        var certificate: TestCertificate?
        var requireStartTLS = false
        var implicitTLS = false
        /// Required credentials (AUTH PLAIN/LOGIN).
        var auth: (user: String, password: String)?
        /// Successive answers: `"451"` for the next DATA, `"rcpt:550"` for the next RCPT.
        var script: [String] = []
        /// Hold every message at DATA until the test releases it (`held()`, `release(_:reply:)`,
        /// `releaseAll()`).
        var hold = false
        /// AUTH XOAUTH2 only, required: `user` with a token that is a file in `tokens` (empty,
        /// or holding its expiry time in Unix seconds); anything else is answered 535.
        var xoauth2: (user: String, tokens: String)?

        init(
            certificate: TestCertificate? = nil, requireStartTLS: Bool = false, implicitTLS: Bool = false,
            auth: (user: String, password: String)? = nil, script: [String] = [], hold: Bool = false,
            xoauth2: (user: String, tokens: String)? = nil
        ) {
            self.certificate = certificate
            self.requireStartTLS = requireStartTLS
            self.implicitTLS = implicitTLS
            self.auth = auth
            self.script = script
            self.hold = hold
            self.xoauth2 = xoauth2
        }
    }

    /// One accepted message as the server stored it.
    struct ReceivedMail: Sendable {
        let sequence: Int
        /// Counted from 1 per TCP connection the server accepted (since its last start).
        let connection: Int
        let from: String
        let to: [String]
        let tls: Bool
        let authenticated: Bool
        /// With `xoauth2`: the token the connection authenticated with.
        let token: String?
        let data: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let python = "/usr/bin/python3"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("smtp_server.py").path

    let port: Int
    let options: Options
    /// Messages (`msg-*.json`) and the server's log (`server.log`).
    let directory: String
    private let process = ServerProcess()

    static func start(_ options: Options = Options()) async throws -> SMTPServer {
        guard access(python, X_OK) == 0 else {
            throw Failure(description: "\(python) not found: install python3 and python3-aiosmtpd to run these tests")
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            let server = SMTPServer(port: try TestPorts.free(), options: options, directory: try TestPorts.temporaryDirectory("smtp"))
            do {
                try await server.start()
                return server
            } catch {
                lastError = error
                server.shutdown()
            }
        }
        throw lastError ?? Failure(description: "the SMTP server did not start")
    }

    private init(port: Int, options: Options, directory: String) {
        self.port = port
        self.options = options
        self.directory = directory
    }

    deinit {
        shutdown()
    }

    /// Starts the (stopped) server again on the same port; waits until it listens.
    func start() async throws {
        unlink(directory + "/ready")
        process.started(try spawn())
        try await process.waitForFile(directory + "/ready") { exited in
            Failure(
                description: exited
                    ? "smtp_server.py exited during start on port \(port):\n\(log())"
                    : "smtp_server.py did not listen on port \(port) within 120 s:\n\(log())")
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s). Stored messages are kept.
    func stop() async throws {
        try await process.stop()
    }

    /// Kills the server at once and removes its directory. Idempotent.
    func shutdown() {
        process.killNow()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Every accepted message, in the order the server accepted them.
    func received() throws -> [ReceivedMail] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("msg-") && $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                let sequence = object["sequence"] as? Int, let connection = object["connection"] as? Int,
                let from = object["mail_from"] as? String, let to = object["rcpt_tos"] as? [String],
                let raw = (object["data"] as? String).flatMap({ Data(base64Encoded: $0) })
            else { throw Failure(description: "cannot read \(name)") }
            return ReceivedMail(
                sequence: sequence, connection: connection, from: from, to: to, tls: object["tls"] as? Bool ?? false,
                authenticated: object["authenticated"] as? Bool ?? false, token: object["auth_token"] as? String, data: Array(raw))
        }
    }

    /// Waits (bounded) until at least `count` messages were accepted.
    func waitForMessages(_ count: Int, timeout: Duration = .seconds(120)) async throws -> [ReceivedMail] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let mail = try received()
            if mail.count >= count || ContinuousClock.now >= deadline { return mail }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// With `hold`: how many messages reached DATA and were held (released ones included).
    func held() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("held-") }.count
    }

    /// With `hold`: answers held message `number` (counted from 1) with `reply` (250 accepts).
    func release(_ number: Int, reply: String = "250") throws {
        try write(reply, to: "release-\(number)")
    }

    /// With `hold`: answers every held message, and every later one, at once.
    func releaseAll() throws {
        try write("", to: "release-all")
    }

    private func write(_ text: String, to name: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/" + name), options: .atomic)
    }

    /// The server's output and errors.
    func log() -> String {
        ["/server.log", "/server.log.err"].map { (try? String(contentsOfFile: directory + $0, encoding: .utf8)) ?? "" }
            .joined(separator: "\n")
    }

    // MARK: - Process

    private func arguments() -> [String] {
        var arguments = [Self.python, Self.script, "--port", String(port), "--dir", directory]
        if let certificate = options.certificate {
            arguments += ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
        }
        if options.requireStartTLS { arguments.append("--require-starttls") }
        if options.implicitTLS { arguments.append("--implicit-tls") }
        if let auth = options.auth { arguments += ["--auth", "\(auth.user):\(auth.password)"] }
        if !options.script.isEmpty { arguments += ["--script", options.script.joined(separator: ",")] }
        if options.hold { arguments.append("--hold") }
        if let xoauth2 = options.xoauth2 { arguments += ["--xoauth2-user", xoauth2.user, "--xoauth2-tokens", xoauth2.tokens] }
        return arguments
    }

    /// posix_spawn with output appended to `server.log`, a clean signal mask and default
    /// dispositions (the test process may block or ignore signals that `stop()` relies on).
    private func spawn() throws -> pid_t {
        try TestProcess.spawn(arguments(), stdout: directory + "/server.log", stderr: directory + "/server.log.err")
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made with openssl.
struct TestCertificate: Sendable {
    let certificatePath: String
    let keyPath: String

    static func make(in directory: String) async throws -> TestCertificate {
        let certificate = TestCertificate(certificatePath: directory + "/cert.pem", keyPath: directory + "/key.pem")
        let status = try await TestProcess.run(
            [
                "/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", certificate.keyPath, "-out",
                certificate.certificatePath,
            ], log: directory + "/openssl.log")
        guard status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/openssl.log", encoding: .utf8)) ?? ""
            throw SMTPServer.Failure(description: "openssl req failed (\(status)):\n\(log)")
        }
        return certificate
    }
}

/// A message as Python's `email` package (policy `default`) parses it.
struct ParsedMail: Sendable {
    struct Part: Sendable {
        let contentType: String
        let charset: String?
        let transferEncoding: String?
        let text: String
    }

    /// Decoded values (RFC 2047 words decoded, folding undone), in order.
    let headers: [(name: String, value: String)]
    let contentType: String
    let boundary: String?
    let parts: [Part]
    let defects: [String]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Runs `smtp_server.py --parse` on `data`.
    static func parse(_ data: [UInt8]) async throws -> ParsedMail {
        let directory = try TestPorts.temporaryDirectory("parse")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(data).write(to: URL(fileURLWithPath: directory + "/mail.eml"))
        let status = try await TestProcess.run(
            [SMTPServer.python, SMTPServer.script, "--parse", directory + "/mail.eml"], log: directory + "/out.json")
        let output = try Data(contentsOf: URL(fileURLWithPath: directory + "/out.json"))
        guard status == 0, let object = try? JSONSerialization.jsonObject(with: output) as? [String: Any],
            let headers = object["headers"] as? [[String]], let parts = object["parts"] as? [[String: Any]]
        else {
            throw SMTPServer.Failure(description: "parse failed (\(status)): \(String(decoding: output, as: UTF8.self))")
        }
        return ParsedMail(
            headers: headers.map { ($0[0], $0[1]) }, contentType: object["content_type"] as? String ?? "",
            boundary: object["boundary"] as? String,
            parts: parts.map {
                Part(
                    contentType: $0["content_type"] as? String ?? "", charset: $0["charset"] as? String,
                    transferEncoding: $0["transfer_encoding"] as? String, text: $0["text"] as? String ?? "")
            },
            defects: object["defects"] as? [String] ?? [])
    }
}
