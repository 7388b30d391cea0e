import Foundation
import Testing

/// `herald mail test` as a process against the SMTP test server (smtp_server.py): what it
/// sends and prints, and its exit code for each outcome. Each run gets exactly the
/// environment the test gives it: no HERALD_DATABASE_URL, HERALD_KAFKA_BROKERS or
/// HERALD_REDIS_URL unless a test sets one.
@Suite("herald mail test as a process", .timeLimit(.minutes(10)))
struct MailTestCommandTests {
    /// The mail settings `herald run` needs, for an SMTP server on `port` without TLS.
    static func environment(port: Int, credentials: String = "") -> [String: String] {
        [
            "HERALD_SMTP_URL": "smtp://\(credentials)127.0.0.1:\(port)/herald.test", "HERALD_SMTP_ALLOW_PLAINTEXT": "true",
            "HERALD_MAIL_FROM": "Herald Tests <no-reply@herald.test>", "HERALD_LINK_BASE_URL": "https://auth.herald.test",
            "HERALD_TEMPLATES_DIR": HeraldBinary.templates,
        ]
    }

    static func herald(_ arguments: [String], _ environment: [String: String]) async throws -> HeraldBinary.Outcome {
        let dir = try HeraldBinary.temporaryDirectory()
        return try await HeraldBinary.run(arguments, dir: dir, environment: environment, inheritEnvironment: false)
    }

    static func object(_ outcome: HeraldBinary.Outcome) throws -> [String: Any] {
        let objects = try outcome.objects()
        try #require(objects.count == 1, "one JSON line: \(outcome.stdout)\n\(outcome.stderr)")
        return objects[0]
    }

    @Test(
        "accepted: exactly one message to that address with the rendered subject; the reply code printed; no database, Kafka or Redis settings"
    )
    func accepted() async throws {
        let server = try await SMTPServer.start(.init(auth: (user: "herald", password: "s3cret-pw")))
        defer { server.shutdown() }
        let environment = Self.environment(port: server.port, credentials: "herald:s3cret-pw@")
        #expect(environment.keys.allSatisfy { !["HERALD_DATABASE_URL", "HERALD_KAFKA_BROKERS", "HERALD_REDIS_URL"].contains($0) })
        let subject = try await Self.herald(["templates", "preview", "welcome", "--format", "subject"], environment)
        try #require(subject.status == 0, "\(subject.stderr)")

        let out = try await Self.herald(["mail", "test", "--to", "ada@example.com", "--json"], environment)
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        let report = try Self.object(out)
        #expect(report["outcome"] as? String == "accepted")
        #expect(report["exit_code"] as? Int == 0)
        #expect(report["smtp_code"] as? Int == 250)
        #expect(report["reply"] as? String == "250 2.0.0 OK queued as herald-test-1", "\(report)")
        #expect(report["queue_id"] as? String == "herald-test-1")
        #expect(report["kind"] as? String == "welcome")
        #expect(report["to"] as? String == "ada@example.com")
        #expect(report["server"] as? String == "smtp://herald@127.0.0.1:\(server.port)")
        #expect(report["tls"] as? Bool == false && report["tls_mode"] as? String == "none")
        #expect(report["sample_link"] is NSNull)
        #expect((report["note"] as? String)?.contains("nothing was queued") == true)
        #expect(!out.stdout.contains("s3cret-pw") && !out.stderr.contains("s3cret-pw"))

        let received = try server.received()
        try #require(received.count == 1, "\(server.log())")
        #expect(received[0].to == ["ada@example.com"])
        #expect(received[0].from == "no-reply@herald.test")
        #expect(received[0].authenticated)
        let parsed = try await ParsedMail.parse(received[0].data)
        #expect(parsed.header("Subject") == subject.stdout.trimmingCharacters(in: .newlines))
        #expect(parsed.header("Subject") == report["subject"] as? String)
        #expect(parsed.header("Message-ID") == report["message_id"] as? String)
        #expect(parsed.header("X-Herald-Kind") == "welcome")
        #expect(parsed.header("To") == "ada@example.com")
    }

    @Test("STARTTLS with a trusted certificate: TLS, its version and the certificate printed; a link kind's link is a sample")
    func startTLS() async throws {
        let directory = try TestPorts.temporaryDirectory("mail-test-cert")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = try await TestCertificate.make(in: directory)
        let server = try await SMTPServer.start(.init(certificate: certificate, requireStartTLS: true))
        defer { server.shutdown() }
        var environment = Self.environment(port: server.port)
        environment["HERALD_SMTP_ALLOW_PLAINTEXT"] = nil
        environment["HERALD_SMTP_CA_FILE"] = certificate.certificatePath

        let out = try await Self.herald(
            ["mail", "test", "--to", "ada@example.com", "--kind", "password_reset", "--locale", "pt-BR"], environment)
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        let lines = out.lines
        #expect(lines.first?.hasPrefix("accepted: 250 ") == true, "\(out.stdout)")
        #expect(lines.contains { $0.hasPrefix("  mail         password_reset (pt): ") }, "\(out.stdout)")
        #expect(lines.contains { $0.hasPrefix("  tls          STARTTLS, TLSv1.") }, "\(out.stdout)")
        let certificateLine = try #require(lines.first { $0.hasPrefix("  certificate  ") }, "\(out.stdout)")
        #expect(certificateLine.contains("localhost") && certificateLine.contains("expires ") && certificateLine.hasSuffix(", verified"))
        let link = "https://auth.herald.test/auth/reset-password/confirm?token=SAMPLE-not-a-real-token"
        #expect(lines.contains("  link         \(link) (a sample: it grants nothing)"), "\(out.stdout)")
        #expect(lines.last == "  exit code    0 (accepted)")

        let received = try server.received()
        try #require(received.count == 1, "\(server.log())")
        #expect(received[0].tls)
        let parsed = try await ParsedMail.parse(received[0].data)
        #expect(parsed.header("Content-Language") == "pt")
        #expect(parsed.parts.first?.text.contains(link) == true)
    }

    @Test("refused: the server answers 550, exit 65, nothing delivered")
    func refused() async throws {
        let server = try await SMTPServer.start(.init(script: ["550"]))
        defer { server.shutdown() }
        let out = try await Self.herald(["mail", "test", "--to", "ada@example.com", "--json"], Self.environment(port: server.port))
        #expect(out.status == 65, "\(out.stdout)\n\(out.stderr)")
        let report = try Self.object(out)
        #expect(report["outcome"] as? String == "refused")
        #expect(report["exit_code"] as? Int == 65)
        #expect(report["smtp_code"] as? Int == 550)
        #expect(report["reply"] as? String == "550 5.7.1 Herald test server: message rejected by policy", "\(report)")
        #expect(report["queue_id"] is NSNull)
        #expect(try server.received().isEmpty)
    }

    @Test("deferred: 421 to RCPT, then 451 to the message, exit 75 each time")
    func deferred() async throws {
        let server = try await SMTPServer.start(.init(script: ["rcpt:421", "451"]))
        defer { server.shutdown() }
        for code in [421, 451] {
            let out = try await Self.herald(["mail", "test", "--to", "ada@example.com", "--json"], Self.environment(port: server.port))
            #expect(out.status == 75, "\(code): \(out.stdout)\n\(out.stderr)")
            let report = try Self.object(out)
            #expect(report["outcome"] as? String == "deferred")
            #expect(report["smtp_code"] as? Int == code, "\(report)")
        }
        #expect(try server.received().isEmpty)
    }

    @Test("unavailable: nothing listening, exit 69, the reason printed")
    func unavailable() async throws {
        let port = try TestPorts.free()
        let out = try await Self.herald(["mail", "test", "--to", "ada@example.com"], Self.environment(port: port))
        #expect(out.status == 69, "\(out.stdout)\n\(out.stderr)")
        #expect(out.lines.first?.hasPrefix("unavailable: ") == true, "\(out.stdout)")
        #expect(out.stdout.contains("  server       smtp://127.0.0.1:\(port)"))
        #expect(out.lines.last == "  exit code    69 (unavailable)")
    }

    @Test("the file transport writes the .eml; the database, Kafka and Redis are never contacted even when set")
    func fileTransport() async throws {
        let directory = try TestPorts.temporaryDirectory("mail-test-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let closed = try TestPorts.free()
        var environment = HeraldBinary.fileMail(directory + "/mail")
        // Nothing listens there: a command that tried them would fail or wait.
        environment["HERALD_DATABASE_URL"] = "postgresql://herald@127.0.0.1:\(closed)/herald?connect_timeout=60"
        environment["HERALD_KAFKA_BROKERS"] = "127.0.0.1:\(closed)"
        environment["HERALD_REDIS_URL"] = "redis://127.0.0.1:\(closed)/0"
        let out = try await Self.herald(["mail", "test", "--to", "ada@example.com", "--kind", "verify_email", "--json"], environment)
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        let report = try Self.object(out)
        #expect(report["transport"] as? String == "file")
        #expect(report["tls"] is NSNull)
        let file = try #require(report["file"] as? String)
        #expect(file.hasPrefix(directory + "/mail/") && file.hasSuffix(".eml"))
        let parsed = try await ParsedMail.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        #expect(parsed.header("To") == "ada@example.com")
        #expect(
            parsed.parts.first?.text.contains("https://auth.herald.test/auth/verify-email/confirm?token=SAMPLE-not-a-real-token") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/mail").count == 1)
    }

    @Test("a bad --kind exits 64 listing the kinds; a bad --to or --locale exits 64 naming it")
    func badOptions() async throws {
        let environment = Self.environment(port: 1)
        var out = try await Self.herald(["mail", "test", "--to", "ada@example.com", "--kind", "newsletter"], environment)
        #expect(out.status == 64, "\(out.stderr)")
        for kind in [
            "welcome", "verify_email", "password_reset", "password_changed", "email_change_confirm", "email_change_requested",
            "email_changed",
        ] {
            #expect(out.stderr.contains(kind), "\(kind): \(out.stderr)")
        }
        out = try await Self.herald(["mail", "test", "--to", "not an address"], environment)
        #expect(out.status == 64 && out.stderr.contains("--to"), "\(out.stderr)")
        out = try await Self.herald(["mail", "test", "--to", "ada@example.com", "--locale", "p"], environment)
        #expect(out.status == 64 && out.stderr.contains("--locale"), "\(out.stderr)")
        out = try await Self.herald(["mail", "test"], environment)
        #expect(out.status == 64 && out.stderr.contains("--to"), "\(out.stderr)")
    }

    @Test("a bad or missing mail setting exits 78 naming it, without the password")
    func badSettings() async throws {
        let base = Self.environment(port: 1)
        let cases: [(String, String?, String)] = [
            ("HERALD_SMTP_URL", "ftp://herald:s3cret-pw@127.0.0.1:25", "HERALD_SMTP_URL"),
            ("HERALD_SMTP_CONNECT_TIMEOUT", "soon", "HERALD_SMTP_CONNECT_TIMEOUT"),
            ("HERALD_SMTP_URL", nil, "HERALD_SMTP_URL"),
            ("HERALD_MAIL_FROM", nil, "HERALD_MAIL_FROM"),
            ("HERALD_TEMPLATES_DIR", "/nonexistent/templates", "HERALD_TEMPLATES_DIR"),
        ]
        for (name, value, named) in cases {
            var environment = base
            environment[name] = value
            let out = try await Self.herald(["mail", "test", "--to", "ada@example.com"], environment)
            #expect(out.status == 78, "\(name)=\(value ?? "unset"): \(out.stderr)")
            #expect(out.stderr.contains(named), "\(name)=\(value ?? "unset"): \(out.stderr)")
            #expect(!out.stderr.contains("s3cret-pw"))
            #expect(out.stdout.isEmpty)
        }
    }
}
