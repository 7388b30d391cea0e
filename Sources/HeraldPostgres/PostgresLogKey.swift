/// The metadata keys HeraldPostgres adds to log records.
enum PostgresLogKey {
    /// Host, port, database and user, never the password (`PostgresClient.endpoint`).
    static let endpoint = "postgres_endpoint"
    static let error = "error"
    static let sqlState = "sql_state"
    static let schema = "schema"
    static let migrationVersion = "migration_version"
    static let migrationName = "migration_name"
}
