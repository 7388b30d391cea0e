import HeraldCore

/// Why a mail was not sent. Callers never import C to match one: `code` says what went
/// wrong, `isTransient` whether sending the same message later may succeed, `smtpCode` and
/// `serverReply` what the server said (the reply is what the mail queue records for a
/// failed mail).
///
/// Classification:
/// - transient: 4xx replies, timeouts, connection failures, DNS, TLS handshake failures, a
///   server certificate that fails verification, refused authentication, a server that does
///   not offer STARTTLS, a mailer that was closed, an XOAUTH2 token that could not be had (the
///   token endpoint unreachable, failing or refusing Herald's client, the token file
///   unreadable). The certificate, authentication, STARTTLS and token-refused cases are
///   configuration errors that no retry of this message fixes, but every message would fail
///   the same way: they are transient so the queue keeps the mail until an operator fixes the
///   configuration (as a Redis `AUTH` refusal does), and the mailer logs them at `error`.
/// - permanent: 5xx replies (other than authentication), and a message that cannot be sent
///   as given (a CR or LF in a header value, an invalid header name).
///
/// `description` is safe to log: a fixed summary or libcurl's error text, never a password
/// or the message. The server's reply is in `serverReply` and `debugDescription`.
public struct MailError: ClassifiedError, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What went wrong, in a form callers can match on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Sendable {
            case invalidMessage = "invalid message"
            case rejected = "rejected"
            case deferred = "deferred"
            case connectionFailed = "connection failed"
            case timeout = "timed out"
            case tlsFailed = "TLS failed"
            case certificateRejected = "certificate rejected"
            case authenticationFailed = "authentication failed"
            case tokenUnavailable = "OAuth2 token unavailable"
            case tokenRefused = "OAuth2 token refused"
            case mailerClosed = "mailer closed"
            case writeFailed = "write failed"
            case failed = "failed"
        }

        fileprivate let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The message cannot be sent as given (CR or LF in a header value). Permanent;
        /// nothing was sent.
        public static let invalidMessage = Code(.invalidMessage)
        /// The server answered 5xx. Permanent.
        public static let rejected = Code(.rejected)
        /// The server answered 4xx. Transient.
        public static let deferred = Code(.deferred)
        /// No connection (refused, unreachable, DNS, or no reply from the server before the
        /// timeout: a server that accepts TCP and never greets), or it broke. Transient.
        public static let connectionFailed = Code(.connectionFailed)
        /// The transfer timed out after the server had answered (a timeout before its first
        /// reply is `connectionFailed`). Transient.
        public static let timeout = Code(.timeout)
        /// The TLS handshake failed, or the server offers no STARTTLS although it is required.
        /// Transient (see the type's documentation).
        public static let tlsFailed = Code(.tlsFailed)
        /// The server's certificate did not verify. Transient (see the type's documentation).
        public static let certificateRejected = Code(.certificateRejected)
        /// The server refused the credentials (or requires some). Transient.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// No XOAUTH2 token could be had: the token endpoint unreachable, answering 5xx or 429,
        /// or not with a token; the token file missing, unreadable or empty. Transient.
        public static let tokenUnavailable = Code(.tokenUnavailable)
        /// The token endpoint refused Herald's client (4xx: `invalid_client`, `invalid_scope`,
        /// `unauthorized_client`…): the OAuth2 settings need fixing. Transient (see the type's
        /// documentation).
        public static let tokenRefused = Code(.tokenRefused)
        /// The mailer was closed (Herald is shutting down). Transient.
        public static let mailerClosed = Code(.mailerClosed)
        /// The file transport could not write the message. Transient.
        public static let writeFailed = Code(.writeFailed)
        /// Any other libcurl failure. Transient.
        public static let failed = Code(.failed)

        public var description: String { backing.rawValue }

        /// Whether a send that failed with this code may succeed later.
        public var isTransient: Bool {
            switch backing {
            case .invalidMessage, .rejected: false
            default: true
            }
        }
    }

    public let code: Code
    public let isTransient: Bool
    /// The SMTP reply code that ended the attempt, when the server answered.
    public let smtpCode: Int?
    /// The server's last reply (all its lines, joined by newlines), when it answered.
    public let serverReply: String?
    /// A fixed explanation or libcurl's error text.
    public let summary: String
    public let file: String
    public let line: UInt

    public var description: String {
        var text = "SMTP \(code)"
        if let smtpCode { text += " (\(smtpCode))" }
        if !summary.isEmpty { text += ": \(summary)" }
        return text
    }

    public var debugDescription: String {
        var text = description
        if let serverReply { text += " [\(serverReply)]" }
        return text + " at \(file):\(line)"
    }

    init(_ code: Code, summary: String, smtpCode: Int? = nil, serverReply: String? = nil, file: String, line: UInt) {
        self.code = code
        self.isTransient = code.isTransient
        self.summary = summary
        self.smtpCode = smtpCode
        self.serverReply = serverReply
        self.file = file
        self.line = line
    }

    /// This failure in the courier's terms (`MailDeliveryFailure`), with the server's reply
    /// when it answered:
    /// - refused: a 5xx, or a message that cannot be sent as given;
    /// - unavailable: no connection (a timeout before the server's first reply included), TLS,
    ///   the certificate or the credentials refused, no XOAUTH2 token to be had, the mailer
    ///   closed, the mail directory not writable (every message would fail alike: the mail
    ///   waits without using an attempt);
    /// - deferred: a 4xx, a timeout once the server had answered, any other transfer failure
    ///   (this message's attempt counts).
    public var deliveryFailure: MailDeliveryFailure {
        let reason = serverReply.map { "\(summary): \($0)" } ?? description
        switch code.backing {
        case .invalidMessage, .rejected:
            return .refused(reason: reason)
        case .connectionFailed, .tlsFailed, .certificateRejected, .authenticationFailed, .tokenUnavailable, .tokenRefused,
            .mailerClosed, .writeFailed:
            return .unavailable(reason: reason)
        case .deferred, .timeout, .failed:
            return .deferred(reason: reason)
        }
    }

    public static func make(
        _ code: Code, _ summary: String, smtpCode: Int? = nil, serverReply: String? = nil,
        file: String = #fileID, line: UInt = #line
    ) -> MailError {
        MailError(code, summary: summary, smtpCode: smtpCode, serverReply: serverReply, file: file, line: line)
    }
}
