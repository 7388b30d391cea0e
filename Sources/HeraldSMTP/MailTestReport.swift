import Foundation

/// What `herald mail test` prints about one test send: the outcome and its exit code, what the
/// server answered, the mail, where it went and how the connection was secured; as text or as
/// one JSON object. Never a password (`server` is `SMTPSettings.serverURL`).
public struct MailTestReport: Sendable {
    public var result: MailTestResult
    public var kind: String
    /// The locale whose templates were used (after fallback).
    public var locale: String
    public var to: String
    public var from: String
    public var subject: String
    public var messageID: String
    /// The link of a link kind: a sample, carrying no token.
    public var sampleLink: String?

    public init(
        result: MailTestResult, kind: String, locale: String, to: String, from: String, subject: String, messageID: String,
        sampleLink: String?
    ) {
        self.result = result
        self.kind = kind
        self.locale = locale
        self.to = to
        self.from = from
        self.subject = subject
        self.messageID = messageID
        self.sampleLink = sampleLink
    }

    /// Said with every report: the test leaves no trace in Herald's stores.
    public static let note =
        "sample data, sent now: nothing was queued or stored, and no link token was minted (a link in it grants nothing)"

    public var exitCode: Int32 { result.outcome.exitCode }

    /// Lines for a terminal: the outcome and the server's answer first, then one labelled line
    /// per fact.
    public var text: String {
        var lines = ["\(result.outcome.rawValue): " + (firstLine(result.reply) ?? result.reason ?? "")]
        func add(_ label: String, _ value: String?) {
            guard let value else { return }
            let padded = label.padding(toLength: 12, withPad: " ", startingAt: 0)
            lines.append("  \(padded) " + value.replacingOccurrences(of: "\n", with: "\n  " + String(repeating: " ", count: 13)))
        }
        if let reply = result.reply, reply.contains("\n") { add("reply", reply) }
        // Without a reply, the reason heads the report already.
        if result.outcome != .accepted, result.reply != nil { add("reason", result.reason) }
        add("to", to)
        add("mail", "\(kind) (\(locale)): \(subject)")
        add("from", from)
        add("message id", messageID)
        add("queue id", result.queueID)
        add("server", result.server)
        add("auth", result.authentication.map { "\($0)" })
        add("file", result.file)
        if let tls = result.tls {
            add("tls", tlsLine(tls))
            if let certificate = tls.certificate {
                var parts = [certificate.subject ?? "no subject", "issued by " + (certificate.issuer ?? "?")]
                if let notAfter = certificate.notAfter { parts.append("expires \(notAfter)") }
                parts.append(tls.verified ? "verified" : "NOT verified (HERALD_SMTP_VERIFY_CERTIFICATE=false)")
                add("certificate", parts.joined(separator: ", "))
            }
        }
        add("link", sampleLink.map { "\($0) (a sample: it grants nothing)" })
        add("note", Self.note)
        add("exit code", "\(exitCode) (\(result.outcome.rawValue))")
        return lines.joined(separator: "\n")
    }

    private func tlsLine(_ tls: MailTestTLS) -> String {
        let mode: String
        switch tls.mode {
        case .none: return "none: plaintext allowed (HERALD_SMTP_ALLOW_PLAINTEXT=true)"
        case .startTLS: mode = "STARTTLS"
        case .implicitTLS: mode = "implicit TLS"
        }
        guard tls.used else { return "\(mode) required, not established" }
        let details = [tls.version, tls.cipher].compactMap { $0 }
        return details.isEmpty ? mode : "\(mode), " + details.joined(separator: ", ")
    }

    /// `file` or `client_credentials` for XOAUTH2.
    private static func tokenSource(_ authentication: SMTPAuthentication) -> String? {
        switch authentication {
        case .xoauth2(.file): "file"
        case .xoauth2(.clientCredentials): "client_credentials"
        case .anonymous, .password: nil
        }
    }

    private func firstLine(_ text: String?) -> String? {
        text.map { String($0.prefix { !$0.isNewline }) }
    }

    /// One JSON object, in the style of every `herald` command's JSON: snake_case keys, every
    /// field present (`null` when empty), nested values as objects.
    public var jsonObject: [String: Any] {
        func value(_ optional: Any?) -> Any { optional ?? NSNull() }
        let tls = result.tls
        let certificate: Any =
            tls?.certificate.map { c -> Any in
                [
                    "subject": value(c.subject), "issuer": value(c.issuer), "not_before": value(c.notBefore),
                    "not_after": value(c.notAfter), "chain_length": c.chainLength,
                ] as [String: Any]
            } ?? NSNull()
        return [
            "outcome": result.outcome.rawValue,
            "exit_code": Int(exitCode),
            "reason": value(result.reason),
            "smtp_code": value(result.smtpCode),
            "reply": value(result.reply),
            "queue_id": value(result.queueID),
            "message_id": messageID,
            "kind": kind,
            "locale": locale,
            "to": to,
            "from": from,
            "subject": subject,
            "transport": tls == nil ? "file" : "smtp",
            "server": result.server,
            "auth": value(result.authentication?.method),
            "auth_token_source": value(result.authentication.flatMap(Self.tokenSource)),
            "file": value(result.file),
            "tls": value(tls?.used),
            "tls_mode": value(tls?.mode.rawValue),
            "tls_version": value(tls?.version),
            "tls_cipher": value(tls?.cipher),
            "certificate": certificate,
            "certificate_verified": value(tls.map { $0.verified }),
            "sample_link": value(sampleLink),
            "note": Self.note,
        ]
    }
}
