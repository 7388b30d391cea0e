import Logging

/// Sends one rendered message. Throws `MailError`.
public protocol MailTransport: Sendable {
    func send(_ message: MailMessage) async throws -> MailReceipt
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

/// The transport `settings` describe: an `SMTPMailer` with `workers` sender threads, or a
/// `FileMailer`.
public func makeMailer(_ settings: SMTPSettings, workers: Int, logger: Logger) -> any MailTransport {
    switch settings.transport {
    case .smtp:
        SMTPMailer(settings: settings, workers: workers, logger: logger)
    case .file(let directory):
        FileMailer(directory: directory, logger: logger)
    }
}
