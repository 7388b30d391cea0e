import HeraldCore
import HeraldPostgres

/// Herald's own PostgreSQL database (`HERALD_DATABASE_*`, `HERALD_INBOX_RETENTION`).
public struct DatabaseSettings: Sendable {
    /// How to connect; nil when `HERALD_DATABASE_URL` is unset (`requireConnection()` names it).
    public var connection: PostgresSettings?
    /// Herald's own schema.
    public var schema = "herald"
    /// Apply pending migrations at start-up instead of refusing to start.
    public var autoMigrate = false
    /// How long processed-event rows are kept for de-duplication.
    public var inboxRetention: Duration = .seconds(14 * 86_400)

    public init() {}

    /// The connection, or an error naming the setting, for the commands that need the database.
    public func requireConnection() throws(ConfigurationError) -> PostgresSettings {
        guard let connection else {
            throw ConfigurationError(
                setting: "HERALD_DATABASE_URL",
                problem: "required: a libpq URI such as postgresql://herald@db:5432/auth or a conninfo string")
        }
        return connection
    }

    /// The pool size, timeouts and password also apply to the outbox database when it is this
    /// one (`OutboxSettings`): `load` returns them for it.
    struct Shared {
        var url: Secret?
        var password: Secret?
        var connectTimeout: Duration
        var statementTimeout: Duration
        var preparesStatements: Bool
    }

    static func load(_ reader: SettingsReader) throws(ConfigurationError) -> (DatabaseSettings, Shared) {
        var d = DatabaseSettings()
        let url = try reader.secret("HERALD_DATABASE_URL", allowEmpty: false)
        let password = try reader.secret("HERALD_DATABASE_PASSWORD")
        if let schema = try reader.string("HERALD_DATABASE_SCHEMA") {
            guard PostgresMigrator.isValidSchemaName(schema) else {
                throw ConfigurationError(setting: "HERALD_DATABASE_SCHEMA", problem: "expected a lower-case identifier ([a-z_][a-z0-9_]*)")
            }
            d.schema = schema
        }
        let defaults = PostgresSettings(conninfo: Secret(""))
        let poolSize = try reader.integer("HERALD_DATABASE_POOL_SIZE", in: 1...256) ?? defaults.poolSize
        let connectTimeout = try reader.duration("HERALD_DATABASE_CONNECT_TIMEOUT") ?? defaults.connectTimeout
        let statementTimeout = try reader.duration("HERALD_DATABASE_STATEMENT_TIMEOUT") ?? defaults.statementTimeout
        let prepares = try reader.boolean("HERALD_DATABASE_PREPARED_STATEMENTS") ?? defaults.preparesStatements
        d.inboxRetention = try reader.duration("HERALD_INBOX_RETENTION") ?? d.inboxRetention
        d.autoMigrate = try reader.boolean("HERALD_DATABASE_AUTO_MIGRATE") ?? d.autoMigrate
        d.connection = url.map {
            PostgresSettings(
                conninfo: $0, password: password, poolSize: poolSize, connectTimeout: connectTimeout, statementTimeout: statementTimeout,
                preparesStatements: prepares)
        }
        return (
            d,
            Shared(
                url: url, password: password, connectTimeout: connectTimeout, statementTimeout: statementTimeout,
                preparesStatements: prepares)
        )
    }
}
