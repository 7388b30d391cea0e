import HeraldCore
import Logging

/// Where and how a `PostgresClient` (or a `PostgresListener`) connects: the one settings type
/// of the PostgreSQL adapter. Herald's own database (`HERALD_DATABASE_*`) and the API's
/// outbox database (`HERALD_OUTBOX_DATABASE_*`) are each one of these.
public struct PostgresSettings: Sendable {
    /// A libpq URI (`postgresql://…`) or `key=value` conninfo; may hold a password.
    public var conninfo: Secret
    /// Overrides the connection string's password (for `*_FILE` secrets).
    public var password: Secret?
    /// Most connections open at once.
    public var poolSize: Int
    public var connectTimeout: Duration
    /// The sessions' `statement_timeout`; zero turns it off.
    public var statementTimeout: Duration
    /// `application_name`, shown in `pg_stat_activity`.
    public var applicationName: String
    /// Whether connections prepare the statements they run (see `PostgresClient.init`).
    public var preparesStatements: Bool

    public init(
        conninfo: Secret, password: Secret? = nil, poolSize: Int = 4, connectTimeout: Duration = .seconds(5),
        statementTimeout: Duration = .seconds(30), applicationName: String = "herald", preparesStatements: Bool = true
    ) {
        self.conninfo = conninfo
        self.password = password
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
        self.applicationName = applicationName
        self.preparesStatements = preparesStatements
    }

    /// These settings with another pool size and application name (one-shot commands).
    public func with(poolSize: Int? = nil, statementTimeout: Duration? = nil, applicationName: String? = nil) -> PostgresSettings {
        var copy = self
        if let poolSize { copy.poolSize = poolSize }
        if let statementTimeout { copy.statementTimeout = statementTimeout }
        if let applicationName { copy.applicationName = applicationName }
        return copy
    }
}

extension PostgresClient {
    /// A client as `settings` describe it.
    public convenience init(settings: PostgresSettings, observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger) {
        self.init(
            conninfo: settings.conninfo.value, poolSize: settings.poolSize, connectTimeout: settings.connectTimeout,
            statementTimeout: settings.statementTimeout, applicationName: settings.applicationName,
            password: settings.password?.value, preparesStatements: settings.preparesStatements, observer: observer, logger: logger)
    }
}

extension PostgresListener {
    /// A listener on `channel` over its own connection to the database `settings` name.
    public convenience init(
        settings: PostgresSettings, channel: String, applicationName: String, logger: Logger,
        onNotify: @escaping @Sendable () -> Void
    ) {
        self.init(
            conninfo: settings.conninfo.value, password: settings.password?.value, channel: channel,
            connectTimeout: settings.connectTimeout, applicationName: applicationName, logger: logger, onNotify: onNotify)
    }
}

extension PostgresEventInbox: InboxRetention {}
extension PostgresMailQueue: MailQueueStatistics {}
