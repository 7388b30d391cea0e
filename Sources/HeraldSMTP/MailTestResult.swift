import HeraldCore

/// What became of a test send (`herald mail test`), in the courier's terms: accepted, or one of
/// the three failures a transport reports (`MailDeliveryFailure`), each with its own exit code.
public enum MailTestOutcome: String, Sendable, CaseIterable {
    case accepted, refused, deferred, unavailable

    /// The outcome `failure` stands for (`accepted` for none): the classification the courier
    /// acts on, so a test says what `herald run` would do with a mail sent the same way.
    public init(_ failure: MailDeliveryFailure?) {
        switch failure {
        case nil: self = .accepted
        case .refused: self = .refused
        case .deferred: self = .deferred
        case .unavailable: self = .unavailable
        }
    }

    /// 0 when accepted; otherwise sysexits.h's code of the same meaning: 65 (EX_DATAERR) when
    /// refused for good (SMTP 5xx, a message that cannot be sent), 75 (EX_TEMPFAIL) when
    /// deferred (SMTP 4xx, a timeout after the server answered: try again later), 69
    /// (EX_UNAVAILABLE) when no mail can go now (no connection or no reply, TLS or credentials
    /// refused, no XOAUTH2 token, the mail directory not writable).
    public var exitCode: Int32 {
        switch self {
        case .accepted: 0
        case .refused: 65
        case .deferred: 75
        case .unavailable: 69
        }
    }
}

/// One test send as the transport saw it: the outcome, what the server answered, where it
/// went and how the connection was secured. Never a password.
public struct MailTestResult: Sendable, Hashable {
    public var outcome: MailTestOutcome
    /// Why it was not accepted, as the courier would record it (`MailDeliveryFailure.reason`).
    public var reason: String?
    /// The reply code of the server's final answer, when it answered.
    public var smtpCode: Int?
    /// The server's final answer, all its lines joined by newlines.
    public var reply: String?
    /// The file transport: the `.eml` file written.
    public var file: String?
    /// `SMTPSettings.serverURL`: the server or the mail directory, never the password.
    public var server: String
    /// How Herald authenticated to the SMTP server (`HERALD_SMTP_AUTH`); nil for the file
    /// transport. Never a password or a token.
    public var authentication: SMTPAuthentication?
    /// How the SMTP connection was secured; nil for the file transport.
    public var tls: MailTestTLS?

    public init(
        outcome: MailTestOutcome, reason: String? = nil, smtpCode: Int? = nil, reply: String? = nil, file: String? = nil,
        server: String, authentication: SMTPAuthentication? = nil, tls: MailTestTLS? = nil
    ) {
        self.outcome = outcome
        self.reason = reason
        self.smtpCode = smtpCode
        self.reply = reply
        self.file = file
        self.server = server
        self.authentication = authentication
        self.tls = tls
    }

    /// The mail system's id for the accepted message, when its reply names one.
    public var queueID: String? {
        guard outcome == .accepted, let reply else { return nil }
        return SMTPReply.queueID(reply)
    }
}

/// How the connection of a test send was secured, as far as libcurl reports it.
public struct MailTestTLS: Sendable, Hashable {
    public enum Mode: String, Sendable {
        /// `smtp://`: upgraded with STARTTLS, which Herald requires.
        case startTLS = "starttls"
        /// `smtps://`: TLS from the first byte.
        case implicitTLS = "implicit"
        /// `smtp://` with `HERALD_SMTP_ALLOW_PLAINTEXT=true`: no TLS.
        case none
    }

    public var mode: Mode
    /// Whether the dialogue that ended the send ran over TLS.
    public var used: Bool
    /// The protocol version libcurl negotiated (`TLSv1.3`), when it said.
    public var version: String?
    /// The cipher suite (`TLS_AES_256_GCM_SHA384`), when libcurl said.
    public var cipher: String?
    /// The server's certificate, when libcurl gathered it (CURLINFO_CERTINFO).
    public var certificate: TLSCertificateSummary?
    /// Whether Herald checks the certificate and the host name
    /// (`HERALD_SMTP_VERIFY_CERTIFICATE`).
    public var verified: Bool

    public init(
        mode: Mode, used: Bool, version: String? = nil, cipher: String? = nil, certificate: TLSCertificateSummary? = nil,
        verified: Bool
    ) {
        self.mode = mode
        self.used = used
        self.version = version
        self.cipher = cipher
        self.certificate = certificate
        self.verified = verified
    }

    /// The version and cipher in libcurl's note on a handshake (`TLSv1.3 /
    /// TLS_AES_256_GCM_SHA384`, newer libcurls add the key exchange group and signature
    /// after further slashes); a note without a slash is all version.
    public static func versionAndCipher(_ handshake: String?) -> (version: String?, cipher: String?) {
        guard let handshake else { return (nil, nil) }
        let parts = handshake.split(separator: "/").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        return (parts.first, parts.count > 1 ? parts[1] : nil)
    }
}

/// The leaf certificate of the chain a server presented, from libcurl's `name:content` lines
/// (CURLINFO_CERTINFO).
public struct TLSCertificateSummary: Sendable, Hashable {
    public var subject: String?
    public var issuer: String?
    /// RFC 3339 when libcurl's form (`Nov 30 16:00:00 2025 GMT`) could be read, else as
    /// libcurl wrote it.
    public var notBefore: String?
    public var notAfter: String?
    /// How many certificates the server sent.
    public var chainLength: Int

    public init(subject: String?, issuer: String?, notBefore: String?, notAfter: String?, chainLength: Int) {
        self.subject = subject
        self.issuer = issuer
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.chainLength = chainLength
    }

    /// The first certificate of `chain` (each certificate as its `name:content` lines); nil
    /// for an empty chain.
    public init?(chain: [[String]]) {
        guard let leaf = chain.first else { return nil }
        func field(_ name: String) -> String? {
            for line in leaf {
                guard let colon = line.firstIndex(of: ":"), line[..<colon] == name else { continue }
                let value = line[line.index(after: colon)...].trimmingSpaces()
                return value.isEmpty ? nil : value
            }
            return nil
        }
        self.init(
            subject: field("Subject"), issuer: field("Issuer"), notBefore: field("Start date").map(Self.time),
            notAfter: field("Expire date").map(Self.time), chainLength: chain.count)
    }

    /// OpenSSL's `ASN1_TIME_print` form (`Nov 30 16:00:00 2025 GMT`, `Mar  4 …`) as RFC 3339;
    /// any other text unchanged.
    static func time(_ text: String) -> String {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = text.split(separator: " ")
        guard parts.count == 5, parts[4] == "GMT", let month = months.firstIndex(of: String(parts[0])), let day = Int(parts[1]),
            (1...31).contains(day), parts[2].count == 8, parts[3].count == 4, Int(parts[3]) != nil
        else { return text }
        let iso = "\(parts[3])-\(month < 9 ? "0" : "")\(month + 1)-\(day < 10 ? "0" : "")\(day)T\(parts[2])Z"
        return RFC3339.parse(iso).map(RFC3339.format) ?? text
    }
}

/// Reading an SMTP server's reply.
public enum SMTPReply {
    /// The reply code that starts `reply` (`250` of `250 2.0.0 Ok`).
    public static func code(_ reply: String) -> Int? {
        let digits = reply.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
        return Int(digits)
    }

    /// The queue id a mail system put in its reply to an accepted message: Postfix and many
    /// others (`250 2.0.0 Ok: queued as 4ABC12`), Exim (`250 OK id=1tXyZa-000Abc-12`),
    /// sendmail (`250 2.0.0 5BUG0x8C012345 Message accepted for delivery`). Nil when the reply
    /// names none in a form Herald knows.
    public static func queueID(_ reply: String) -> String? {
        for line in reply.split(whereSeparator: \.isNewline).reversed() {
            let words = line.split(separator: " ").map(String.init)
            var candidate: String?
            if let queued = words.indices.first(where: {
                words[$0].lowercased() == "queued" && $0 + 2 < words.count && words[$0 + 1].lowercased() == "as"
            }) {
                candidate = words[queued + 2]
            } else if let id = words.first(where: { $0.lowercased().hasPrefix("id=") }) {
                candidate = String(id.dropFirst(3))
            } else if let message = words.indices.dropFirst().first(where: {
                $0 + 1 < words.count && words[$0].lowercased() == "message" && words[$0 + 1].lowercased() == "accepted"
            }) {
                // Not the reply code or the enhanced status code (`250 2.0.0 Message accepted`).
                let previous = words[message - 1]
                if !previous.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) { candidate = previous }
            }
            if let cleaned = candidate.map(clean), !cleaned.isEmpty { return cleaned }
        }
        return nil
    }

    /// Without surrounding brackets and trailing punctuation.
    private static func clean(_ word: String) -> String {
        var text = Substring(word)
        while let first = text.first, "([<\"'".contains(first) { text = text.dropFirst() }
        while let last = text.last, ")]>\"'.,;:".contains(last) { text = text.dropLast() }
        return String(text)
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
