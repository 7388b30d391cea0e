import HeraldCore
import HeraldKafka

/// Kafka (`HERALD_KAFKA_*`, the topics, the dead-letter suffix, the embedded broker, the
/// consumer's pace). The consumer's own settings are built here, once.
public struct KafkaSettings: Sendable {
    /// Where the daemons get their Kafka cluster from (`HERALD_KAFKA_BROKERS`).
    public enum BrokerChoice: Sendable, Hashable {
        /// `host:port[,host:port...]`.
        case servers(String)
        /// `embedded`: librdkafka's mock cluster, in memory (development only).
        case embedded
    }

    /// nil when `HERALD_KAFKA_BROKERS` is unset.
    public var brokers: BrokerChoice?
    /// The consumer's settings, all but `bootstrapServers`, which is known once the brokers
    /// are (`consumer(bootstrapServers:)`): the embedded broker's address is its own.
    public var consumer: KafkaConsumerSettings
    public var userTopic = "user_service_topic"
    public var authTopic = "auth_service_topic"
    public var deadLetterSuffix = ".dlq"
    /// Partitions per topic on the embedded broker.
    public var embeddedPartitions = 4
    /// Where the embedded broker's address is written, and where client commands read it.
    public var bootstrapFile = "var/kafka-bootstrap"

    public init() {
        consumer = KafkaConsumerSettings(bootstrapServers: "", groupID: "herald", topics: [])
        consumer.topics = [userTopic, authTopic]
    }

    public var groupID: String { consumer.groupID }
    public var clientID: String { consumer.clientID }
    /// Raw librdkafka properties (`HERALD_KAFKA_PROPERTY_*`, `HERALD_KAFKA_PROPERTIES_FILE`),
    /// for every client Herald makes.
    public var properties: [String: String] { consumer.properties }
    /// Properties whose values are secrets (never logged).
    public var secretProperties: Set<String> { consumer.secretProperties }
    /// Drain time at shutdown and on revocation; also the producer's flush limit.
    public var shutdownTimeout: Duration { consumer.drainTimeout }

    public var topic: [EventCatalog.CatalogTopic: String] { [.user: userTopic, .auth: authTopic] }

    public func deadLetterTopic(for topic: String) -> String { topic + deadLetterSuffix }

    /// The consumer's settings with the brokers resolved.
    public func consumer(bootstrapServers: String) -> KafkaConsumerSettings {
        var settings = consumer
        settings.bootstrapServers = bootstrapServers
        return settings
    }

    /// The brokers `herald run` and the outbox relay use. Unset is an error, never a silent
    /// in-memory broker: events and outbox rows acknowledged by it would be lost.
    public func requireBrokers() throws(ConfigurationError) -> BrokerChoice {
        guard let brokers else {
            throw ConfigurationError(
                setting: "HERALD_KAFKA_BROKERS",
                problem:
                    "required: the Kafka bootstrap servers, host:port[,host:port...]; or `embedded` for an in-memory development broker that keeps nothing (make run sets it)"
            )
        }
        return brokers
    }

    static func load(_ reader: SettingsReader) throws(ConfigurationError) -> KafkaSettings {
        var k = KafkaSettings()
        if let brokers = try reader.string("HERALD_KAFKA_BROKERS") {
            if brokers.trimmingWhitespace() == "embedded" {
                k.brokers = .embedded
            } else {
                let list = brokers.split(separator: ",").map { $0.trimmingWhitespace() }
                guard !list.isEmpty, list.allSatisfy({ !$0.isEmpty && $0.contains(":") }) else {
                    throw ConfigurationError(setting: "HERALD_KAFKA_BROKERS", problem: "expected host:port[,host:port...] or embedded")
                }
                k.brokers = .servers(list.joined(separator: ","))
            }
        }
        k.userTopic = try reader.topic("HERALD_USER_TOPIC") ?? k.userTopic
        k.authTopic = try reader.topic("HERALD_AUTH_TOPIC") ?? k.authTopic
        guard k.userTopic != k.authTopic else {
            throw ConfigurationError(setting: "HERALD_AUTH_TOPIC", problem: "must differ from HERALD_USER_TOPIC")
        }
        if let suffix = try reader.string("HERALD_DLQ_SUFFIX") {
            guard !suffix.isEmpty, isTopicName("x" + suffix) else {
                throw ConfigurationError(setting: "HERALD_DLQ_SUFFIX", problem: "must be a non-empty topic-name suffix")
            }
            k.deadLetterSuffix = suffix
        }
        // A dead-letter topic the broker would refuse makes every dead letter an outage: the
        // partition would wait forever on the first bad record.
        for (setting, topic) in [("HERALD_USER_TOPIC", k.userTopic), ("HERALD_AUTH_TOPIC", k.authTopic)]
        where !isTopicName(k.deadLetterTopic(for: topic)) {
            throw ConfigurationError(
                setting: setting,
                problem: "its dead-letter topic (the topic followed by HERALD_DLQ_SUFFIX) would be longer than 249 bytes")
        }
        k.embeddedPartitions = try reader.integer("HERALD_EMBEDDED_PARTITIONS", in: 1...1024) ?? k.embeddedPartitions
        k.bootstrapFile = try reader.string("HERALD_EMBEDDED_BOOTSTRAP_FILE") ?? k.bootstrapFile

        let (properties, secretProperties) = try loadProperties(reader)
        let defaults = k.consumer
        k.consumer = KafkaConsumerSettings(
            bootstrapServers: "",
            groupID: try reader.identifier("HERALD_KAFKA_GROUP") ?? defaults.groupID,
            clientID: try reader.identifier("HERALD_KAFKA_CLIENT_ID") ?? defaults.clientID,
            topics: [k.userTopic, k.authTopic],
            properties: properties, secretProperties: secretProperties,
            memoryBudget: try reader.bytes("HERALD_MEMORY_BUDGET", in: MemoryBudget.minimum...(64 << 30))
                .map(MemoryBudget.init(bytes:)) ?? defaults.memoryBudget,
            maxBatch: try reader.integer("HERALD_MAX_BATCH", in: 1...100_000) ?? defaults.maxBatch,
            commitInterval: try reader.duration("HERALD_COMMIT_INTERVAL") ?? defaults.commitInterval,
            drainTimeout: try reader.duration("HERALD_SHUTDOWN_TIMEOUT") ?? defaults.drainTimeout)
        return k
    }

    /// `HERALD_KAFKA_PROPERTIES_FILE` (every value a secret), then `HERALD_KAFKA_PROPERTY_*`:
    /// `HERALD_KAFKA_PROPERTY_SASL_PASSWORD=...` → `sasl.password`; the `*_FILE` forms, and
    /// names that look like credentials or keys, are secrets.
    static func loadProperties(_ reader: SettingsReader) throws(ConfigurationError) -> ([String: String], Set<String>) {
        var properties: [String: String] = [:]
        var secrets: Set<String> = []
        if let path = try reader.string("HERALD_KAFKA_PROPERTIES_FILE") {
            let text: String
            do { text = try reader.readFile(path) } catch {
                throw ConfigurationError(setting: "HERALD_KAFKA_PROPERTIES_FILE", problem: "cannot read \(path): \(error)")
            }
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingWhitespace()
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let eq = trimmed.firstIndex(of: "=") else {
                    throw ConfigurationError(setting: "HERALD_KAFKA_PROPERTIES_FILE", problem: "line \(n + 1) is not key=value")
                }
                let key = String(trimmed[..<eq]).trimmingWhitespace()
                properties[key] = String(trimmed[trimmed.index(after: eq)...]).trimmingWhitespace()
                secrets.insert(key)
            }
        }
        let prefix = "HERALD_KAFKA_PROPERTY_"
        for name in reader.names(withPrefix: prefix) {
            var suffix = String(name.dropFirst(prefix.count))
            let fromFile = suffix.hasSuffix("_FILE")
            if fromFile { suffix = String(suffix.dropLast(5)) }
            let key = suffix.lowercased().replacing("_", with: ".")
            guard let value = try reader.string(fromFile ? String(name.dropLast(5)) : name) else { continue }
            properties[key] = value
            if fromFile || key.contains("password") || key.contains("secret") || key.hasSuffix(".key")
                || key.hasPrefix("ssl.key.") || key == "sasl.oauthbearer.config"
            {
                secrets.insert(key)
            }
        }
        return (properties, secrets)
    }
}
