/// Sends composed mail: the courier's outgoing port. An adapter implements it for one way of
/// sending (HeraldSMTP: an SMTP server, or `.eml` files) and reports every failure as a
/// `MailDeliveryFailure`, so the courier decides a mail's outcome without knowing how it was
/// sent.
public protocol MailTransport: Sendable {
    /// Sends `message` from `message.from` to `message.to`; returns once it was accepted.
    func deliver(_ message: MailMessage) async throws(MailDeliveryFailure) -> MailReceipt

    /// Starts no new send, lets the sends in progress end, then closes the transport's
    /// connections; returns once they are closed (within the transport's own timeouts). Sends
    /// asked for afterwards fail as `unavailable`.
    func close() async
}

/// What the transport reports for an accepted message.
public struct MailReceipt: Sendable, Hashable {
    public let messageID: String
    /// The server's reply to the message (`250 2.0.0 Ok: queued as 4ABC`), or the file written
    /// by the file transport.
    public let reply: String?

    public init(messageID: String, reply: String?) {
        self.messageID = messageID
        self.reply = reply
    }
}

/// Why a transport did not deliver one message, in the terms the courier's outcome table
/// needs. `reason` says what happened, with the server's reply when it answered; it is
/// recorded as the notification's `last_error` and logged (never a password or the message).
public enum MailDeliveryFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Refused for good: the server's permanent refusal (SMTP 5xx), or a message that cannot
    /// be sent as given (a CR or LF in a header value). Sending it again cannot succeed: the
    /// mail is `failed`.
    case refused(reason: String)
    /// Not accepted this time: a temporary refusal (SMTP 4xx), a timeout, a transfer broken
    /// off. This message may go later: the attempt counts, and the mail is retried with backoff
    /// until it is `abandoned`.
    case deferred(reason: String)
    /// The transport cannot send any message now: the server unreachable, its TLS or the
    /// credentials refused, the mail directory not writable, the transport closed. Not this
    /// message's doing (every message would fail alike): the mail goes back to the queue
    /// without using an attempt, and the courier pauses.
    case unavailable(reason: String)

    public var reason: String {
        switch self {
        case .refused(let reason), .deferred(let reason), .unavailable(let reason): reason
        }
    }

    public var description: String { reason }
}
