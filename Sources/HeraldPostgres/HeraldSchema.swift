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
        PostgresMigration(
            version: 4, name: "notifications",
            sql: """
                CREATE TABLE {schema}.notifications (
                    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                    event_id text NOT NULL,
                    kind text NOT NULL,
                    user_id text NOT NULL,
                    recipient text NOT NULL,
                    locale text,
                    variables jsonb NOT NULL DEFAULT '{}'::jsonb,
                    status text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'abandoned', 'suppressed')),
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    last_error text,
                    message_id text,
                    requested_at timestamptz NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    claimed_at timestamptz,
                    sent_at timestamptz,
                    UNIQUE (event_id, kind, recipient)
                );
                CREATE INDEX notifications_due ON {schema}.notifications (next_attempt_at) WHERE status = 'queued';
                CREATE INDEX notifications_recipient_kind ON {schema}.notifications (recipient, kind, created_at);
                """),
    ]

    /// `"name"`: a schema name already validated as `[a-z_][a-z0-9_]*`.
    static func quoted(_ schema: String) -> String {
        "\"" + schema + "\""
    }
}
