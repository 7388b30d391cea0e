import HeraldCore
import HeraldSMTP
import Logging

/// Shared helpers of the SMTP suites.
enum SMTPTests {
    static let quietLogger = Logger(label: "herald.smtp.test") { _ in SwiftLogNoOpLogHandler() }

    static func address(_ text: String) -> EmailAddress {
        try! EmailAddress(text)
    }

    /// A complete message; `id` makes the Message-ID unique.
    static func message(
        id: String = "1", subject: String = "Welcome to Herald", fromName: String? = "Herald",
        toName: String? = "Ana Souza", text: String = "Hello Ana,\nwelcome aboard.\n",
        html: String = "<p>Hello Ana,</p>\n<p>welcome aboard.</p>\n"
    ) -> MailMessage {
        MailMessage(
            from: MailAddress(address("noreply@herald.example"), displayName: fromName),
            to: MailAddress(address("ana@example.com"), displayName: toName),
            replyTo: MailAddress(address("support@herald.example"), displayName: "Support"),
            subject: subject, textBody: text, htmlBody: html, messageID: "<\(id).test@herald.local>",
            date: EventTime(millisecondsSinceEpoch: 1_751_371_200_000), headers: [MailHeader("X-Herald-Kind", "welcome")])
    }

    /// Settings for `server`. The timeouts are bounds for a hung server, far above a send's
    /// usual time: a TLS handshake on a loaded two-core machine can take seconds.
    static func settings(
        _ server: SMTPServer, scheme: String = "smtp", credentials: String = "", allowPlaintext: Bool = false,
        caFile: String? = nil
    ) throws -> SMTPSettings {
        try SMTPSettings(
            url: "\(scheme)://\(credentials)127.0.0.1:\(server.port)/herald.test", allowPlaintext: allowPlaintext, caFile: caFile,
            connectTimeout: .seconds(30), transferTimeout: .seconds(60))
    }

    /// Runs `body` and returns the `MailError` it threw (nil when it threw nothing or something
    /// else, which the caller's `#expect` then reports).
    static func mailError(_ body: () async throws -> Void) async -> MailError? {
        do {
            try await body()
            return nil
        } catch let error as MailError {
            return error
        } catch {
            return nil
        }
    }
}
