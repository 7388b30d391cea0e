import HeraldCore

/// Herald's own tables, as versioned migrations compiled into the binary. `{schema}` is
/// replaced by the migrator with the quoted, validated schema name. Never edit a released
/// migration: add a new version.
public enum HeraldSchema {
    public static let migrations: [PostgresMigration] = [
        PostgresMigration(
            version: 1, name: "processed_events",
            sql: """
                CREATE TABLE {schema}.processed_events (
                    consumer_group text NOT NULL,
                    event_id text NOT NULL,
                    event_type text NOT NULL,
                    topic text NOT NULL,
                    "partition" integer NOT NULL,
                    "offset" bigint NOT NULL,
                    processed_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (consumer_group, event_id)
                )
                """),
        PostgresMigration(
            version: 2, name: "processed_events_processed_at",
            sql: "CREATE INDEX processed_events_processed_at ON {schema}.processed_events (processed_at)"),
        PostgresMigration(
            version: 3, name: "recipients",
            sql: """
                CREATE TABLE {schema}.recipients (
                    user_id text PRIMARY KEY,
                    email text,
                    username text,
                    locale text,
                    deleted_at timestamptz,
                    updated_at timestamptz NOT NULL
                )
                """),
    ]

    /// `"name"`: a schema name already validated as `[a-z_][a-z0-9_]*`.
    static func quoted(_ schema: String) -> String {
        "\"" + schema + "\""
    }
}
