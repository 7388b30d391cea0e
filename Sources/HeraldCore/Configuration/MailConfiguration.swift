extension HeraldConfiguration {
    /// Transactional mail: the SMTP server, the sender, the links, the templates and the
    /// courier's queue policy (`HERALD_SMTP_*`, `HERALD_MAIL_*`, `HERALD_LINK_*`).
    public struct Mail: Sendable {
        /// `HERALD_MAIL_ENABLED=false` runs Herald without mail: nothing is queued and the
        /// mail-only events are acknowledged without effect.
        public var enabled = true
        /// `HERALD_SMTP_URL`: `smtp://`, `smtps://` or `file://DIR`. May hold a password.
        public var smtpURL: Secret?
        public var smtpUser: String?
        public var smtpPassword: Secret?
        /// `HERALD_SMTP_ALLOW_PLAINTEXT=true`: `smtp://` without STARTTLS (development only).
        public var allowPlaintext = false
        /// `HERALD_SMTP_VERIFY_CERTIFICATE=false` turns certificate checks off (tests only).
        public var verifyCertificate = true
        public var caFile: String?
        public var heloName: String?
        public var connectTimeout: Duration = .seconds(10)
        public var transferTimeout: Duration = .seconds(60)
        /// Sender threads, each with its own SMTP connection.
        public var workers = 4
        public var reuseConnections = true
        /// `HERALD_MAIL_FROM`: `Name <address>` or an address.
        public var from: String?
        public var replyTo: String?
        public var productName = "Herald"
        /// Defaults to the From address.
        public var supportEmail: String?
        /// `HERALD_LINK_BASE_URL`: `https://auth.example.com`.
        public var linkBaseURL: String?
        /// `HERALD_LINK_PATH_RESET_PASSWORD`, `…_EMAIL_CHANGE`, `…_VERIFY_EMAIL`.
        public var linkPaths: [LinkPurpose: String] = [:]
        public var templatesDirectory = "Templates"
        public var defaultLocale = "en"
        /// `HERALD_MAIL_DISABLED=welcome,password_changed`: kinds never queued.
        public var disabledKinds: Set<NotificationKind> = []
        /// `HERALD_MAIL_RATE_LIMITS=password_reset=5/1h,…`; `none` for no limits.
        public var rateLimits: [NotificationKind: MailRateLimit] = Mail.defaultRateLimits
        /// `HERALD_MAIL_MAX_AGE=password_reset=30m,welcome=2d`: per kind, how old an event may
        /// be for its mail to be sent; kinds not named keep their default.
        public var maxAges = MailMaxAges.defaults
        public var maxAttempts = 8
        public var retryInitial: Duration = .seconds(30)
        public var retryMax: Duration = .seconds(3600)
        public var batchSize = 32
        public var pollInterval: Duration = .seconds(5)
        public var claimTimeout: Duration = .seconds(600)

        /// At most 5 mails with a one-time link per address and kind per hour (Supabase and
        /// Keycloak limit the same mails); security notices are never limited.
        public static let defaultRateLimits: [NotificationKind: MailRateLimit] = [
            .passwordReset: MailRateLimit(count: 5, window: .seconds(3600)),
            .verifyEmail: MailRateLimit(count: 5, window: .seconds(3600)),
            .emailChangeConfirm: MailRateLimit(count: 5, window: .seconds(3600)),
        ]

        /// The contract events that only send mail: acknowledged without effect when mail is
        /// off.
        public static let mailOnlyEventTypes: Set<EventType> = [
            "EmailVerificationRequested", "PasswordResetRequested", "PasswordChanged", "EmailChangeRequested",
        ]

        public init() {}

        /// Who gets mail, from the rate limits and maximum ages: the inbox and the courier ask
        /// the same rules.
        public var policy: MailPolicy { MailPolicy(rateLimits: rateLimits, maxAges: maxAges) }

        /// The SMTP URL, the sender and the link base: `herald run` needs all three when mail
        /// is on. The error names the first missing setting.
        public func requireSending() throws(ConfigurationError) -> (smtpURL: String, from: String, linkBaseURL: String) {
            guard let smtpURL else {
                throw ConfigurationError(
                    setting: "HERALD_SMTP_URL",
                    problem:
                        "required when mail is on: smtp://host:587 (STARTTLS), smtps://host:465, or file://DIR to write .eml files; HERALD_MAIL_ENABLED=false turns mail off"
                )
            }
            guard let from else {
                throw ConfigurationError(setting: "HERALD_MAIL_FROM", problem: "required when mail is on: Name <address>")
            }
            guard let linkBaseURL else {
                throw ConfigurationError(
                    setting: "HERALD_LINK_BASE_URL", problem: "required when mail is on: the base of links, https://auth.example.com")
            }
            return (smtpURL.value, from, linkBaseURL)
        }

        static func load(_ reader: EnvironmentReader) throws(ConfigurationError) -> Mail {
            var m = Mail()
            m.enabled = try reader.boolean("HERALD_MAIL_ENABLED") ?? m.enabled
            if let url = try reader.string("HERALD_SMTP_URL") {
                guard !url.isEmpty else { throw ConfigurationError(setting: "HERALD_SMTP_URL", problem: "is empty") }
                m.smtpURL = Secret(url)
            }
            m.smtpUser = try reader.string("HERALD_SMTP_USER")
            m.smtpPassword = try reader.string("HERALD_SMTP_PASSWORD").map(Secret.init)
            m.allowPlaintext = try reader.boolean("HERALD_SMTP_ALLOW_PLAINTEXT") ?? m.allowPlaintext
            m.verifyCertificate = try reader.boolean("HERALD_SMTP_VERIFY_CERTIFICATE") ?? m.verifyCertificate
            m.caFile = try reader.string("HERALD_SMTP_CA_FILE")
            m.heloName = try reader.string("HERALD_SMTP_HELO")
            m.connectTimeout = try reader.duration("HERALD_SMTP_CONNECT_TIMEOUT") ?? m.connectTimeout
            m.transferTimeout = try reader.duration("HERALD_SMTP_TIMEOUT") ?? m.transferTimeout
            m.workers = try reader.integer("HERALD_SMTP_WORKERS", in: 1...64) ?? m.workers
            m.reuseConnections = try reader.boolean("HERALD_SMTP_REUSE_CONNECTIONS") ?? m.reuseConnections
            m.from = try reader.string("HERALD_MAIL_FROM")
            m.replyTo = try reader.string("HERALD_MAIL_REPLY_TO")
            if let name = try reader.string("HERALD_PRODUCT_NAME") {
                guard !name.isEmpty, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                    throw ConfigurationError(setting: "HERALD_PRODUCT_NAME", problem: "must be non-empty text on one line")
                }
                m.productName = name
            }
            if let support = try reader.string("HERALD_SUPPORT_EMAIL") {
                do throws(ValidationError) {
                    m.supportEmail = try EmailAddress(support, field: "HERALD_SUPPORT_EMAIL").rawValue
                } catch {
                    throw ConfigurationError(setting: "HERALD_SUPPORT_EMAIL", problem: error.reason)
                }
            }
            if let base = try reader.string("HERALD_LINK_BASE_URL") {
                let lowered = base.lowercased()
                let rest = lowered.hasPrefix("https://") ? lowered.dropFirst(8) : lowered.hasPrefix("http://") ? lowered.dropFirst(7) : nil
                guard let rest, !rest.isEmpty, !rest.hasPrefix("/"),
                    !base.unicodeScalars.contains(where: {
                        $0.properties.isWhitespace || $0.properties.generalCategory == .control || "?#\"<>".unicodeScalars.contains($0)
                    })
                else {
                    throw ConfigurationError(
                        setting: "HERALD_LINK_BASE_URL", problem: "expected an http(s) URL without query, such as https://auth.example.com")
                }
                m.linkBaseURL = base
            }
            for (name, purpose) in [
                ("HERALD_LINK_PATH_RESET_PASSWORD", LinkPurpose.resetPassword),
                ("HERALD_LINK_PATH_EMAIL_CHANGE", .confirmEmailChange), ("HERALD_LINK_PATH_VERIFY_EMAIL", .verifyEmail),
            ] {
                guard let path = try reader.string(name) else { continue }
                guard path.hasPrefix("/"), !path.contains("#"),
                    !path.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
                else {
                    throw ConfigurationError(
                        setting: name, problem: "expected a path starting with /, such as /auth/reset-password/confirm")
                }
                m.linkPaths[purpose] = path
            }
            m.templatesDirectory = try reader.string("HERALD_TEMPLATES_DIR") ?? m.templatesDirectory
            if let locale = try reader.string("HERALD_MAIL_DEFAULT_LOCALE") {
                guard (try? LanguageTag(locale)) != nil else {
                    throw ConfigurationError(setting: "HERALD_MAIL_DEFAULT_LOCALE", problem: "expected a language tag such as en or pt-BR")
                }
                m.defaultLocale = locale
            }
            if let list = try reader.string("HERALD_MAIL_DISABLED") {
                m.disabledKinds = try kinds(list, setting: "HERALD_MAIL_DISABLED")
            }
            if let list = try reader.string("HERALD_MAIL_RATE_LIMITS") {
                m.rateLimits = try rateLimits(list)
            }
            if let list = try reader.string("HERALD_MAIL_MAX_AGE") {
                m.maxAges = MailMaxAges.defaults.merging(try maxAges(list))
            }
            m.maxAttempts = try reader.integer("HERALD_MAIL_MAX_ATTEMPTS", in: 1...1000) ?? m.maxAttempts
            m.retryInitial = try reader.duration("HERALD_MAIL_RETRY_INITIAL") ?? m.retryInitial
            m.retryMax = try reader.duration("HERALD_MAIL_RETRY_MAX") ?? m.retryMax
            guard m.retryMax >= m.retryInitial else {
                throw ConfigurationError(setting: "HERALD_MAIL_RETRY_MAX", problem: "must be at least HERALD_MAIL_RETRY_INITIAL")
            }
            m.batchSize = try reader.integer("HERALD_MAIL_BATCH", in: 1...10_000) ?? m.batchSize
            m.pollInterval = try reader.duration("HERALD_MAIL_POLL_INTERVAL") ?? m.pollInterval
            m.claimTimeout = try reader.duration("HERALD_MAIL_CLAIM_TIMEOUT") ?? m.claimTimeout
            guard m.claimTimeout > m.transferTimeout else {
                throw ConfigurationError(
                    setting: "HERALD_MAIL_CLAIM_TIMEOUT", problem: "must exceed HERALD_SMTP_TIMEOUT, or mail still being sent is sent twice"
                )
            }
            return m
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
                guard parts.count == 2, let age = parseDuration(parts[1]), age > .zero else {
                    throw ConfigurationError(
                        setting: setting, problem: "expected kind=duration[,…] such as password_reset=30m,welcome=2d")
                }
                guard let kind = NotificationKind(rawValue: parts[0]) else {
                    throw ConfigurationError(
                        setting: setting,
                        problem:
                            "unknown mail kind \(parts[0]); expected \(NotificationKind.allCases.map(\.rawValue).joined(separator: ", "))")
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
                    let window = parseDuration(rate[1]), window > .zero
                else {
                    throw ConfigurationError(
                        setting: setting, problem: "expected kind=count/duration[,…] such as password_reset=5/1h, or none")
                }
                guard let kind = NotificationKind(rawValue: parts[0]) else {
                    throw ConfigurationError(setting: setting, problem: "unknown mail kind \(parts[0])")
                }
                limits[kind] = MailRateLimit(count: count, window: window)
            }
            return limits
        }
    }
}
