import Foundation
import HeraldCore
import HeraldSMTP
import Testing

/// `herald mail test`'s pure parts: outcome → exit code, the transport's failures in the
/// courier's terms, replies and certificates read, the report as text and JSON. No server.
@Suite("herald mail test: outcomes, exit codes, replies, certificates, the report")
struct MailTestReportTests {
    @Test("each outcome has its own exit code: 0, 65 refused, 75 deferred, 69 unavailable")
    func exitCodes() {
        #expect(MailTestOutcome.accepted.exitCode == 0)
        #expect(MailTestOutcome.refused.exitCode == 65)
        #expect(MailTestOutcome.deferred.exitCode == 75)
        #expect(MailTestOutcome.unavailable.exitCode == 69)
        let codes = MailTestOutcome.allCases.map(\.exitCode)
        #expect(Set(codes).count == codes.count)
        // None is a code `herald` uses for something else: 1 (an error), 64 (usage), 78 (configuration).
        #expect(Set(codes).isDisjoint(with: [1, 64, 78]))
    }

    @Test("the outcome is the courier's classification of the transport's failure")
    func outcomeFromFailure() {
        #expect(MailTestOutcome(nil) == .accepted)
        #expect(MailTestOutcome(.refused(reason: "550")) == .refused)
        #expect(MailTestOutcome(.deferred(reason: "451")) == .deferred)
        #expect(MailTestOutcome(.unavailable(reason: "refused")) == .unavailable)
        let cases: [(MailError.Code, MailTestOutcome)] = [
            (.rejected, .refused), (.invalidMessage, .refused), (.deferred, .deferred), (.timeout, .deferred),
            (.failed, .deferred), (.connectionFailed, .unavailable), (.tlsFailed, .unavailable),
            (.certificateRejected, .unavailable), (.authenticationFailed, .unavailable), (.writeFailed, .unavailable),
            (.mailerClosed, .unavailable), (.tokenUnavailable, .unavailable), (.tokenRefused, .unavailable),
        ]
        for (code, outcome) in cases {
            #expect(MailTestOutcome(MailError.make(code, "x").deliveryFailure) == outcome, "\(code)")
        }
    }

    @Test("the reply code, and the queue id of the common mail systems' replies")
    func replies() {
        #expect(SMTPReply.code("250 2.0.0 Ok") == 250)
        #expect(SMTPReply.code("550-5.1.1 no such user\n550 5.1.1 bye") == 550)
        #expect(SMTPReply.code("hello") == nil)
        #expect(SMTPReply.code("25") == nil)
        let ids: [(String, String?)] = [
            ("250 2.0.0 Ok: queued as 4ABC12DEF", "4ABC12DEF"),
            ("250 2.0.0 OK queued as herald-test-1", "herald-test-1"),
            ("250 OK id=1tXyZa-000Abc-12", "1tXyZa-000Abc-12"),
            ("250 2.0.0 5BUG0x8C012345 Message accepted for delivery", "5BUG0x8C012345"),
            ("250 2.0.0 Ok: queued as <4ABC12>.", "4ABC12"),
            ("250-first line\n250 Ok: queued as LAST1", "LAST1"),
            ("250 OK", nil),
            ("250 2.0.0 Message accepted for delivery", nil),
            ("250 Message accepted", nil),
            ("250 2.0.0 OK  1700000000 a1-20020a05 - gsmtp", nil),
        ]
        for (reply, id) in ids {
            #expect(SMTPReply.queueID(reply) == id, "\(reply)")
        }
        // Only an accepted message has a queue id.
        let refused = MailTestResult(outcome: .refused, reply: "550 queued as nothing", server: "smtp://h:25")
        #expect(refused.queueID == nil)
    }

    @Test("the leaf certificate from libcurl's certificate lines; OpenSSL's dates as RFC 3339")
    func certificate() throws {
        let chain = [
            [
                "Subject:CN = localhost", "Issuer:CN = Herald Test CA", "Version:2", "Start date:Nov 30 16:00:00 2025 GMT",
                "Expire date:Mar  4 09:05:01 2026 GMT",
            ],
            ["Subject:CN = Herald Test CA", "Issuer:CN = Herald Test CA"],
        ]
        let summary = try #require(TLSCertificateSummary(chain: chain))
        #expect(summary.subject == "CN = localhost")
        #expect(summary.issuer == "CN = Herald Test CA")
        #expect(summary.notBefore == "2025-11-30T16:00:00.000Z")
        #expect(summary.notAfter == "2026-03-04T09:05:01.000Z")
        #expect(summary.chainLength == 2)
        #expect(TLSCertificateSummary(chain: []) == nil)
        // Another backend's form is shown as it is.
        let other = try #require(TLSCertificateSummary(chain: [["Expire date:2026-03-04 09:05:01 UTC"]]))
        #expect(other.notAfter == "2026-03-04 09:05:01 UTC")
        #expect(other.subject == nil)
        let impossible = try #require(TLSCertificateSummary(chain: [["Expire date:Feb 30 09:05:01 2026 GMT"]]))
        #expect(impossible.notAfter == "Feb 30 09:05:01 2026 GMT")
    }

    @Test("the TLS version and cipher from libcurl's note on the handshake")
    func handshake() {
        #expect(MailTestTLS.versionAndCipher("TLSv1.3 / TLS_AES_256_GCM_SHA384") == ("TLSv1.3", "TLS_AES_256_GCM_SHA384"))
        #expect(
            MailTestTLS.versionAndCipher("TLSv1.3 / TLS_AES_128_GCM_SHA256 / X25519 / RSASSA-PSS") == ("TLSv1.3", "TLS_AES_128_GCM_SHA256"))
        #expect(MailTestTLS.versionAndCipher("TLS1.3") == ("TLS1.3", nil))
        #expect(MailTestTLS.versionAndCipher(nil) == (nil, nil))
    }

    @Test("the server URL never carries the password")
    func serverURL() throws {
        let settings = try SMTPSettings(url: "smtp://ana:s3cret%21@mail.example.com:2525/herald.test")
        #expect(settings.serverURL == "smtp://ana@mail.example.com:2525")
        #expect(try SMTPSettings(url: "smtps://mail.example.com", password: "pw").serverURL == "smtps://mail.example.com:465")
        #expect(try SMTPSettings(url: "file://var/mail").serverURL == "file://var/mail")
        #expect(!settings.description.contains("s3cret"))
    }

    static func report(_ result: MailTestResult, link: String? = nil) -> MailTestReport {
        MailTestReport(
            result: result, kind: "welcome", locale: "en", to: "ana@example.com", from: "Herald <no-reply@herald.test>",
            subject: "Welcome to Herald", messageID: "<herald-mail-test-1@herald.test>", sampleLink: link)
    }

    static let tls = MailTestTLS(
        mode: .startTLS, used: true, version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384",
        certificate: TLSCertificateSummary(
            subject: "CN = mail.example.com", issuer: "CN = Example CA", notBefore: "2025-01-01T00:00:00.000Z",
            notAfter: "2026-01-01T00:00:00.000Z", chainLength: 2), verified: true)

    @Test("the text report: the outcome and the server's answer first, the facts, the sample said, the exit code")
    func textAccepted() {
        let result = MailTestResult(
            outcome: .accepted, smtpCode: 250, reply: "250 2.0.0 Ok: queued as 4ABC", server: "smtp://ana@mail.example.com:587",
            tls: Self.tls)
        let text = Self.report(result).text
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "accepted: 250 2.0.0 Ok: queued as 4ABC")
        #expect(lines.contains("  queue id     4ABC"))
        #expect(lines.contains("  message id   <herald-mail-test-1@herald.test>"))
        #expect(lines.contains("  server       smtp://ana@mail.example.com:587"))
        #expect(lines.contains("  tls          STARTTLS, TLSv1.3, TLS_AES_256_GCM_SHA384"))
        #expect(
            lines.contains("  certificate  CN = mail.example.com, issued by CN = Example CA, expires 2026-01-01T00:00:00.000Z, verified"))
        #expect(lines.contains("  mail         welcome (en): Welcome to Herald"))
        #expect(lines.contains("  note         " + MailTestReport.note))
        #expect(lines.last == "  exit code    0 (accepted)")
        #expect(!text.contains("reason"))
    }

    @Test("the text report of a refusal: the reply's every line, the reason; a sample link said to be one")
    func textRefused() {
        let result = MailTestResult(
            outcome: .refused, reason: "RCPT failed: 550: 550-5.1.1 no such user\n550 5.1.1 see the docs", smtpCode: 550,
            reply: "550-5.1.1 no such user\n550 5.1.1 see the docs", server: "smtp://127.0.0.1:25",
            tls: MailTestTLS(mode: .none, used: false, verified: true))
        let text = Self.report(result, link: "https://auth.example.com/r?token=SAMPLE").text
        #expect(text.hasPrefix("refused: 550-5.1.1 no such user\n"))
        #expect(text.contains("  reply        550-5.1.1 no such user\n               550 5.1.1 see the docs"))
        #expect(text.contains("  reason       RCPT failed: 550"))
        #expect(text.contains("  tls          none: plaintext allowed (HERALD_SMTP_ALLOW_PLAINTEXT=true)"))
        #expect(text.contains("  link         https://auth.example.com/r?token=SAMPLE (a sample: it grants nothing)"))
        #expect(text.hasSuffix("  exit code    65 (refused)"))
        #expect(!text.contains("queue id"))
    }

    @Test("no answer at all: the reason heads the report; TLS required but never established")
    func textUnavailable() {
        let result = MailTestResult(
            outcome: .unavailable, reason: "SMTP connection failed: Couldn't connect to server", server: "smtps://127.0.0.1:1",
            tls: MailTestTLS(mode: .implicitTLS, used: false, verified: false))
        let text = Self.report(result).text
        #expect(text.hasPrefix("unavailable: SMTP connection failed: Couldn't connect to server\n"))
        #expect(text.contains("  tls          implicit TLS required, not established"))
        #expect(text.hasSuffix("  exit code    69 (unavailable)"))
    }

    @Test("the JSON report: every key present, null when empty, snake_case, one line of valid JSON")
    func json() throws {
        let keys: Set<String> = [
            "outcome", "exit_code", "reason", "smtp_code", "reply", "queue_id", "message_id", "kind", "locale", "to", "from",
            "subject", "transport", "server", "file", "tls", "tls_mode", "tls_version", "tls_cipher", "certificate",
            "certificate_verified", "sample_link", "note", "auth", "auth_token_source",
        ]
        let accepted = Self.report(
            MailTestResult(
                outcome: .accepted, smtpCode: 250, reply: "250 2.0.0 Ok: queued as 4ABC", server: "smtp://mail.example.com:587",
                authentication: .xoauth2(.file(path: "/run/secrets/smtp-token")), tls: Self.tls),
            link: "https://auth.example.com/r?token=SAMPLE")
        var object = try roundTrip(accepted.jsonObject)
        #expect(Set(object.keys) == keys)
        #expect(object["auth"] as? String == "xoauth2" && object["auth_token_source"] as? String == "file")
        #expect(accepted.text.contains("  auth         xoauth2 (token file /run/secrets/smtp-token)\n"), "\(accepted.text)")
        #expect(object["outcome"] as? String == "accepted")
        #expect(object["exit_code"] as? Int == 0)
        #expect(object["smtp_code"] as? Int == 250)
        #expect(object["queue_id"] as? String == "4ABC")
        #expect(object["transport"] as? String == "smtp")
        #expect(object["tls"] as? Bool == true)
        #expect(object["tls_mode"] as? String == "starttls")
        #expect(object["tls_version"] as? String == "TLSv1.3")
        #expect(object["certificate_verified"] as? Bool == true)
        #expect(object["reason"] is NSNull && object["file"] is NSNull)
        #expect(object["sample_link"] as? String == "https://auth.example.com/r?token=SAMPLE")
        let certificate = try #require(object["certificate"] as? [String: Any])
        #expect(Set(certificate.keys) == ["subject", "issuer", "not_before", "not_after", "chain_length"])
        #expect(certificate["not_after"] as? String == "2026-01-01T00:00:00.000Z")

        let file = Self.report(MailTestResult(outcome: .unavailable, reason: "cannot write", server: "file://var/mail"))
        object = try roundTrip(file.jsonObject)
        #expect(Set(object.keys) == keys)
        #expect(object["transport"] as? String == "file")
        #expect(object["exit_code"] as? Int == 69)
        for key in [
            "auth", "auth_token_source", "tls", "tls_mode", "tls_version", "tls_cipher", "certificate", "certificate_verified", "smtp_code",
            "reply", "queue_id",
        ] {
            #expect(object[key] is NSNull, "\(key)")
        }
    }

    private func roundTrip(_ object: [String: Any]) throws -> [String: Any] {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        #expect(!data.contains(UInt8(ascii: "\n")))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
