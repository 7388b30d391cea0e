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
    /// The OAuth2 token endpoint's URL (never the client secret or a token).
    static let tokenEndpoint = "oauth2_token_url"
    /// The token endpoint's `error_description` when it refused or failed.
    static let tokenError = "oauth2_error_description"
    /// How long a token just obtained is valid.
    static let tokenLifetime = "oauth2_token_lifetime"
    /// `SMTPAuthentication.description`: the method and the token's source.
    static let authentication = "smtp_auth"
}
