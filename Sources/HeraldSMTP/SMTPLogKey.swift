/// The metadata keys HeraldSMTP adds to log records. Recipient addresses are not logged.
enum SMTPLogKey {
    /// `SMTPSettings.description`: scheme, user, host and port, never the password.
    static let server = "smtp_server"
    static let messageID = "message_id"
    static let smtpCode = "smtp_code"
    static let error = "error"
    /// The server's reply; logged at `debug` only.
    static let reply = "smtp_reply"
    static let file = "mail_file"
}
