import Foundation
import HeraldCore
import Logging

/// Where each send's XOAUTH2 token comes from, for a mailer or a test send with
/// `SMTPAuthentication.xoauth2`; nothing to do for the other methods.
///
/// - A token file is read on the sender's thread before every send (`read(file:)`, a small
///   blocking read that never runs on Swift's cooperative pool): a token a sidecar rewrote
///   is used from the next mail on, on a new connection.
/// - A client-credentials token comes from the shared `OAuth2TokenCache` before the send
///   takes a sender thread (`prepare()`); when the SMTP server refuses it (535 and the like),
///   `refused(_:)` drops it so the next send asks for a new one.
final class XOAUTH2Tokens: Sendable {
    let file: String?
    let cache: OAuth2TokenCache?

    init(settings: SMTPSettings, observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger) {
        switch settings.authentication {
        case .xoauth2(.file(let path)):
            file = path
            cache = nil
        case .xoauth2(.clientCredentials(let client)):
            file = nil
            cache = OAuth2TokenCache(
                client: client, connectTimeout: settings.connectTimeout, timeout: min(settings.transferTimeout, .seconds(30)),
                observer: observer, logger: logger)
        case .anonymous, .password:
            file = nil
            cache = nil
        }
    }

    /// The client-credentials token for the next send (nil for a token file or no XOAUTH2).
    func prepare() async throws(MailError) -> Secret? {
        guard let cache else { return nil }
        return try await cache.token()
    }

    /// The token for this send: `prepared`, or the token file's content. Blocking (a file
    /// read): call on the sender's thread.
    func bearer(prepared: Secret?) throws(MailError) -> String? {
        if let prepared { return prepared.value }
        guard let file else { return nil }
        return try Self.read(file: file)
    }

    /// The send failed with `error`: when the server refused the token Herald obtained,
    /// forget it.
    func failed(_ error: MailError, prepared: Secret?) {
        guard let cache, let prepared, error.code == .authenticationFailed else { return }
        cache.invalidate(prepared)
    }

    func close() {
        cache?.close()
    }

    /// The token in `file`: its content without surrounding white space, which must be a
    /// bearer token (RFC 6750's characters); `tokenUnavailable` when the file is missing,
    /// unreadable, empty or holds something else. The error names the file, never its content.
    static func read(file: String) throws(MailError) -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .make(.tokenUnavailable, "cannot read the token file \(file)")
        }
        guard data.count <= 64 * 1024 else { throw .make(.tokenUnavailable, "the token file \(file) is too long for a token") }
        var text = Substring(String(decoding: data, as: UTF8.self))
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        guard !text.isEmpty else { throw .make(.tokenUnavailable, "the token file \(file) is empty") }
        guard OAuth2TokenResponse.isTokenText(String(text)) else {
            throw .make(.tokenUnavailable, "the token file \(file) does not hold a bearer token")
        }
        return String(text)
    }
}
