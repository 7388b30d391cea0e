import HeraldCore
import HeraldCourier
import HeraldSMTP

/// Transactional mail (`HERALD_SMTP_*`, `HERALD_MAIL_*`, `HERALD_LINK_*`, `HERALD_TEMPLATES_DIR`,
/// `HERALD_PRODUCT_NAME`, `HERALD_SUPPORT_EMAIL`): the SMTP transport's, the composer's and
/// the courier's own settings, each built here once.
public struct MailSettings: Sendable {
    /// `HERALD_MAIL_ENABLED=false` runs Herald without mail: nothing is queued and the
    /// mail-only events are acknowledged without effect.
    public var enabled = true
    /// The transport; nil while `HERALD_SMTP_URL` is unset.
    public var smtp: SMTPSettings?
    /// Sender threads, each with its own SMTP connection (also the courier's concurrency).
    public var workers = 4
    /// Who mail is from; nil while `HERALD_MAIL_FROM` is unset.
    public var sender: SenderSettings?
    /// The one-time links; nil while `HERALD_LINK_BASE_URL` is unset.
    public var links: LinkSettings?
    /// Shown in every mail (also in previews, which need no sender).
    public var productName = "Herald"
    /// Defaults to the From address.
    public var supportEmail: String?
    public var templatesDirectory = "Templates"
    public var defaultLocale = "en"
    /// Kinds never queued.
    public var disabledKinds: Set<NotificationKind> = []
    /// Who gets mail: rate limits and maximum ages, asked by the inbox and the courier alike.
    public var policy = MailPolicy(rateLimits: MailRateLimit.defaults)
    /// The courier's queue policy (its `policy` is `policy`, its concurrency `workers`).
    public var courier = CourierSettings()
    /// Outcomes published as events (`HERALD_MAIL_EVENTS_*`).
    public var events = MailEventSettings()

    public init() {
        courier.policy = policy
    }

    /// The transport, the sender and the link base: `herald run` needs all three when mail
    /// is on. The error names the first missing setting.
    public func requireSending() throws(ConfigurationError) -> (smtp: SMTPSettings, sender: SenderSettings, links: LinkSettings) {
        guard let smtp else {
            throw ConfigurationError(
                setting: "HERALD_SMTP_URL",
                problem:
                    "required when mail is on: smtp://host:587 (STARTTLS), smtps://host:465, or file://DIR to write .eml files; HERALD_MAIL_ENABLED=false turns mail off"
            )
        }
        guard let sender else {
            throw ConfigurationError(setting: "HERALD_MAIL_FROM", problem: "required when mail is on: Name <address>")
        }
        guard let links else {
            throw ConfigurationError(
                setting: "HERALD_LINK_BASE_URL", problem: "required when mail is on: the base of links, https://auth.example.com")
        }
        return (smtp, sender, links)
    }

    static func load(_ r: SettingsReader) throws(ConfigurationError) -> MailSettings {
        var m = MailSettings()
        m.enabled = try r.boolean("HERALD_MAIL_ENABLED") ?? m.enabled
        m.smtp = try loadSMTP(r)
        m.workers = try r.integer("HERALD_SMTP_WORKERS", in: 1...64) ?? m.workers
        let transferTimeout = m.smtp?.transferTimeout ?? SMTPSettings.defaultTransferTimeout

        let from = try address(r, "HERALD_MAIL_FROM")
        let replyTo = try address(r, "HERALD_MAIL_REPLY_TO")
        if let name = try r.string("HERALD_PRODUCT_NAME") {
            guard !name.isEmpty, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ConfigurationError(setting: "HERALD_PRODUCT_NAME", problem: "must be non-empty text on one line")
            }
            m.productName = name
        }
        if let support = try r.string("HERALD_SUPPORT_EMAIL") {
            do throws(ValidationError) {
                m.supportEmail = try EmailAddress(support, field: "HERALD_SUPPORT_EMAIL").rawValue
            } catch {
                throw ConfigurationError(setting: "HERALD_SUPPORT_EMAIL", problem: error.reason)
            }
        }
        m.sender = from.map { SenderSettings(from: $0, replyTo: replyTo, productName: m.productName, supportEmail: m.supportEmail) }
        m.links = try loadLinks(r)

        m.templatesDirectory = try r.string("HERALD_TEMPLATES_DIR") ?? m.templatesDirectory
        if let locale = try r.string("HERALD_MAIL_DEFAULT_LOCALE") {
            guard (try? LanguageTag(locale)) != nil else {
                throw ConfigurationError(setting: "HERALD_MAIL_DEFAULT_LOCALE", problem: "expected a language tag such as en or pt-BR")
            }
            m.defaultLocale = locale
        }
        if let list = try r.string("HERALD_MAIL_DISABLED") {
            m.disabledKinds = try kinds(list, setting: "HERALD_MAIL_DISABLED")
        }
        if let list = try r.string("HERALD_MAIL_RATE_LIMITS") {
            m.policy.rateLimits = try rateLimits(list)
        }
        if let list = try r.string("HERALD_MAIL_MAX_AGE") {
            m.policy.maxAges = MailMaxAges.defaults.merging(try maxAges(list))
        }

        let defaults = CourierSettings()
        m.courier.policy = m.policy
        m.courier.concurrency = m.workers
        m.courier.maxAttempts = try r.integer("HERALD_MAIL_MAX_ATTEMPTS", in: 1...1000) ?? defaults.maxAttempts
        let retryInitial = try r.duration("HERALD_MAIL_RETRY_INITIAL") ?? defaults.retry.initial
        let retryMax = try r.duration("HERALD_MAIL_RETRY_MAX") ?? defaults.retry.cap
        guard retryMax >= retryInitial else {
            throw ConfigurationError(setting: "HERALD_MAIL_RETRY_MAX", problem: "must be at least HERALD_MAIL_RETRY_INITIAL")
        }
        m.courier.retry = Backoff(initial: retryInitial, cap: retryMax)
        m.courier.batchSize = try r.integer("HERALD_MAIL_BATCH", in: 1...10_000) ?? defaults.batchSize
        m.courier.pollInterval = try r.duration("HERALD_MAIL_POLL_INTERVAL") ?? defaults.pollInterval
        m.courier.claimTimeout = try r.duration("HERALD_MAIL_CLAIM_TIMEOUT") ?? defaults.claimTimeout
        guard m.courier.claimTimeout > transferTimeout else {
            throw ConfigurationError(
                setting: "HERALD_MAIL_CLAIM_TIMEOUT", problem: "must exceed HERALD_SMTP_TIMEOUT, or mail still being sent is sent twice")
        }
        m.events = try MailEventSettings.load(r)
        return m
    }

    /// `HERALD_SMTP_URL` and its companions, validated together (nil: no URL).
    static func loadSMTP(_ r: SettingsReader) throws(ConfigurationError) -> SMTPSettings? {
        let url = try r.secret("HERALD_SMTP_URL", allowEmpty: false)
        let user = try r.string("HERALD_SMTP_USER")
        let password = try r.secret("HERALD_SMTP_PASSWORD")
        let allowPlaintext = try r.boolean("HERALD_SMTP_ALLOW_PLAINTEXT") ?? false
        let verifyCertificate = try r.boolean("HERALD_SMTP_VERIFY_CERTIFICATE") ?? true
        let caFile = try r.string("HERALD_SMTP_CA_FILE")
        let helo = try r.string("HERALD_SMTP_HELO")
        let connectTimeout = try r.duration("HERALD_SMTP_CONNECT_TIMEOUT") ?? SMTPSettings.defaultConnectTimeout
        let transferTimeout = try r.duration("HERALD_SMTP_TIMEOUT") ?? SMTPSettings.defaultTransferTimeout
        let reuse = try r.boolean("HERALD_SMTP_REUSE_CONNECTIONS") ?? true
        let authentication = try loadAuthentication(r)
        guard let url else { return nil }
        do throws(ValidationError) {
            return try SMTPSettings(
                url: url.value, username: user, password: password?.value, allowPlaintext: allowPlaintext,
                verifyCertificate: verifyCertificate, caFile: caFile, heloName: helo, connectTimeout: connectTimeout,
                transferTimeout: transferTimeout, reuseConnections: reuse, authentication: authentication)
        } catch {
            let setting =
                error.field == "SMTP HELO name" ? "HERALD_SMTP_HELO" : error.field.hasPrefix("HERALD_") ? error.field : "HERALD_SMTP_URL"
            throw ConfigurationError(setting: setting, problem: error.reason)
        }
    }

    /// `HERALD_SMTP_AUTH` and the OAuth2 settings (nil: the default for the credentials).
    /// `xoauth2` needs exactly one token source: a token file, which must be readable now
    /// (it is read again before every send), or a token endpoint with a client id and secret.
    /// An OAuth2 setting without `xoauth2` is an error, not silently ignored.
    static func loadAuthentication(_ r: SettingsReader) throws(ConfigurationError) -> SMTPAuthentication? {
        let method = try r.string("HERALD_SMTP_AUTH")
        let tokenFile = try r.string("HERALD_SMTP_OAUTH2_TOKEN_FILE")
        let tokenURL = try r.string("HERALD_SMTP_OAUTH2_TOKEN_URL")
        let clientID = try r.string("HERALD_SMTP_OAUTH2_CLIENT_ID")
        let clientSecret = try r.secret("HERALD_SMTP_OAUTH2_CLIENT_SECRET")
        let scope = try r.string("HERALD_SMTP_OAUTH2_SCOPE")
        let oauth2: [(String, Bool)] = [
            ("HERALD_SMTP_OAUTH2_TOKEN_FILE", tokenFile != nil), ("HERALD_SMTP_OAUTH2_TOKEN_URL", tokenURL != nil),
            ("HERALD_SMTP_OAUTH2_CLIENT_ID", clientID != nil), ("HERALD_SMTP_OAUTH2_CLIENT_SECRET", clientSecret != nil),
            ("HERALD_SMTP_OAUTH2_SCOPE", scope != nil),
        ]
        switch method?.lowercased() {
        case nil, "password", "none":
            if let (name, _) = oauth2.first(where: { $0.1 }) {
                throw ConfigurationError(setting: name, problem: "only used with HERALD_SMTP_AUTH=xoauth2")
            }
            return method.map { $0.lowercased() == "none" ? .anonymous : .password }
        case "xoauth2":
            break
        default:
            throw ConfigurationError(setting: "HERALD_SMTP_AUTH", problem: "expected password, xoauth2 or none")
        }
        switch (tokenFile, tokenURL) {
        case (nil, nil):
            throw ConfigurationError(
                setting: "HERALD_SMTP_OAUTH2_TOKEN_FILE",
                problem:
                    "HERALD_SMTP_AUTH=xoauth2 needs a token source: this file, or HERALD_SMTP_OAUTH2_TOKEN_URL with a client id and secret")
        case (.some, .some):
            throw ConfigurationError(
                setting: "HERALD_SMTP_OAUTH2_TOKEN_URL", problem: "set either it or HERALD_SMTP_OAUTH2_TOKEN_FILE, not both")
        case (.some(let path), nil):
            for (name, set) in oauth2.dropFirst(2) where set {
                throw ConfigurationError(setting: name, problem: "only used with HERALD_SMTP_OAUTH2_TOKEN_URL")
            }
            let content: String
            do {
                content = try r.readFile(path)
            } catch {
                throw ConfigurationError(setting: "HERALD_SMTP_OAUTH2_TOKEN_FILE", problem: "cannot read \(path)")
            }
            guard content.contains(where: { !$0.isWhitespace }) else {
                throw ConfigurationError(setting: "HERALD_SMTP_OAUTH2_TOKEN_FILE", problem: "\(path) is empty")
            }
            return .xoauth2(.file(path: path))
        case (nil, .some(let url)):
            guard let clientID else {
                throw ConfigurationError(setting: "HERALD_SMTP_OAUTH2_CLIENT_ID", problem: "required with HERALD_SMTP_OAUTH2_TOKEN_URL")
            }
            guard let clientSecret else {
                throw ConfigurationError(
                    setting: "HERALD_SMTP_OAUTH2_CLIENT_SECRET", problem: "required with HERALD_SMTP_OAUTH2_TOKEN_URL")
            }
            do throws(ValidationError) {
                return .xoauth2(
                    .clientCredentials(
                        try OAuth2ClientCredentials(tokenURL: url, clientID: clientID, clientSecret: clientSecret, scope: scope)))
            } catch {
                throw ConfigurationError(setting: error.field, problem: error.reason)
            }
        }
    }

    static func address(_ r: SettingsReader, _ name: String) throws(ConfigurationError) -> MailAddress? {
        guard let text = try r.string(name) else { return nil }
        do throws(ValidationError) {
            return try MailAddress(parsing: text, field: name)
        } catch {
            throw ConfigurationError(setting: name, problem: error.reason)
        }
    }

    static func loadLinks(_ r: SettingsReader) throws(ConfigurationError) -> LinkSettings? {
        var base: String?
        if let text = try r.string("HERALD_LINK_BASE_URL") {
            let lowered = text.lowercased()
            let rest = lowered.hasPrefix("https://") ? lowered.dropFirst(8) : lowered.hasPrefix("http://") ? lowered.dropFirst(7) : nil
            guard let rest, !rest.isEmpty, !rest.hasPrefix("/"),
                !text.unicodeScalars.contains(where: {
                    $0.properties.isWhitespace || $0.properties.generalCategory == .control || "?#\"<>".unicodeScalars.contains($0)
                })
            else {
                throw ConfigurationError(
                    setting: "HERALD_LINK_BASE_URL", problem: "expected an http(s) URL without query, such as https://auth.example.com")
            }
            base = text
        }
        var paths: [LinkPurpose: String] = [:]
        for (name, purpose) in [
            ("HERALD_LINK_PATH_RESET_PASSWORD", LinkPurpose.resetPassword),
            ("HERALD_LINK_PATH_EMAIL_CHANGE", .confirmEmailChange), ("HERALD_LINK_PATH_VERIFY_EMAIL", .verifyEmail),
        ] {
            guard let path = try r.string(name) else { continue }
            guard path.hasPrefix("/"), !path.contains("#"),
                !path.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
            else {
                throw ConfigurationError(setting: name, problem: "expected a path starting with /, such as /auth/reset-password/confirm")
            }
            paths[purpose] = path
        }
        return base.map { LinkSettings(baseURL: $0, paths: paths) }
    }

    static func kinds(_ list: String, setting: String) throws(ConfigurationError) -> Set<NotificationKind> {
        var kinds: Set<NotificationKind> = []
        for name in list.split(separator: ",").map({ $0.trimmingWhitespace() }) where !name.isEmpty {
            guard let kind = NotificationKind(rawValue: name) else {
                throw ConfigurationError(
                    setting: setting,
                    problem: "unknown mail kind \(name); expected \(NotificationKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            kinds.insert(kind)
        }
        return kinds
    }

    /// `kind=duration[,…]`.
    static func maxAges(_ list: String) throws(ConfigurationError) -> [NotificationKind: Duration] {
        let setting = "HERALD_MAIL_MAX_AGE"
        var ages: [NotificationKind: Duration] = [:]
        let items = list.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        if items.isEmpty {
            throw ConfigurationError(setting: setting, problem: "expected kind=duration[,…] such as password_reset=30m,welcome=2d")
        }
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
            guard parts.count == 2, let age = Duration(parsing: parts[1]), age > .zero else {
                throw ConfigurationError(setting: setting, problem: "expected kind=duration[,…] such as password_reset=30m,welcome=2d")
            }
            guard let kind = NotificationKind(rawValue: parts[0]) else {
                throw ConfigurationError(
                    setting: setting,
                    problem: "unknown mail kind \(parts[0]); expected \(NotificationKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            ages[kind] = age
        }
        return ages
    }

    /// `kind=count/duration[,…]`, or `none`.
    static func rateLimits(_ list: String) throws(ConfigurationError) -> [NotificationKind: MailRateLimit] {
        let setting = "HERALD_MAIL_RATE_LIMITS"
        if list.trimmingWhitespace() == "none" { return [:] }
        var limits: [NotificationKind: MailRateLimit] = [:]
        for item in list.split(separator: ",").map({ $0.trimmingWhitespace() }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
            let rate = parts.count == 2 ? parts[1].split(separator: "/", maxSplits: 1).map(String.init) : []
            guard parts.count == 2, rate.count == 2, let count = Int(rate[0]), count >= 1,
                let window = Duration(parsing: rate[1]), window > .zero
            else {
                throw ConfigurationError(setting: setting, problem: "expected kind=count/duration[,…] such as password_reset=5/1h, or none")
            }
            guard let kind = NotificationKind(rawValue: parts[0]) else {
                throw ConfigurationError(setting: setting, problem: "unknown mail kind \(parts[0])")
            }
            limits[kind] = MailRateLimit(count: count, window: window)
        }
        return limits
    }
}
