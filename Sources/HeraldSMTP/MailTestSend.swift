import HeraldBlocking
import HeraldCore
import Logging

/// One message sent now through the transport `settings` describe (`herald mail test`), on
/// a connection of its own that is closed afterwards, reporting what the server answered and
/// how the connection was secured. Nothing is retried, queued or stored. The outcome is the
/// courier's classification of the same failure (`MailError.deliveryFailure`).
public enum MailTestSend {
    public static func send(_ message: MailMessage, settings: SMTPSettings, logger: Logger) async -> MailTestResult {
        switch settings.transport {
        case .file(let directory):
            let mailer = FileMailer(directory: directory, logger: logger)
            let result: Result<MailReceipt, MailError>
            do {
                result = .success(try await mailer.send(message))
            } catch {
                result = .failure(error)
            }
            await mailer.close()
            switch result {
            case .success(let receipt):
                return MailTestResult(outcome: .accepted, file: receipt.reply, server: settings.serverURL)
            case .failure(let error):
                return MailTestResult(
                    outcome: MailTestOutcome(error.deliveryFailure), reason: error.deliveryFailure.reason, server: settings.serverURL)
            }
        case .smtp(_, let security):
            let attempt = await sendOverSMTP(message, settings: settings, logger: logger)
            let failure = attempt.result.failure
            let outcome = MailTestOutcome(failure?.deliveryFailure)
            let reply = attempt.result.success ?? failure?.serverReply
            let (version, cipher) = MailTestTLS.versionAndCipher(attempt.handshake)
            let mode: MailTestTLS.Mode =
                switch security {
                case .startTLSRequired: .startTLS
                case .implicitTLS: .implicitTLS
                case .plaintext: .none
                }
            // libcurl requires TLS (CURLUSESSL_ALL) unless plaintext was allowed: a server
            // that accepted the message did so over TLS.
            let used = mode != .none && (attempt.handshake != nil || !attempt.certificates.isEmpty || outcome == .accepted)
            return MailTestResult(
                outcome: outcome, reason: failure?.deliveryFailure.reason,
                smtpCode: failure?.smtpCode ?? reply.flatMap(SMTPReply.code), reply: reply, server: settings.serverURL,
                authentication: settings.authentication,
                tls: MailTestTLS(
                    mode: mode, used: used, version: version, cipher: cipher,
                    certificate: TLSCertificateSummary(chain: attempt.certificates), verified: settings.verifyCertificate))
        }
    }

    private struct Attempt: Sendable {
        var result: Result<String?, MailError>
        var handshake: String?
        var certificates: [[String]]
    }

    /// `curl_easy_perform` blocks: the session lives and dies (QUIT) on a thread of its own.
    /// With XOAUTH2, the token is read from its file, or asked of the token endpoint (once,
    /// on a thread of its own too), as `herald run` would.
    private static func sendOverSMTP(_ message: MailMessage, settings: SMTPSettings, logger: Logger) async -> Attempt {
        let bytes: [UInt8]
        do {
            bytes = try MailRendering.render(message)
        } catch {
            return Attempt(result: .failure(error), certificates: [])
        }
        let from = message.from.address.rawValue
        let to = message.to.address.rawValue
        let tokens = XOAUTH2Tokens(settings: settings, logger: logger)
        defer { tokens.close() }
        let prepared: Secret?
        do {
            prepared = try await tokens.prepare()
        } catch {
            return Attempt(result: .failure(error), certificates: [])
        }
        let thread = BlockingThread<Void>(name: "herald-mail-test")
        defer { thread.stop() }
        do {
            return try await thread.run(
                { (_: inout Void?) throws(MailError) -> Attempt in
                    let bearer = try tokens.bearer(prepared: prepared)
                    let session = try CurlSMTPSession(settings: settings, inspectTLS: true)
                    let result = session.send(from: from, to: to, message: bytes, bearer: bearer)
                    let tls = session.tlsDetails()
                    return Attempt(result: result, handshake: tls.handshake, certificates: tls.certificates)
                }, closed: { MailError.make(.mailerClosed, "the mailer is closed") })
        } catch {
            return Attempt(result: .failure(error), certificates: [])
        }
    }
}

extension Result {
    fileprivate var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }

    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
