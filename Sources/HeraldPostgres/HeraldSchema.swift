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
        // Mail too old to send (`expired`); mail addressed when it is sent (`address_from`
        // 'user': `recipient` is the user's stored address at the latest claim, `event_email`
        // the fallback); claims owned and numbered, so only the current claim records an
        // outcome; and one mail per (event, kind), since a recipient resolved at send time is
        // no part of a mail's identity. A legacy pair of rows for one (event, kind), queued by
        // two consumer groups to two addresses, keeps its first row's event id; the later row's
        // gets " (duplicate <its id>)" appended.
        PostgresMigration(
            version: 5, name: "notifications_expiry_addressing_claims",
            sql: """
                ALTER TABLE {schema}.notifications
                    ADD COLUMN address_from text NOT NULL DEFAULT 'event' CHECK (address_from IN ('event', 'user')),
                    ADD COLUMN event_email text,
                    ADD COLUMN claimed_by text,
                    ADD COLUMN claim_number integer NOT NULL DEFAULT 0,
                    DROP CONSTRAINT notifications_status_check,
                    ADD CONSTRAINT notifications_status_check
                        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'abandoned', 'suppressed', 'expired'));
                UPDATE {schema}.notifications n SET event_id = n.event_id || ' (duplicate ' || n.id::text || ')'
                WHERE EXISTS (
                    SELECT 1 FROM {schema}.notifications o
                    WHERE o.event_id = n.event_id AND o.kind = n.kind AND (o.created_at, o.id) < (n.created_at, n.id));
                ALTER TABLE {schema}.notifications
                    DROP CONSTRAINT notifications_event_id_kind_recipient_key,
                    ADD CONSTRAINT notifications_event_id_kind_key UNIQUE (event_id, kind);
                """),
    ]

    /// `"name"`: a schema name already validated as `[a-z_][a-z0-9_]*`.
    static func quoted(_ schema: String) -> String {
        "\"" + schema + "\""
    }
}
