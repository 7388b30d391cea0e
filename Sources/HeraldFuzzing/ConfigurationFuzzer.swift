import HeraldCore
import HeraldCourier
import HeraldPostgres
import HeraldRedis
import HeraldSMTP
import HeraldSettings

/// `HERALD_*` variables → `HeraldSettings.load(environment:readFile:)`, then the values
/// `herald run` builds from settings that loaded (the envelope decoder with its clock skew,
/// backoffs, maximum-age messages, the SMTP settings, the sender addresses, the links, the
/// outbox topics).
///
/// Input: records separated by 0x00 (which no environment value can hold). A record's first
/// byte chooses the variable (`variables[byte & 0x7F]`; beyond the list,
/// `HERALD_KAFKA_PROPERTY_<name>=<value>` from the record's text); with its high bit set the
/// value is given as `NAME_FILE`, a file holding it. The rest of the record is the value.
/// `readFile` of any other path returns the path itself as the content (so
/// `HERALD_KAFKA_PROPERTIES_FILE` is fuzzed too), except paths starting with `missing`,
/// which cannot be read.
///
/// Invariants: `load` returns or throws a `ConfigurationError` naming a `HERALD_` setting
/// whose description holds no secret (passwords, URLs with credentials); what loaded obeys
/// the documented rules (positive durations, ranges, names, topics including the dead-letter
/// topics, identifiers, one address per sender setting); what `herald run` then builds from
/// it does not crash, and a link it builds passes the templates' link check.
enum ConfigurationFuzzer {
    /// A setting's index is its selector byte in the corpus (and in `Tests/Fuzz/make-seeds.py`):
    /// replace a retired name in place or append, never reorder.
    static let variables = [
        "HERALD_AUTH_TOPIC", "HERALD_COMMIT_INTERVAL", "HERALD_DATABASE_AUTO_MIGRATE", "HERALD_DATABASE_CONNECT_TIMEOUT",
        "HERALD_DATABASE_PASSWORD", "HERALD_DATABASE_POOL_SIZE", "HERALD_DATABASE_SCHEMA", "HERALD_DATABASE_STATEMENT_TIMEOUT",
        "HERALD_DATABASE_URL", "HERALD_DEFAULT_EVENT_TYPES", "HERALD_DLQ_SUFFIX", "HERALD_EMBEDDED_BOOTSTRAP_FILE",
        "HERALD_EMBEDDED_PARTITIONS", "HERALD_HEALTH_STALL_TIMEOUT", "HERALD_HTTP_ADDRESS", "HERALD_IGNORED_EVENT_TYPES",
        "HERALD_INBOX_RETENTION", "HERALD_KAFKA_BROKERS", "HERALD_KAFKA_CLIENT_ID", "HERALD_KAFKA_GROUP",
        "HERALD_KAFKA_PROPERTIES_FILE", "HERALD_LAG_INTERVAL", "HERALD_LINK_BASE_URL", "HERALD_LINK_PATH_EMAIL_CHANGE",
        "HERALD_LINK_PATH_RESET_PASSWORD", "HERALD_LINK_PATH_VERIFY_EMAIL", "HERALD_LOG_FORMAT", "HERALD_LOG_LEVEL",
        "HERALD_LOG_MASK_EMAILS", "HERALD_MAIL_BATCH", "HERALD_MAIL_CLAIM_TIMEOUT", "HERALD_MAIL_DEFAULT_LOCALE",
        "HERALD_MAIL_DISABLED", "HERALD_MAIL_ENABLED", "HERALD_MAIL_FROM", "HERALD_MAIL_MAX_AGE", "HERALD_MAIL_MAX_ATTEMPTS",
        "HERALD_MAIL_POLL_INTERVAL", "HERALD_MAIL_RATE_LIMITS", "HERALD_MAIL_REPLY_TO", "HERALD_MAIL_RETRY_INITIAL",
        "HERALD_MAIL_RETRY_MAX", "HERALD_MAX_BATCH", "HERALD_MEMORY_BUDGET", "HERALD_MAX_CLOCK_SKEW",
        "HERALD_OUTBOX_BATCH_SIZE", "HERALD_OUTBOX_CHANNEL", "HERALD_OUTBOX_COLUMNS", "HERALD_OUTBOX_DATABASE_PASSWORD",
        "HERALD_OUTBOX_DATABASE_URL", "HERALD_OUTBOX_ENABLED", "HERALD_OUTBOX_LISTEN", "HERALD_OUTBOX_MAX_ATTEMPTS",
        "HERALD_OUTBOX_MAX_MESSAGE_BYTES", "HERALD_OUTBOX_POLL_INTERVAL", "HERALD_OUTBOX_RETENTION", "HERALD_OUTBOX_TABLE",
        "HERALD_OUTBOX_TOPICS", "HERALD_OUTBOX_TOPIC_PATTERN", "HERALD_PRODUCT_NAME", "HERALD_READINESS_TIMEOUT",
        "HERALD_REDIS_COMMAND_TIMEOUT", "HERALD_REDIS_CONNECT_TIMEOUT", "HERALD_REDIS_PASSWORD", "HERALD_REDIS_POOL_SIZE",
        "HERALD_REDIS_URL", "HERALD_RETRY_INITIAL", "HERALD_RETRY_MAX", "HERALD_ROLE_INVALIDATION_TTL", "HERALD_SHUTDOWN_TIMEOUT",
        "HERALD_SMTP_ALLOW_PLAINTEXT", "HERALD_SMTP_CA_FILE", "HERALD_SMTP_CONNECT_TIMEOUT", "HERALD_SMTP_HELO",
        "HERALD_SMTP_PASSWORD", "HERALD_SMTP_REUSE_CONNECTIONS", "HERALD_SMTP_TIMEOUT", "HERALD_SMTP_URL", "HERALD_SMTP_USER",
        "HERALD_SMTP_VERIFY_CERTIFICATE", "HERALD_SMTP_WORKERS", "HERALD_SUPPORT_EMAIL", "HERALD_TEMPLATES_DIR",
        "HERALD_USER_REVOCATION_TTL", "HERALD_USER_TOPIC", "HERALD_SMTP_AUTH", "HERALD_SMTP_OAUTH2_TOKEN_FILE",
        "HERALD_SMTP_OAUTH2_TOKEN_URL", "HERALD_SMTP_OAUTH2_CLIENT_ID", "HERALD_SMTP_OAUTH2_CLIENT_SECRET", "HERALD_SMTP_OAUTH2_SCOPE",
        "HERALD_MAIL_EVENTS_ENABLED", "HERALD_MAIL_EVENTS_TOPIC",
    ]

    /// Settings whose whole value is a secret, and settings whose value may carry one (a
    /// URL's password).
    static let secrets: Set<String> = [
        "HERALD_REDIS_PASSWORD", "HERALD_DATABASE_PASSWORD", "HERALD_SMTP_PASSWORD", "HERALD_OUTBOX_DATABASE_PASSWORD",
        "HERALD_SMTP_OAUTH2_CLIENT_SECRET",
    ]
    static let urls: Set<String> = [
        "HERALD_REDIS_URL", "HERALD_DATABASE_URL", "HERALD_SMTP_URL", "HERALD_OUTBOX_DATABASE_URL", "HERALD_SMTP_OAUTH2_TOKEN_URL",
    ]

    static let now = EnvelopeFuzzer.now

    struct Environment {
        var variables: [String: String] = [:]
        var files: [String: String] = [:]

        /// The value a setting was given, directly or through its file.
        func value(_ name: String) -> String? {
            variables[name] ?? variables[name + "_FILE"].flatMap { files[$0] }
        }
    }

    static func environment(_ input: [UInt8]) -> Environment {
        var environment = Environment()
        for record in input.split(separator: 0) {
            let selector = record[record.startIndex]
            var value = String(decoding: record.dropFirst(), as: UTF8.self)
            let name: String
            if Int(selector & 0x7F) < variables.count {
                name = variables[Int(selector & 0x7F)]
            } else {
                let parts = value.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                name = "HERALD_KAFKA_PROPERTY_" + parts[0]
                value = parts.count > 1 ? String(parts[1]) : ""
            }
            if selector & 0x80 != 0 {
                let path = "/fuzz/\(environment.files.count)"
                environment.files[path] = value
                environment.variables[name + "_FILE"] = path
            } else {
                environment.variables[name] = value
            }
        }
        return environment
    }

    struct Unreadable: Error {}

    static func load(_ environment: Environment) throws(ConfigurationError) -> HeraldSettings {
        let files = environment.files
        return try HeraldSettings.load(environment: environment.variables) { path in
            if let content = files[path] { return content }
            if path.hasPrefix("missing") { throw Unreadable() }
            return path
        }
    }

    static func run(_ input: [UInt8]) throws(FuzzFailure) -> String {
        let environment = environment(input)
        let settings: HeraldSettings
        do {
            settings = try load(environment)
        } catch {
            try checkError(error, environment)
            return "refused: \(error)"
        }
        try checkLoaded(settings)
        try checkDownstream(settings)
        try checkSMTPDescription(settings, environment)
        return "loaded"
    }

    static func checkError(_ error: ConfigurationError, _ environment: Environment) throws(FuzzFailure) {
        try check(error.setting.hasPrefix("HERALD_"), "error names no setting: \(error)")
        try check(!error.problem.isEmpty, "error \(error.setting) says nothing")
        // Secrets, by canary: the same environment with every password (a password setting's
        // value, a URL's user-information password) replaced by a marker no fixed text holds
        // must fail with an error that does not show the marker. (Looking for the fuzzed
        // password itself finds coincidences: a password that spells a column list.)
        var canaries = environment
        var replaced = false
        for name in secrets.union(urls) {
            guard let value = environment.value(name) else { continue }
            let canary: String
            if secrets.contains(name) {
                canary = marker
            } else if let password = urlPassword(value) {
                canary = String(
                    decoding: Array(value.utf8)[..<password.lowerBound] + Array(marker.utf8)
                        + Array(value.utf8)[password.upperBound...], as: UTF8.self)
            } else {
                continue
            }
            replaced = true
            if canaries.variables[name] != nil {
                canaries.variables[name] = canary
            } else if let path = canaries.variables[name + "_FILE"] {
                canaries.files[path] = canary
            }
        }
        guard replaced else { return }
        do {
            _ = try load(canaries)
        } catch {
            try check(!error.description.contains("secret-canary"), "error \(Invariants.debug(error.description)) shows a password")
        }
    }

    static let marker = "secret-canary"

    /// Where a URL's user-information password is, in its UTF-8 bytes: after the scheme's
    /// `://`, between the first `:` and the last `@` before any `/`, `?` or `#`.
    static func urlPassword(_ url: String) -> Range<Int>? {
        let bytes = Array(url.utf8)
        guard let scheme = bytes.indices.first(where: { bytes[$0...].starts(with: "://".utf8) }) else { return nil }
        let start = scheme + 3
        let end =
            bytes[start...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") })
            ?? bytes.count
        guard let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")),
            let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":"))
        else { return nil }
        return (colon + 1)..<at
    }

    static func checkLoaded(_ c: HeraldSettings) throws(FuzzFailure) {
        var durations: [(String, Duration)] = [
            ("commit interval", c.kafka.consumer.commitInterval), ("shutdown timeout", c.kafka.shutdownTimeout),
            ("redis connect timeout", c.redis.connectTimeout), ("redis command timeout", c.redis.commandTimeout),
            ("role TTL", c.redis.roleInvalidationTTL), ("user TTL", c.redis.userRevocationTTL),
            ("inbox retention", c.database.inboxRetention), ("mail retry initial", c.mail.courier.retry.initial),
            ("mail retry max", c.mail.courier.retry.cap), ("mail poll interval", c.mail.courier.pollInterval),
            ("mail claim timeout", c.mail.courier.claimTimeout), ("retry initial", c.retry.initial), ("retry max", c.retry.cap),
            ("clock skew", c.events.maxClockSkew), ("outbox poll interval", c.outbox.pollInterval),
            ("outbox retention", c.outbox.retention), ("lag interval", c.operations.sampleInterval),
            ("readiness timeout", c.operations.readinessTimeout), ("stall timeout", c.operations.stallTimeout),
        ]
        if let connection = c.database.connection {
            durations += [("database connect timeout", connection.connectTimeout), ("statement timeout", connection.statementTimeout)]
        }
        if let smtp = c.mail.smtp {
            durations += [("smtp connect timeout", smtp.connectTimeout), ("smtp timeout", smtp.transferTimeout)]
        }
        for (name, duration) in durations {
            try check(duration > .zero, "\(name) is \(duration)")
            _ = duration.unitsDescription
        }
        try check(c.retry.cap >= c.retry.initial, "retry max below retry initial")
        try check(c.mail.courier.retry.cap >= c.mail.courier.retry.initial, "mail retry max below mail retry initial")
        try check(
            c.mail.courier.claimTimeout > (c.mail.smtp?.transferTimeout ?? SMTPSettings.defaultTransferTimeout),
            "claim timeout not above the SMTP timeout")

        // Kafka: the consumed topics and their dead-letter topics are topic names.
        for topic in [c.kafka.userTopic, c.kafka.authTopic] {
            try check(Invariants.isTopicName(topic), "topic \(Invariants.debug(topic))")
            let deadLetters = c.kafka.deadLetterTopic(for: topic)
            try check(Invariants.isTopicName(deadLetters), "dead-letter topic \(Invariants.debug(deadLetters)) is not a topic name")
        }
        try check(c.kafka.userTopic != c.kafka.authTopic, "one topic for both")
        for name in [c.kafka.groupID, c.kafka.clientID] {
            try check(!name.isEmpty && !name.contains(where: \.isWhitespace), "group or client id \(Invariants.debug(name))")
        }
        if case .servers(let brokers) = c.kafka.brokers {
            try check(brokers.split(separator: ",").allSatisfy { $0.contains(":") }, "brokers \(Invariants.debug(brokers))")
        }
        for (topic, type) in c.events.defaultTypeByTopic {
            try check(Invariants.isTopicName(topic), "default type topic \(Invariants.debug(topic))")
            try Invariants.identifier(type.rawValue, maxLength: EventType.maxLength, "default event type")
        }
        for type in c.events.ignoredTypes { try Invariants.identifier(type.rawValue, maxLength: EventType.maxLength, "ignored type") }

        // Redis
        switch c.redis.endpoint.address {
        case .tcp(let host, let port):
            try check(!host.isEmpty && (1...65535).contains(port), "redis \(Invariants.debug(host)):\(port)")
            try check(
                !host.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control },
                "redis host \(Invariants.debug(host)) has a space or a control character")
            // An @ in the host would be the user information's (the password's) end: the
            // endpoint's description, which is logged, would show the password.
            try check(!host.unicodeScalars.contains("@"), "redis host \(Invariants.debug(host)) holds an @")
        case .unix(let path):
            try check(path.utf8.first == UInt8(ascii: "/"), "redis socket \(Invariants.debug(path))")
        }
        try check(c.redis.endpoint.database >= 0, "redis db \(c.redis.endpoint.database)")
        _ = c.redis.endpoint.description

        // Mail
        for (kind, limit) in c.mail.policy.rateLimits {
            try check(limit.count >= 1 && limit.window > .zero, "rate limit \(kind): \(limit)")
        }
        for kind in NotificationKind.allCases {
            guard let age = c.mail.policy.maxAges[kind] else { throw FuzzFailure("no maximum age for \(kind)") }
            try check(age > .zero, "maximum age of \(kind) is \(age)")
        }
        try check((try? LanguageTag(c.mail.defaultLocale)) != nil, "default locale \(Invariants.debug(c.mail.defaultLocale))")

        // Outbox
        let layout = c.outbox.layout
        let names = OutboxTableLayout.Column.allCases.map(layout.name(of:))
        for name in names + [layout.table] + (layout.schema.map { [$0] } ?? []) + [c.outbox.channel] {
            try check(OutboxTableLayout.isIdentifier(name), "outbox name \(Invariants.debug(name))")
        }
        try check(Set(names).count == names.count, "two outbox columns with one name")
        for (type, topic) in c.outbox.relay.topics.topics {
            try check(!type.isEmpty && Invariants.isTopicName(topic), "outbox topic \(Invariants.debug(type))=\(Invariants.debug(topic))")
        }
        if let pattern = c.outbox.relay.topics.defaultPattern {
            try check(pattern.contains(OutboxTopicMapping.placeholder), "outbox pattern \(Invariants.debug(pattern))")
        }
        // The mail events relay: its topic, table and channel are names the relay can use.
        let events = c.mail.events.relay(
            outbox: c.outbox, database: PostgresSettings(conninfo: Secret("postgresql://fuzz@localhost/fuzz")), schema: c.database.schema)
        try check(Invariants.isTopicName(c.mail.events.topic), "mail events topic \(Invariants.debug(c.mail.events.topic))")
        try check(
            OutboxTableLayout.isIdentifier(events.channel) && events.layout.schema.map(OutboxTableLayout.isIdentifier) == true,
            "mail events channel \(Invariants.debug(events.channel))")

        // Operations
        try check(
            !c.operations.httpHost.isEmpty && (0...65535).contains(c.operations.httpPort),
            "http address \(Invariants.debug(c.operations.httpHost)):\(c.operations.httpPort)")
    }

    /// What `herald run` builds from the settings before and while it runs.
    static func checkDownstream(_ c: HeraldSettings) throws(FuzzFailure) {
        // The decoder with the configured skew: an event from 2024 is accepted; one dated a
        // year ahead, and a record stamped at the end of time, are judged without a crash.
        var decoder = c.events.decoder
        decoder.clock = { now }
        let event = #"{"event_type":"RoleDeleted","role":"editor","occurred_at":"2024-05-01T12:00:00Z"}"#
        do {
            _ = try decoder.decode(InboundMessage(topic: c.kafka.authTopic, partition: 0, offset: 0, value: Array(event.utf8)))
        } catch {
            throw FuzzFailure("a 2024 event is refused with HERALD_MAX_CLOCK_SKEW=\(c.events.maxClockSkew.unitsDescription): \(error)")
        }
        let ahead = #"{"event_type":"RoleDeleted","role":"editor","occurred_at":"2031-01-01T00:00:00Z"}"#
        _ = try? decoder.decode(InboundMessage(topic: c.kafka.authTopic, partition: 0, offset: 0, value: Array(ahead.utf8)))
        let stamped = #"{"event_type":"RoleDeleted","role":"editor"}"#
        _ = try? decoder.decode(
            InboundMessage(topic: c.kafka.userTopic, partition: 0, offset: 0, timestamp: .max, value: Array(stamped.utf8)))

        for backoff in [c.retry, c.mail.courier.retry] {
            for attempt in [1, 2, 3, 10, 64, 1000, 1_000_000] {
                let delay = backoff.delay(attempt: attempt, unit: 0.999)
                try check(delay > .zero && delay <= backoff.cap, "backoff attempt \(attempt): \(delay), cap \(backoff.cap)")
            }
        }
        for kind in NotificationKind.allCases {
            _ = c.mail.policy.maxAges.expiry(kind, requestedAt: EventTime(millisecondsSinceEpoch: 0), now: now)
        }
        for type in ["User", "order_line", "ÄÖ", ""] {
            if case .success(let topic) = c.outbox.relay.topics.topic(for: type) {
                try check(Invariants.isTopicName(topic), "outbox topic for \(type): \(Invariants.debug(topic))")
            }
        }
        try checkMailSetup(c.mail)
    }

    /// The SMTP settings' description (logged at start-up) is the same text with the password
    /// and without it.
    static func checkSMTPDescription(_ c: HeraldSettings, _ environment: Environment) throws(FuzzFailure) {
        guard let smtp = c.mail.smtp, case .smtp(let url, _) = smtp.transport else { return }
        try check(url.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "SMTP server URL \(Invariants.debug(url))")
        var withoutPassword = environment
        withoutPassword.variables["HERALD_SMTP_PASSWORD"] = ""
        guard let other = try? load(withoutPassword).mail.smtp else { return }
        try check(other.description == smtp.description, "SMTP settings' description shows the password")
    }

    /// What `herald run` builds for mail, when mail is on.
    static func checkMailSetup(_ mail: MailSettings) throws(FuzzFailure) {
        guard mail.enabled, let required = try? mail.requireSending() else { return }
        let from = required.sender.from
        try Invariants.mailbox(from.address.rawValue, "HERALD_MAIL_FROM")
        // A tab is white space in a display name (rendering encodes it); no other control.
        if let name = from.displayName {
            try check(!Invariants.containsControl(name.replacing("\t", with: " ")), "From display name has a control")
        }
        if let replyTo = required.sender.replyTo {
            try Invariants.mailbox(replyTo.address.rawValue, "HERALD_MAIL_REPLY_TO")
        }
        try check(!Invariants.containsControl(required.sender.productName), "product name has a control")
        for purpose in [LinkPurpose.verifyEmail, .resetPassword, .confirmEmailChange] {
            let link = required.links.link(purpose, token: MailFuzzer.token)
            // MailTemplates.check refuses anything else, and every mail with a link would fail.
            let lowered = link.lowercased()
            try check(
                (lowered.hasPrefix("https://") || lowered.hasPrefix("http://"))
                    && !link.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control },
                "link \(Invariants.debug(link)) from a valid configuration is not an http(s) URL the templates accept")
        }
    }
}
