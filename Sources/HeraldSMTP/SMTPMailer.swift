import HeraldBlocking
import HeraldCore
import Logging

/// Sends mail through libcurl's SMTP client. `workers` dedicated threads (a
/// `BlockingThreadPool`, as the Redis and PostgreSQL connections use) each keep one
/// `CurlSMTPSession` (a libcurl easy handle, so one SMTP connection) across messages; a send
/// goes to a free thread, or waits in line for one, so one slow server reply does not hold
/// back the mail behind it. `curl_easy_perform` blocks for up to the transfer timeout and
/// never runs on Swift's cooperative pool.
///
/// MAIL FROM is `message.from.address`, RCPT TO `message.to.address`. `send` throws
/// `MailError` (see there for what is transient); as the courier's `MailTransport`,
/// `deliver` reports the same failure as a `MailDeliveryFailure`. A message with a CR or LF in
/// a header value fails before anything is sent.
///
/// With `SMTPAuthentication.xoauth2`, each send authenticates with the token of the moment
/// (`XOAUTH2Tokens`): the token file's content, read before each send, or the
/// client-credentials token the mailer's `OAuth2TokenCache` holds and renews.
public final class SMTPMailer: MailSender, Sendable {
    private let settings: SMTPSettings
    private let threads: BlockingThreadPool<CurlSMTPSession>
    private let tokens: XOAUTH2Tokens
    private let logger: Logger

    /// `observer` hears of failed token requests (client credentials only).
    public init(
        settings: SMTPSettings, workers: Int = 2, observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger
    ) {
        self.settings = settings
        self.threads = BlockingThreadPool(
            size: max(1, workers), name: "herald-smtp", closedError: { MailError.make(.mailerClosed, "the mailer is closed") })
        var logger = logger
        logger[metadataKey: SMTPLogKey.server] = "\(settings)"
        logger[metadataKey: SMTPLogKey.authentication] = "\(settings.authentication)"
        self.logger = logger
        self.tokens = XOAUTH2Tokens(settings: settings, observer: observer, logger: logger)
    }

    deinit {
        threads.close()
        tokens.close()
    }

    /// Requests made to the OAuth2 token endpoint so far (0 without client credentials).
    public var tokenRequests: Int { tokens.cache?.requests ?? 0 }

    public func send(_ message: MailMessage) async throws(MailError) -> MailReceipt {
        let bytes: [UInt8]
        do {
            bytes = try MailRendering.render(message)
        } catch {
            logger.error(
                "mail not sent: invalid message",
                metadata: [SMTPLogKey.messageID: "\(message.messageID)", SMTPLogKey.error: "\(error)"])
            throw error
        }
        let from = message.from.address.rawValue
        let to = message.to.address.rawValue
        let settings = self.settings
        let tokens = self.tokens
        var prepared: Secret?
        let result: Result<String?, MailError>
        do {
            prepared = try await tokens.prepare()
            let token = prepared
            let reply = try await threads.withThread { thread in
                try await thread.run(
                    { (session: inout CurlSMTPSession?) throws(MailError) -> String? in
                        let bearer = try tokens.bearer(prepared: token)
                        if session == nil { session = try CurlSMTPSession(settings: settings) }
                        return try session!.send(from: from, to: to, message: bytes, bearer: bearer).get()
                    }, closed: { MailError.make(.mailerClosed, "the mailer is closed") })
            }
            result = .success(reply)
        } catch let error as MailError {
            tokens.failed(error, prepared: prepared)
            result = .failure(error)
        } catch {
            // Cancelled while waiting for a free sender: nothing was sent.
            result = .failure(.make(.mailerClosed, "no sender thread: \(error)"))
        }
        switch result {
        case .success(let reply):
            logger.debug(
                "mail sent", metadata: [SMTPLogKey.messageID: "\(message.messageID)", SMTPLogKey.reply: "\(reply ?? "")"])
            return MailReceipt(messageID: message.messageID, reply: reply)
        case .failure(let error):
            var metadata: Logger.Metadata = [SMTPLogKey.messageID: "\(message.messageID)", SMTPLogKey.error: "\(error)"]
            if let code = error.smtpCode { metadata[SMTPLogKey.smtpCode] = "\(code)" }
            switch error.code {
            case .certificateRejected, .tlsFailed, .authenticationFailed, .tokenRefused:
                // Configuration: every mail waits until an operator fixes it.
                logger.error("mail not sent: check the SMTP configuration", metadata: metadata)
            case .rejected:
                logger.warning("mail refused by the SMTP server", metadata: metadata)
            default:
                logger.warning("mail not sent, will retry", metadata: metadata)
            }
            throw error
        }
    }

    /// The sender threads finish the sends they started, close their connections (QUIT) and
    /// exit; sends waiting for a thread, and later ones, fail with `mailerClosed`. Returns at
    /// once (`close()` also waits for the threads).
    public func stop() {
        threads.close()
        tokens.close()
    }

    /// `stop()`, then waits (at most the transfer timeout plus 5 seconds) until every sender
    /// thread has closed its connection and exited.
    public func close() async {
        stop()
        let deadline = ContinuousClock.now + settings.transferTimeout + .seconds(5)
        while threads.runningThreads > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
