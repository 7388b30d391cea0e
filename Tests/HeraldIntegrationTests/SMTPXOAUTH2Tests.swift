import Foundation
import HeraldCore
import HeraldSMTP
import Synchronization
import Testing

/// Counts `failed(_:)` per dependency.
final class FailureCounter: ConnectionObserver {
    private let counts = Mutex<[Dependency: Int]>([:])

    func failed(_ dependency: Dependency) {
        counts.withLock { $0[dependency, default: 0] += 1 }
    }

    func count(_ dependency: Dependency) -> Int {
        counts.withLock { $0[dependency, default: 0] }
    }
}

/// SMTP with XOAUTH2 against real servers: smtp_server.py accepting only the right XOAUTH2
/// string (`user=U\x01auth=Bearer T\x01\x01`) with a token it knows and that has not
/// expired, and token_server.py, an OAuth2 token endpoint that counts its requests and can be
/// told to fail. No timed assertions: waits poll for a condition, with a generous bound.
@Suite("SMTP XOAUTH2 against real servers", .timeLimit(.minutes(10)))
struct SMTPXOAUTH2Tests {
    static let user = "mailer@herald.example"

    private func mailer(_ settings: SMTPSettings, workers: Int = 1) -> SMTPMailer {
        SMTPMailer(settings: settings, workers: workers, logger: SMTPTests.quietLogger)
    }

    private func settings(
        _ server: SMTPServer, _ source: OAuth2TokenSource, reuse: Bool = true, caFile: String? = nil
    ) throws -> SMTPSettings {
        try SMTPSettings(
            url: "smtp://127.0.0.1:\(server.port)/herald.test", username: Self.user, allowPlaintext: caFile == nil, caFile: caFile,
            connectTimeout: .seconds(30), transferTimeout: .seconds(60), reuseConnections: reuse, authentication: .xoauth2(source))
    }

    private func client(_ tokens: TokenServer, secret: String? = nil) throws -> OAuth2TokenSource {
        .clientCredentials(
            try OAuth2ClientCredentials(
                tokenURL: tokens.url, clientID: tokens.clientID, clientSecret: Secret(secret ?? tokens.clientSecret), scope: tokens.scope))
    }

    private func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    @Test(
        "a token file: the right token is accepted, a wrong one is refused with 535 (credentials: no attempt used), an edited file is used on a new connection"
    )
    func tokenFile() async throws {
        let directory = try TestPorts.temporaryDirectory("xoauth2-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let known = directory + "/known"
        try FileManager.default.createDirectory(atPath: known, withIntermediateDirectories: true)
        try write("", to: known + "/first-token.A1")
        try write("", to: known + "/second-token.B2")
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: known)))
        let tokenFile = directory + "/token"
        try write("first-token.A1\n", to: tokenFile)
        let mailer = mailer(try settings(server, .file(path: tokenFile)))
        defer { mailer.stop() }

        _ = try await mailer.send(SMTPTests.message(id: "1"))
        _ = try await mailer.send(SMTPTests.message(id: "2"))
        var received = try server.received()
        try #require(received.count == 2, "\(server.log())")
        #expect(received.allSatisfy { $0.authenticated && $0.token == "first-token.A1" })
        // The same token: the connection is reused.
        #expect(received[0].connection == received[1].connection)

        // A sidecar rewrote the file: the next mail goes on a new connection, with the new token.
        try write("second-token.B2", to: tokenFile)
        _ = try await mailer.send(SMTPTests.message(id: "3"))
        received = try server.received()
        try #require(received.count == 3)
        #expect(received[2].token == "second-token.B2")
        #expect(received[2].connection != received[1].connection)

        // A token the server does not know: 535, the credentials refused, no attempt used.
        try write("wrong-token.C3", to: tokenFile)
        let refused = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message(id: "4")) })
        #expect(refused.code == .authenticationFailed, "\(refused.debugDescription)")
        #expect(refused.smtpCode == 535)
        guard case .unavailable = refused.deliveryFailure else {
            Issue.record("\(refused.deliveryFailure)")
            return
        }
        #expect(!refused.debugDescription.contains("wrong-token"))

        // The file gone: no token, the mail waits (no attempt used); nothing reached the server.
        try FileManager.default.removeItem(atPath: tokenFile)
        let missing = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message(id: "5")) })
        #expect(missing.code == .tokenUnavailable && missing.deliveryFailure == .unavailable(reason: missing.description))
        #expect(missing.description.contains(tokenFile))
        try write("first-token.A1", to: tokenFile)
        _ = try await mailer.send(SMTPTests.message(id: "5"))
        #expect(try server.received().count == 4)
    }

    @Test("XOAUTH2 over STARTTLS with a trusted certificate")
    func overStartTLS() async throws {
        let directory = try TestPorts.temporaryDirectory("xoauth2-tls")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificate = try await TestCertificate.make(in: directory)
        try FileManager.default.createDirectory(atPath: directory + "/known", withIntermediateDirectories: true)
        try write("", to: directory + "/known/tls-token")
        try write("tls-token", to: directory + "/token")
        let server = try await SMTPServer.start(
            .init(certificate: certificate, requireStartTLS: true, xoauth2: (user: Self.user, tokens: directory + "/known")))
        let mailer = mailer(try settings(server, .file(path: directory + "/token"), caFile: certificate.certificatePath))
        defer { mailer.stop() }
        _ = try await mailer.send(SMTPTests.message())
        let received = try server.received()
        try #require(received.count == 1, "\(server.log())")
        #expect(received[0].tls && received[0].authenticated && received[0].token == "tls-token")
    }

    @Test("client credentials: many mails from several senders at once, one token request while the token is valid")
    func oneRequestWhileValid() async throws {
        let tokens = try await TokenServer.start(expiresIn: 3600)
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: tokens.tokens)))
        let mailer = mailer(try settings(server, try client(tokens)), workers: 4)
        defer { mailer.stop() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1...24 {
                group.addTask { _ = try await mailer.send(SMTPTests.message(id: "\(index)")) }
            }
            try await group.waitForAll()
        }
        let received = try server.received()
        #expect(received.count == 24, "\(server.log())")
        // The concurrent first senders shared one request (single flight), the rest used the cache.
        #expect(tokens.requests() == 1, "\(tokens.log())")
        #expect(mailer.tokenRequests == 1)
        let issued = try tokens.issued()
        #expect(issued.count == 1)
        #expect(Set(received.map(\.token)) == [issued.first])
    }

    /// Waits (polling, bounded) until `condition` holds.
    private func waitUntil(_ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw TestHarnessFailure(description: "never: \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The Unix time now, as token_server.py writes expiry times.
    private var unixNow: Double { Date().timeIntervalSince1970 }

    /// 60-second tokens, renewed when 30 seconds remain (half the lifetime): the slack for
    /// what the tests do with a token on a loaded machine; the server refuses an expired
    /// token, and with a new connection per mail every mail authenticates.
    static let lifetime = 60.0
    static let margin = 30.0

    @Test("client credentials: the token is renewed before it expires, in the background, not per mail")
    func refreshBeforeExpiry() async throws {
        let tokens = try await TokenServer.start(expiresIn: Int(Self.lifetime))
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: tokens.tokens)))
        let mailer = mailer(try settings(server, try client(tokens), reuse: false))
        defer { mailer.stop() }
        for index in 1...3 { _ = try await mailer.send(SMTPTests.message(id: "\(index)")) }
        #expect(tokens.requests() == 1)
        let first = try #require(try tokens.expiries().first)

        // Once the first token is within its renewal margin (and still valid), the next mail
        // goes with it and starts the renewal.
        try await waitUntil("the first token is due for renewal") { unixNow >= first.expires - Self.margin + 0.5 }
        _ = try await mailer.send(SMTPTests.message(id: "4"))
        try await waitUntil("the renewal was asked for") { tokens.requests() == 2 }
        let issued = try tokens.expiries()
        try #require(issued.count == 2)
        // The second token was issued while the first was still valid.
        #expect(issued[1].expires - Self.lifetime < first.expires, "\(issued)")
        try await waitUntil("the renewal is held") { mailer.tokenRequests == 2 }
        _ = try await mailer.send(SMTPTests.message(id: "5"))

        let received = try server.received()
        try #require(received.count == 5, "\(server.log())")
        #expect(received.prefix(4).allSatisfy { $0.token == first.token })
        #expect(received[4].token == issued[1].token)
        #expect(tokens.requests() == 2)
    }

    @Test("client credentials: a renewal that fails keeps the valid token in use; mail keeps going")
    func failedRenewal() async throws {
        let tokens = try await TokenServer.start(expiresIn: Int(Self.lifetime))
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: tokens.tokens)))
        let mailer = mailer(try settings(server, try client(tokens), reuse: false))
        defer { mailer.stop() }
        _ = try await mailer.send(SMTPTests.message(id: "1"))
        let first = try #require(try tokens.expiries().first)
        try tokens.set(.serverError)
        try await waitUntil("the first token is due for renewal") { unixNow >= first.expires - Self.margin + 0.5 }
        _ = try await mailer.send(SMTPTests.message(id: "2"))
        try await waitUntil("the renewal failed") { mailer.tokenRequests == 2 }
        // Mail still goes, with the token held, and is not held up asking again each time.
        for index in 3...5 { _ = try await mailer.send(SMTPTests.message(id: "\(index)")) }
        #expect(try server.received().allSatisfy { $0.token == first.token })

        // The endpoint answers again: a later mail goes with a new token (the endpoint is asked
        // again at most every 5 seconds), and none failed meanwhile.
        try tokens.set(.ok)
        var sent = 5
        let deadline = ContinuousClock.now + .seconds(120)
        while try server.received().last?.token == first.token && ContinuousClock.now < deadline {
            sent += 1
            _ = try await mailer.send(SMTPTests.message(id: "\(sent)"))
            try await Task.sleep(for: .milliseconds(200))
        }
        let received = try server.received()
        #expect(received.count == sent)
        #expect(received.last?.token != first.token && received.last?.token != nil)
    }

    @Test("a failing token endpoint (5xx, not JSON, invalid_client) makes the mail wait, never fails it; it goes once the endpoint answers")
    func failingEndpoint() async throws {
        let tokens = try await TokenServer.start()
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: tokens.tokens)))
        let failures = FailureCounter()
        let mailer = SMTPMailer(
            settings: try settings(server, try client(tokens)), workers: 1, observer: failures, logger: SMTPTests.quietLogger)
        defer { mailer.stop() }
        let message = SMTPTests.message()
        for (mode, code) in [
            (TokenServer.Mode.serverError, MailError.Code.tokenUnavailable), (.badJSON, .tokenUnavailable), (.invalidClient, .tokenRefused),
        ] {
            try tokens.set(mode)
            let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(message) })
            #expect(error.code == code, "\(mode): \(error.debugDescription)")
            #expect(error.isTransient)
            // The courier's terms: unavailable, so the mail goes back to the queue without using an attempt.
            await #expect(throws: MailDeliveryFailure.unavailable(reason: error.deliveryFailure.reason)) {
                _ = try await mailer.deliver(message)
            }
            #expect(!error.debugDescription.contains(tokens.clientSecret))
        }
        #expect(try server.received().isEmpty)
        let failed = tokens.requests()
        #expect(failed == 6)
        // Each failed request is visible: herald_dependency_errors_total{dependency="smtp_oauth2"}.
        #expect(failures.count(.smtpOAuth2) == 6)

        try tokens.set(.ok)
        _ = try await mailer.send(message)
        #expect(try server.received().count == 1)
        #expect(tokens.requests() == failed + 1)

        // A wrong secret: refused by the endpoint, a configuration problem, the mail waits.
        let wrong = self.mailer(try settings(server, try client(tokens, secret: "not-the-secret")))
        defer { wrong.stop() }
        let refused = try #require(await SMTPTests.mailError { _ = try await wrong.send(message) })
        #expect(refused.code == .tokenRefused && refused.description.contains("invalid_client"), "\(refused.debugDescription)")
        #expect(MailTestOutcome(refused.deliveryFailure) == .unavailable)
    }

    @Test("a token the SMTP server refuses (535) is dropped: the next send asks for a new one")
    func refusedTokenIsRenewed() async throws {
        let tokens = try await TokenServer.start(expiresIn: 3600)
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: tokens.tokens)))
        let mailer = mailer(try settings(server, try client(tokens), reuse: false))
        defer { mailer.stop() }
        _ = try await mailer.send(SMTPTests.message(id: "1"))
        let first = try #require(try tokens.issued().first)
        try tokens.revoke(first)

        let error = try #require(await SMTPTests.mailError { _ = try await mailer.send(SMTPTests.message(id: "2")) })
        #expect(error.code == .authenticationFailed && error.smtpCode == 535, "\(error.debugDescription)")
        #expect(!error.debugDescription.contains(first))
        #expect(tokens.requests() == 1)

        _ = try await mailer.send(SMTPTests.message(id: "2"))
        #expect(tokens.requests() == 2)
        let received = try server.received()
        try #require(received.count == 2)
        #expect(received[0].token == first && received[1].token != first && received[1].token != nil)
    }

    @Test(
        "herald mail test with client credentials: accepted, the method reported, never the token or the secret; a failing endpoint exits 69"
    )
    func mailTestCommand() async throws {
        let tokens = try await TokenServer.start()
        let server = try await SMTPServer.start(.init(xoauth2: (user: Self.user, tokens: tokens.tokens)))
        defer { server.shutdown() }
        var environment = MailTestCommandTests.environment(port: server.port)
        environment.merge([
            "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": Self.user, "HERALD_SMTP_OAUTH2_TOKEN_URL": tokens.url,
            "HERALD_SMTP_OAUTH2_CLIENT_ID": tokens.clientID, "HERALD_SMTP_OAUTH2_CLIENT_SECRET": tokens.clientSecret,
            "HERALD_SMTP_OAUTH2_SCOPE": tokens.scope ?? "",
        ]) { $1 }
        let out = try await MailTestCommandTests.herald(["mail", "test", "--to", "ada@example.com", "--json"], environment)
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)\n\(tokens.log())")
        let report = try MailTestCommandTests.object(out)
        #expect(report["outcome"] as? String == "accepted")
        #expect(report["auth"] as? String == "xoauth2" && report["auth_token_source"] as? String == "client_credentials")
        let token = try #require(try tokens.issued().first)
        let received = try server.received()
        try #require(received.count == 1)
        #expect(received[0].token == token)
        for text in [out.stdout, out.stderr] {
            #expect(!text.contains(token) && !text.contains(tokens.clientSecret))
        }

        try tokens.set(.serverError)
        let failed = try await MailTestCommandTests.herald(["mail", "test", "--to", "ada@example.com"], environment)
        #expect(failed.status == 69, "\(failed.stdout)\n\(failed.stderr)")
        #expect(
            failed.stdout.hasPrefix("unavailable: SMTP OAuth2 token unavailable: the token endpoint answered HTTP 500"), "\(failed.stdout)")
        #expect(failed.stdout.contains("  auth         xoauth2 (client credentials from \(tokens.url))"), "\(failed.stdout)")
        #expect(!failed.stdout.contains(tokens.clientSecret) && !failed.stderr.contains(tokens.clientSecret))
        #expect(try server.received().count == 1)

        // A token file that cannot be read stops it before anything is sent: exit 78, named.
        var file = MailTestCommandTests.environment(port: server.port)
        file.merge(["HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": Self.user, "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/nonexistent/token"]) {
            $1
        }
        let missing = try await MailTestCommandTests.herald(["mail", "test", "--to", "ada@example.com"], file)
        #expect(missing.status == 78, "\(missing.stdout)\n\(missing.stderr)")
        #expect(missing.stderr.contains("HERALD_SMTP_OAUTH2_TOKEN_FILE"), "\(missing.stderr)")
    }
}
