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
        // Herald's own transactional outbox of mail outcomes (`MailEventOutbox`): the layout of
        // docs/integration.md's `outbox_events`, so the same relay publishes it; rows are
        // written in the transaction that changes a notification's status, and only when
        // HERALD_MAIL_EVENTS_ENABLED is on. The trigger wakes the relay at commit, on the
        // channel `MailEventOutbox.channel(schema:)` names (schema cut to 40 bytes), only when
        // the statement inserted rows; the indexes are the relay's (`OutboxTriggerSchema`).
        PostgresMigration(
            version: 6, name: "mail_outbox",
            sql: """
                CREATE TABLE {schema}.mail_outbox (
                    id uuid PRIMARY KEY,
                    aggregate_type text NOT NULL,
                    aggregate_id text NOT NULL,
                    event_type text NOT NULL,
                    event_data jsonb NOT NULL,
                    status text NOT NULL DEFAULT 'pending',
                    retry_count integer NOT NULL DEFAULT 0,
                    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    processed_at timestamptz,
                    error_message text
                );
                CREATE INDEX mail_outbox_pending ON {schema}.mail_outbox (created_at, id) WHERE status = 'pending';
                CREATE INDEX mail_outbox_unprocessed ON {schema}.mail_outbox (aggregate_id, created_at, id)
                    WHERE status <> 'processed';
                CREATE INDEX mail_outbox_processed_at ON {schema}.mail_outbox (processed_at) WHERE status = 'processed';
                CREATE FUNCTION {schema}.mail_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM inserted) THEN
                        PERFORM pg_notify(left(TG_TABLE_SCHEMA, 40) || '_mail_events', '');
                    END IF;
                    RETURN NULL;
                END
                $$;
                CREATE TRIGGER mail_outbox_notify AFTER INSERT ON {schema}.mail_outbox
                    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {schema}.mail_outbox_notify();
                """),
    ]

    /// `"name"`: a schema name already validated as `[a-z_][a-z0-9_]*`.
    static func quoted(_ schema: String) -> String {
        "\"" + schema + "\""
    }
}
