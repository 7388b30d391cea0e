import HeraldBlocking
import HeraldCore
import Logging
import Synchronization

/// The client-credentials token, shared by every sender of a mailer: fetched when first
/// needed, kept, and fetched again shortly before it expires (`refreshMargin`), never per
/// mail. There is at most one request at a time (single flight): senders that need a token
/// while none is valid wait for that one request together; a renewal while the token held is
/// still valid runs in the background, and senders keep using that token meanwhile. The
/// request runs with libcurl on a dedicated thread (`herald-oauth2`), never on Swift's
/// cooperative pool.
///
/// When a renewal fails, the token held is used until it expires (the endpoint is asked
/// again at most every `retryInterval`); without a valid token, the send fails with the
/// request's `MailError` (`tokenUnavailable`, or `tokenRefused` when the endpoint refused the
/// client), which the courier treats as an outage: the mail waits without using an attempt.
public final class OAuth2TokenCache: Sendable {
    private struct Cached: Sendable {
        let token: OAuth2Token
        /// When the request that obtained it started: its lifetime counts from then.
        let obtained: ContinuousClock.Instant

        var expires: ContinuousClock.Instant { obtained + token.lifetime }
        var refreshAt: ContinuousClock.Instant { expires - OAuth2TokenCache.refreshMargin(token.lifetime) }
    }

    private struct State: Sendable {
        var cached: Cached?
        var inFlight: Task<Result<Cached, MailError>, Never>?
        /// After a failed refresh with a still-valid token: the next time to ask again.
        var retryAfter: ContinuousClock.Instant?
        var requests = 0
    }

    public static let retryInterval: Duration = .seconds(5)

    private let client: OAuth2ClientCredentials
    private let connectTimeout: Duration
    private let timeout: Duration
    private let thread = BlockingThread<CurlTokenRequest>(name: "herald-oauth2")
    private let state = Mutex(State())
    private let observer: any ConnectionObserver
    private let logger: Logger

    /// `observer` hears of every failed request (`failed(.smtpOAuth2)`: the
    /// `herald_dependency_errors_total{dependency="smtp_oauth2"}` series).
    public init(
        client: OAuth2ClientCredentials, connectTimeout: Duration, timeout: Duration,
        observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger
    ) {
        self.client = client
        self.observer = observer
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        var logger = logger
        logger[metadataKey: SMTPLogKey.tokenEndpoint] = "\(client.tokenURL)"
        self.logger = logger
    }

    deinit {
        thread.stop()
    }

    /// How long before its expiry a token is replaced: a tenth of its lifetime or a minute,
    /// whichever is longer, but at most half its lifetime (a 1-hour token is replaced after 54
    /// minutes, a 5-minute one after 4, a 6-second one after 3).
    public static func refreshMargin(_ lifetime: Duration) -> Duration {
        min(max(lifetime / 10, .seconds(60)), lifetime / 2)
    }

    /// Requests made to the token endpoint so far (successful or not).
    public var requests: Int { state.withLock { $0.requests } }

    /// A valid token: the one held while it has not expired (starting its renewal in the
    /// background once it is due), else a new one (one request for every caller waiting).
    public func token() async throws(MailError) -> Secret {
        enum Step {
            case use(Secret)
            case wait(Task<Result<Cached, MailError>, Never>)
        }
        let now = ContinuousClock.now
        let step = state.withLock { s -> Step in
            let valid = s.cached.flatMap { now < $0.expires ? $0 : nil }
            if let valid, now < valid.refreshAt { return .use(valid.token.value) }
            let mayAsk = valid == nil || s.retryAfter.map { now >= $0 } ?? true
            if s.inFlight == nil && mayAsk { s.inFlight = Task { await self.fetch() } }
            if let valid { return .use(valid.token.value) }
            return .wait(s.inFlight!)
        }
        switch step {
        case .use(let token):
            return token
        case .wait(let task):
            switch await task.value {
            case .success(let cached): return cached.token.value
            case .failure(let error): throw error
            }
        }
    }

    /// Forgets `token` when it is the one held: the SMTP server refused it (535), so the next
    /// send asks for a new one instead of offering it again until it expires.
    public func invalidate(_ token: Secret) {
        state.withLock { s in
            if s.cached?.token.value == token {
                s.cached = nil
                s.retryAfter = nil
            }
        }
    }

    /// Stops the request thread (after a request in progress).
    public func close() {
        thread.stop()
    }

    private func fetch() async -> Result<Cached, MailError> {
        let started = ContinuousClock.now
        let (client, connectTimeout, timeout) = (self.client, self.connectTimeout, self.timeout)
        let result: Result<OAuth2Token, MailError>
        do {
            let token = try await thread.run(
                { (request: inout CurlTokenRequest?) throws(MailError) -> OAuth2Token in
                    if request == nil {
                        request = try CurlTokenRequest(client: client, connectTimeout: connectTimeout, timeout: timeout)
                    }
                    return try request!.fetch().get()
                }, closed: { MailError.make(.mailerClosed, "the mailer is closed") })
            result = .success(token)
        } catch {
            result = .failure(error)
        }
        let outcome = state.withLock { s -> Result<Cached, MailError> in
            s.inFlight = nil
            s.requests += 1
            switch result {
            case .success(let token):
                let cached = Cached(token: token, obtained: started)
                s.cached = cached
                s.retryAfter = nil
                return .success(cached)
            case .failure(let error):
                if s.cached != nil { s.retryAfter = ContinuousClock.now + Self.retryInterval }
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let cached):
            logger.debug("OAuth2 token obtained", metadata: [SMTPLogKey.tokenLifetime: "\(cached.token.lifetime)"])
        case .failure(let error):
            observer.failed(.smtpOAuth2)
            var metadata: Logger.Metadata = [SMTPLogKey.error: "\(error)"]
            if let reply = error.serverReply { metadata[SMTPLogKey.tokenError] = "\(reply)" }
            if error.code == .tokenRefused {
                logger.error(
                    "the OAuth2 token endpoint refused Herald's client: check HERALD_SMTP_OAUTH2_CLIENT_ID, the secret and HERALD_SMTP_OAUTH2_SCOPE",
                    metadata: metadata)
            } else {
                logger.warning("no OAuth2 token: the token endpoint failed", metadata: metadata)
            }
        }
        return outcome
    }
}
