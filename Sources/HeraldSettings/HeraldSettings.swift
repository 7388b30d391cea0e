import Foundation
import HeraldCore
import HeraldOperations
import HeraldRedis

/// Everything Herald reads from its `HERALD_*` environment variables (the README's
/// configuration table is the list), validated before anything starts: a bad value is a
/// `ConfigurationError` naming the variable. Each component's own settings type is built
/// here, once, from the variables; the composition root hands each component its own.
public struct HeraldSettings: Sendable {
    public var kafka = KafkaSettings()
    public var redis = RedisSettings()
    public var database = DatabaseSettings()
    public var mail = MailSettings()
    public var outbox = OutboxSettings()
    public var operations = OperationsSettings()
    public var events = EventSettings()
    /// Backoff for transient failures (`HERALD_RETRY_INITIAL`, `HERALD_RETRY_MAX`).
    public var retry = Backoff()
    public var log = LogSettings()

    public init() {}

    /// Reads and validates the settings.
    /// - Parameters:
    ///   - environment: the process environment.
    ///   - readFile: reads a `*_FILE` secret or a properties file.
    public static func load(
        environment: [String: String], readFile: @escaping (String) throws -> String = readFile
    ) throws(ConfigurationError) -> HeraldSettings {
        try load(SettingsReader(environment: environment, readFile: readFile))
    }

    /// The `HERALD_*` names `load` reads (a variable `HERALD_KAFKA_PROPERTY_<NAME>` stands for
    /// all of its kind as `HERALD_KAFKA_PROPERTY_`).
    public static var names: Set<String> {
        let reader = SettingsReader(environment: [:], readFile: { _ in "" })
        _ = try? load(reader)
        return reader.names
    }

    /// The content of the file at `path`.
    public static func readFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    static func load(_ reader: SettingsReader) throws(ConfigurationError) -> HeraldSettings {
        var s = HeraldSettings()
        s.kafka = try KafkaSettings.load(reader)
        s.redis = try loadRedis(reader)
        let database: DatabaseSettings.Shared
        (s.database, database) = try DatabaseSettings.load(reader)
        s.mail = try MailSettings.load(reader)
        s.retry.initial = try reader.duration("HERALD_RETRY_INITIAL") ?? s.retry.initial
        s.retry.cap = try reader.duration("HERALD_RETRY_MAX") ?? s.retry.cap
        guard s.retry.cap >= s.retry.initial else {
            throw ConfigurationError(setting: "HERALD_RETRY_MAX", problem: "must be at least HERALD_RETRY_INITIAL")
        }
        s.events = try EventSettings.load(reader)
        s.outbox = try OutboxSettings.load(reader, database: database, retry: s.retry)
        s.operations = try loadOperations(reader)
        s.log = try LogSettings.load(reader)
        return s
    }

    static func loadRedis(_ r: SettingsReader) throws(ConfigurationError) -> RedisSettings {
        var c = RedisSettings()
        if let url = try r.string("HERALD_REDIS_URL") {
            do throws(ValidationError) {
                c.endpoint = try RedisEndpoint(url: url)
            } catch {
                throw ConfigurationError(setting: "HERALD_REDIS_URL", problem: error.reason)
            }
        }
        if let password = try r.secret("HERALD_REDIS_PASSWORD") { c.endpoint.password = password }
        c.connectTimeout = try r.duration("HERALD_REDIS_CONNECT_TIMEOUT") ?? c.connectTimeout
        c.commandTimeout = try r.duration("HERALD_REDIS_COMMAND_TIMEOUT") ?? c.commandTimeout
        c.poolSize = try r.integer("HERALD_REDIS_POOL_SIZE", in: 1...256) ?? c.poolSize
        c.roleInvalidationTTL = try r.duration("HERALD_ROLE_INVALIDATION_TTL") ?? c.roleInvalidationTTL
        c.userRevocationTTL = try r.duration("HERALD_USER_REVOCATION_TTL") ?? c.userRevocationTTL
        return c
    }

    static func loadOperations(_ r: SettingsReader) throws(ConfigurationError) -> OperationsSettings {
        var c = OperationsSettings()
        if let address = try r.string("HERALD_HTTP_ADDRESS") {
            guard let (host, port) = OperationsSettings.parseHostPort(address) else {
                throw ConfigurationError(
                    setting: "HERALD_HTTP_ADDRESS", problem: "expected host:port such as 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464")
            }
            c.httpHost = host
            c.httpPort = port
        }
        c.sampleInterval = try r.duration("HERALD_LAG_INTERVAL") ?? c.sampleInterval
        c.readinessTimeout = try r.duration("HERALD_READINESS_TIMEOUT") ?? c.readinessTimeout
        c.stallTimeout = try r.duration("HERALD_HEALTH_STALL_TIMEOUT") ?? c.stallTimeout
        c.maskEmails = try r.boolean("HERALD_LOG_MASK_EMAILS") ?? c.maskEmails
        return c
    }
}

/// How events are read and which are skipped (`HERALD_DEFAULT_EVENT_TYPES`,
/// `HERALD_MAX_CLOCK_SKEW`, `HERALD_IGNORED_EVENT_TYPES`).
public struct EventSettings: Sendable {
    /// Per-topic default event type for producers that send none.
    public var defaultTypeByTopic: [String: EventType] = [:]
    /// How far ahead of Herald's clock an event's time may be; a later time is invalid
    /// content: revocation times only move forward, so one event dated years ahead would
    /// revoke a role or user for the whole TTL.
    public var maxClockSkew: Duration = .seconds(300)
    /// Types acknowledged without effect (after validation when Herald knows them).
    public var ignoredTypes: Set<EventType> = []

    public init() {}

    /// The envelope decoder these settings describe.
    public var decoder: EnvelopeDecoder {
        EnvelopeDecoder(defaultTypeByTopic: defaultTypeByTopic, maxClockSkew: maxClockSkew, maxClockSkewName: "HERALD_MAX_CLOCK_SKEW")
    }

    static func load(_ r: SettingsReader) throws(ConfigurationError) -> EventSettings {
        var c = EventSettings()
        c.maxClockSkew = try r.duration("HERALD_MAX_CLOCK_SKEW") ?? c.maxClockSkew
        if let list = try r.string("HERALD_DEFAULT_EVENT_TYPES") {
            for pair in list.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2, isTopicName(kv[0]), let type = try? EventType(kv[1]) else {
                    throw ConfigurationError(
                        setting: "HERALD_DEFAULT_EVENT_TYPES", problem: "expected topic=EventType[,topic=EventType...]")
                }
                c.defaultTypeByTopic[kv[0]] = type
            }
        }
        if let list = try r.string("HERALD_IGNORED_EVENT_TYPES") {
            var types: Set<EventType> = []
            for name in list.split(separator: ",") {
                guard let type = try? EventType(name.trimmingWhitespace()) else {
                    throw ConfigurationError(setting: "HERALD_IGNORED_EVENT_TYPES", problem: "expected EventType[,EventType...]")
                }
                types.insert(type)
            }
            c.ignoredTypes = types
        }
        return c
    }
}

/// `HERALD_LOG_FORMAT`, `HERALD_LOG_LEVEL`.
public struct LogSettings: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public var format = Format.text
    public var level = "info"

    public init() {}

    static func load(_ r: SettingsReader) throws(ConfigurationError) -> LogSettings {
        var c = LogSettings()
        if let format = try r.string("HERALD_LOG_FORMAT") {
            guard let f = Format(rawValue: format) else {
                throw ConfigurationError(setting: "HERALD_LOG_FORMAT", problem: "expected text or json")
            }
            c.format = f
        }
        if let level = try r.string("HERALD_LOG_LEVEL") {
            guard levels.contains(level) else {
                throw ConfigurationError(setting: "HERALD_LOG_LEVEL", problem: "expected one of \(levels.joined(separator: ", "))")
            }
            c.level = level
        }
        return c
    }
}
