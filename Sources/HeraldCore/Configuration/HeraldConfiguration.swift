/// Everything `herald run` needs, read from `HERALD_*` environment variables and validated
/// before anything starts. See the README's configuration table.
public struct HeraldConfiguration: Sendable {
    public struct Kafka: Sendable {
        /// Where the daemons get their Kafka cluster from (`HERALD_KAFKA_BROKERS`).
        public enum BrokerChoice: Sendable, Hashable {
            /// `host:port[,host:port...]`.
            case servers(String)
            /// `embedded`: librdkafka's mock cluster, in memory (development only).
            case embedded
        }

        /// Bootstrap servers; nil when `HERALD_KAFKA_BROKERS` is unset or `embedded`.
        public var brokers: String?
        /// `HERALD_KAFKA_BROKERS=embedded`: `herald run` starts the embedded broker; client
        /// commands read its address from `bootstrapFile`.
        public var embeddedBroker = false
        public var groupID = "herald"
        public var clientID = "herald"
        public var userTopic = "user_service_topic"
        public var authTopic = "auth_service_topic"
        public var deadLetterSuffix = ".dlq"
        /// Raw librdkafka properties (`HERALD_KAFKA_PROPERTY_*`, `HERALD_KAFKA_PROPERTIES_FILE`).
        public var properties: [String: String] = [:]
        /// Properties whose values are secrets (never logged).
        public var secretProperties: Set<String> = []
        public var embeddedPartitions = 4
        public var bootstrapFile = "var/kafka-bootstrap"
        public var maxBufferedPerPartition = 1000
        public var maxBatch = 500
        public var commitInterval: Duration = .seconds(1)
        public var shutdownTimeout: Duration = .seconds(10)

        public func deadLetterTopic(for topic: String) -> String { topic + deadLetterSuffix }

        /// The brokers `herald run` and the outbox relay use. Unset is an error, never a silent
        /// in-memory broker: events and outbox rows acknowledged by it would be lost.
        public func requireBrokers() throws(ConfigurationError) -> BrokerChoice {
            if let brokers { return .servers(brokers) }
            if embeddedBroker { return .embedded }
            throw ConfigurationError(
                setting: "HERALD_KAFKA_BROKERS",
                problem:
                    "required: the Kafka bootstrap servers, host:port[,host:port...]; or `embedded` for an in-memory development broker that keeps nothing (make run sets it)"
            )
        }

        public var topic: [EventCatalog.CatalogTopic: String] { [.user: userTopic, .auth: authTopic] }
    }

    public struct Redis: Sendable {
        public var endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379))
        public var connectTimeout: Duration = .seconds(2)
        public var commandTimeout: Duration = .seconds(5)
        public var poolSize = 4
        public var roleInvalidationTTL: Duration = .seconds(8 * 86_400)
        public var userRevocationTTL: Duration = .seconds(7 * 86_400)
    }

    public struct Database: Sendable {
        /// A libpq URI or conninfo (`HERALD_DATABASE_URL`); nil when unset.
        public var url: Secret?
        /// `HERALD_DATABASE_PASSWORD` (or `_FILE`): overrides the URL's password.
        public var password: Secret?
        public var schema = "herald"
        public var poolSize = 4
        public var connectTimeout: Duration = .seconds(5)
        public var statementTimeout: Duration = .seconds(30)
        /// Apply pending migrations at start-up instead of refusing to start.
        public var autoMigrate = false
        /// How long processed-event rows are kept for de-duplication.
        public var inboxRetention: Duration = .seconds(14 * 86_400)

        /// The URL, or an error naming the setting for commands that need the database.
        public func requireURL() throws(ConfigurationError) -> String {
            guard let url else {
                throw ConfigurationError(
                    setting: "HERALD_DATABASE_URL",
                    problem: "required: a libpq URI such as postgresql://herald@db:5432/auth or a conninfo string")
            }
            return url.value
        }
    }

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    public var kafka = Kafka()
    public var redis = Redis()
    public var database = Database()
    public var mail = Mail()
    public var retry = Backoff()
    /// The transactional outbox relay (`HERALD_OUTBOX_*`, read by `OutboxConfiguration`).
    public var outbox = OutboxConfiguration()
    /// Metrics, health and log settings (`OperationsConfiguration`).
    public var operations = OperationsConfiguration()
    /// Per-topic default event type for producers that send no type.
    public var defaultTypeByTopic: [String: EventType] = [:]
    /// How far ahead of Herald's clock an event's time may be (`HERALD_MAX_CLOCK_SKEW`); a later
    /// time is invalid content: revocation times only move forward, so one event dated years
    /// ahead would revoke a role or user for the whole TTL.
    public var maxClockSkew: Duration = .seconds(300)
    /// Types acknowledged without effect (after validation when Herald knows them)
    /// (`HERALD_IGNORED_EVENT_TYPES`). With mail off, the mail-only events are added.
    public var ignoredTypes: Set<EventType> = []
    public var logFormat = LogFormat.text
    public var logLevel = "info"

    /// The types acknowledged without effect: `ignoredTypes`, plus the mail-only events when
    /// mail is off.
    public var acknowledgedWithoutEffect: Set<EventType> {
        mail.enabled ? ignoredTypes : ignoredTypes.union(Mail.mailOnlyEventTypes)
    }

    public init() {}

    /// Reads and validates the configuration.
    /// - Parameters:
    ///   - environment: the process environment.
    ///   - readFile: reads a `*_FILE` secret or a properties file.
    public static func load(
        environment env: [String: String], readFile: @escaping (String) throws -> String
    ) throws(ConfigurationError) -> HeraldConfiguration {
        let reader = EnvironmentReader(env: env, readFile: readFile)
        var c = HeraldConfiguration()

        // Kafka
        if let brokers = try reader.string("HERALD_KAFKA_BROKERS"), brokers.trimmingWhitespace() == "embedded" {
            c.kafka.embeddedBroker = true
        } else if let brokers = try reader.string("HERALD_KAFKA_BROKERS") {
            let list = brokers.split(separator: ",").map { $0.trimmingWhitespace() }
            guard !list.isEmpty, list.allSatisfy({ !$0.isEmpty && $0.contains(":") }) else {
                throw ConfigurationError(setting: "HERALD_KAFKA_BROKERS", problem: "expected host:port[,host:port...] or embedded")
            }
            c.kafka.brokers = list.joined(separator: ",")
        }
        c.kafka.groupID = try reader.identifier("HERALD_KAFKA_GROUP") ?? c.kafka.groupID
        c.kafka.clientID = try reader.identifier("HERALD_KAFKA_CLIENT_ID") ?? c.kafka.clientID
        c.kafka.userTopic = try reader.topic("HERALD_USER_TOPIC") ?? c.kafka.userTopic
        c.kafka.authTopic = try reader.topic("HERALD_AUTH_TOPIC") ?? c.kafka.authTopic
        guard c.kafka.userTopic != c.kafka.authTopic else {
            throw ConfigurationError(setting: "HERALD_AUTH_TOPIC", problem: "must differ from HERALD_USER_TOPIC")
        }
        if let suffix = try reader.string("HERALD_DLQ_SUFFIX") {
            guard !suffix.isEmpty, isTopicName("x" + suffix) else {
                throw ConfigurationError(setting: "HERALD_DLQ_SUFFIX", problem: "must be a non-empty topic-name suffix")
            }
            c.kafka.deadLetterSuffix = suffix
        }
        // A dead-letter topic the broker would refuse makes every dead letter an outage: the
        // partition would wait forever on the first bad record.
        for (setting, topic) in [("HERALD_USER_TOPIC", c.kafka.userTopic), ("HERALD_AUTH_TOPIC", c.kafka.authTopic)]
        where !isTopicName(c.kafka.deadLetterTopic(for: topic)) {
            throw ConfigurationError(
                setting: setting,
                problem: "its dead-letter topic (the topic followed by HERALD_DLQ_SUFFIX) would be longer than 249 bytes")
        }
        c.kafka.embeddedPartitions = try reader.integer("HERALD_EMBEDDED_PARTITIONS", in: 1...1024) ?? c.kafka.embeddedPartitions
        c.kafka.bootstrapFile = try reader.string("HERALD_EMBEDDED_BOOTSTRAP_FILE") ?? c.kafka.bootstrapFile
        c.kafka.maxBufferedPerPartition =
            try reader.integer("HERALD_MAX_BUFFERED_PER_PARTITION", in: 1...1_000_000) ?? c.kafka.maxBufferedPerPartition
        c.kafka.maxBatch = try reader.integer("HERALD_MAX_BATCH", in: 1...100_000) ?? c.kafka.maxBatch
        c.kafka.commitInterval = try reader.duration("HERALD_COMMIT_INTERVAL") ?? c.kafka.commitInterval
        c.kafka.shutdownTimeout = try reader.duration("HERALD_SHUTDOWN_TIMEOUT") ?? c.kafka.shutdownTimeout
        if let path = try reader.string("HERALD_KAFKA_PROPERTIES_FILE") {
            let text: String
            do { text = try readFile(path) } catch {
                throw ConfigurationError(setting: "HERALD_KAFKA_PROPERTIES_FILE", problem: "cannot read \(path): \(error)")
            }
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingWhitespace()
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let eq = trimmed.firstIndex(of: "=") else {
                    throw ConfigurationError(setting: "HERALD_KAFKA_PROPERTIES_FILE", problem: "line \(n + 1) is not key=value")
                }
                let key = String(trimmed[..<eq]).trimmingWhitespace()
                c.kafka.properties[key] = String(trimmed[trimmed.index(after: eq)...]).trimmingWhitespace()
                c.kafka.secretProperties.insert(key)
            }
        }
        // HERALD_KAFKA_PROPERTY_SASL_PASSWORD=... → sasl.password; *_FILE forms for secrets.
        let prefix = "HERALD_KAFKA_PROPERTY_"
        for name in env.keys.sorted() where name.hasPrefix(prefix) && name.count > prefix.count {
            var suffix = String(name.dropFirst(prefix.count))
            let fromFile = suffix.hasSuffix("_FILE")
            if fromFile { suffix = String(suffix.dropLast(5)) }
            let key = suffix.lowercased().replacing("_", with: ".")
            guard let value = try reader.string(fromFile ? String(name.dropLast(5)) : name) else { continue }
            c.kafka.properties[key] = value
            if fromFile || key.contains("password") || key.contains("secret") || key.hasSuffix(".key")
                || key.hasPrefix("ssl.key.") || key == "sasl.oauthbearer.config"
            {
                c.kafka.secretProperties.insert(key)
            }
        }

        // Redis
        if let url = try reader.string("HERALD_REDIS_URL") {
            do throws(ValidationError) {
                c.redis.endpoint = try RedisEndpoint(url: url)
            } catch {
                throw ConfigurationError(setting: "HERALD_REDIS_URL", problem: error.reason)
            }
        }
        if let password = try reader.string("HERALD_REDIS_PASSWORD") {
            c.redis.endpoint.password = Secret(password)
        }
        c.redis.connectTimeout = try reader.duration("HERALD_REDIS_CONNECT_TIMEOUT") ?? c.redis.connectTimeout
        c.redis.commandTimeout = try reader.duration("HERALD_REDIS_COMMAND_TIMEOUT") ?? c.redis.commandTimeout
        c.redis.poolSize = try reader.integer("HERALD_REDIS_POOL_SIZE", in: 1...256) ?? c.redis.poolSize
        c.redis.roleInvalidationTTL = try reader.duration("HERALD_ROLE_INVALIDATION_TTL") ?? c.redis.roleInvalidationTTL
        c.redis.userRevocationTTL = try reader.duration("HERALD_USER_REVOCATION_TTL") ?? c.redis.userRevocationTTL

        // PostgreSQL
        if let url = try reader.string("HERALD_DATABASE_URL") {
            guard !url.isEmpty else { throw ConfigurationError(setting: "HERALD_DATABASE_URL", problem: "is empty") }
            c.database.url = Secret(url)
        }
        c.database.password = try reader.string("HERALD_DATABASE_PASSWORD").map(Secret.init)
        if let schema = try reader.string("HERALD_DATABASE_SCHEMA") {
            let valid =
                !schema.isEmpty && schema.utf8.count <= 63
                && schema.utf8.enumerated().allSatisfy { i, b in
                    (b >= 0x61 && b <= 0x7A) || b == 0x5F || (i > 0 && b >= 0x30 && b <= 0x39)
                }
            guard valid else {
                throw ConfigurationError(setting: "HERALD_DATABASE_SCHEMA", problem: "expected a lower-case identifier ([a-z_][a-z0-9_]*)")
            }
            c.database.schema = schema
        }
        c.database.poolSize = try reader.integer("HERALD_DATABASE_POOL_SIZE", in: 1...256) ?? c.database.poolSize
        c.database.connectTimeout = try reader.duration("HERALD_DATABASE_CONNECT_TIMEOUT") ?? c.database.connectTimeout
        c.database.statementTimeout = try reader.duration("HERALD_DATABASE_STATEMENT_TIMEOUT") ?? c.database.statementTimeout
        c.database.inboxRetention = try reader.duration("HERALD_INBOX_RETENTION") ?? c.database.inboxRetention
        c.database.autoMigrate = try reader.boolean("HERALD_DATABASE_AUTO_MIGRATE") ?? c.database.autoMigrate

        c.mail = try Mail.load(reader)

        // Retries
        c.retry.initial = try reader.duration("HERALD_RETRY_INITIAL") ?? c.retry.initial
        c.retry.cap = try reader.duration("HERALD_RETRY_MAX") ?? c.retry.cap
        guard c.retry.cap >= c.retry.initial else {
            throw ConfigurationError(setting: "HERALD_RETRY_MAX", problem: "must be at least HERALD_RETRY_INITIAL")
        }

        // Events
        c.maxClockSkew = try reader.duration("HERALD_MAX_CLOCK_SKEW") ?? c.maxClockSkew
        if let list = try reader.string("HERALD_DEFAULT_EVENT_TYPES") {
            for pair in list.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2, isTopicName(kv[0]), let type = try? EventType(kv[1]) else {
                    throw ConfigurationError(
                        setting: "HERALD_DEFAULT_EVENT_TYPES", problem: "expected topic=EventType[,topic=EventType...]")
                }
                c.defaultTypeByTopic[kv[0]] = type
            }
        }
        if let list = try reader.string("HERALD_IGNORED_EVENT_TYPES") {
            var types: Set<EventType> = []
            for name in list.split(separator: ",") {
                guard let type = try? EventType(name.trimmingWhitespace()) else {
                    throw ConfigurationError(setting: "HERALD_IGNORED_EVENT_TYPES", problem: "expected EventType[,EventType...]")
                }
                types.insert(type)
            }
            c.ignoredTypes = types
        }

        // Outbox relay
        c.outbox = try OutboxConfiguration.load(reader)

        // Metrics, health, log masking
        c.operations = try OperationsConfiguration.load(reader)

        // Logging
        if let format = try reader.string("HERALD_LOG_FORMAT") {
            guard let f = LogFormat(rawValue: format) else {
                throw ConfigurationError(setting: "HERALD_LOG_FORMAT", problem: "expected text or json")
            }
            c.logFormat = f
        }
        if let level = try reader.string("HERALD_LOG_LEVEL") {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            guard levels.contains(level) else {
                throw ConfigurationError(setting: "HERALD_LOG_LEVEL", problem: "expected one of \(levels.joined(separator: ", "))")
            }
            c.logLevel = level
        }
        return c
    }
}

func isTopicName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 249 && name != "." && name != ".."
        && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F
                || b == 0x2D
        }
}

/// Reads `HERALD_*` variables, with the `*_FILE` form for every one (the file's content,
/// trailing newline removed, wins only when the plain variable is unset).
struct EnvironmentReader {
    let env: [String: String]
    let readFile: (String) throws -> String

    func string(_ name: String) throws(ConfigurationError) -> String? {
        if let value = env[name] { return value }
        if let path = env[name + "_FILE"] {
            do {
                var text = try readFile(path)
                // `last.isNewline`, not `hasSuffix("\n")`: "\r\n" is a single Character.
                while let last = text.last, last.isNewline { text.removeLast() }
                return text
            } catch {
                throw ConfigurationError(setting: name + "_FILE", problem: "cannot read \(path)")
            }
        }
        return nil
    }

    func identifier(_ name: String) throws(ConfigurationError) -> String? {
        guard let value = try string(name) else { return nil }
        guard !value.isEmpty, value.utf8.count <= 249, !value.contains(where: { $0.isWhitespace }) else {
            throw ConfigurationError(setting: name, problem: "must be a non-empty name without spaces")
        }
        return value
    }

    func topic(_ name: String) throws(ConfigurationError) -> String? {
        guard let value = try string(name) else { return nil }
        guard isTopicName(value) else {
            throw ConfigurationError(setting: name, problem: "is not a valid Kafka topic name")
        }
        return value
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = try string(name) else { return nil }
        guard let n = Int(value), range.contains(n) else {
            throw ConfigurationError(setting: name, problem: "expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    func boolean(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let value = try string(name) else { return nil }
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(setting: name, problem: "expected true or false")
        }
    }

    /// Durations with a unit: `250ms`, `5s`, `2m`, `1h`, `8d`.
    func duration(_ name: String) throws(ConfigurationError) -> Duration? {
        guard let value = try string(name) else { return nil }
        guard let d = parseDuration(value), d > .zero else {
            throw ConfigurationError(setting: name, problem: "expected a positive duration such as 250ms, 5s, 2m, 1h or 8d")
        }
        return d
    }
}

public func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        let number = text.dropLast(suffix.count)
        guard let v = Double(number), v.isFinite, v >= 0 else { return nil }
        let milliseconds = (v * scale * 1000).rounded()
        // Int64(_:) traps beyond Int64.max: `1e300s` must be an error, not a crash.
        guard milliseconds < Double(Int64.max) else { return nil }
        return .milliseconds(Int64(milliseconds))
    }
    return nil
}

/// `duration` in the units `parseDuration` reads, largest first, zero parts left out:
/// `1h`, `1d 2h`, `30m 5s`, `1500ms` → `1s 500ms`.
public func formatDuration(_ duration: Duration) -> String {
    var rest = Int64(duration.seconds * 1000)
    if rest <= 0 { return rest == 0 ? "0s" : "-" + formatDuration(.milliseconds(-rest)) }
    var parts: [String] = []
    for (unit, ms) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where rest >= ms {
        parts.append("\(rest / ms)\(unit)")
        rest %= ms
    }
    return parts.joined(separator: " ")
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
