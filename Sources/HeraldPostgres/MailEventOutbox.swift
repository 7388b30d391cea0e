import HeraldCore

/// Herald's own outbox of mail outcomes: `{schema}.mail_outbox` (migration 6), in the layout
/// of docs/integration.md's `outbox_events`, relayed by a second `OutboxRelay` to
/// `HERALD_MAIL_EVENTS_TOPIC`. When mail events are on, every statement that gives a
/// notification a status worth telling (`sent`, `deferred` = requeued for another attempt,
/// `failed`, `abandoned`, `expired`, `suppressed`) inserts one row here in the same statement
/// (`recording`), so the row commits exactly when the status does, and never otherwise.
///
/// The row: aggregate `Notification`/the notification's id (one notification's events keep
/// their order: same key, same partition), event type `MailStatusChanged`, and a payload of
/// ids, the status, the attempt count and the SMTP reply code and enhanced status code when
/// the outcome carries one. Never the recipient's address, the server's reply text (it may
/// echo the address), a token, a link or the body (Topics/asyncapi.yaml, `MailStatusChanged`).
public enum MailEventOutbox {
    public static let table = "mail_outbox"
    public static let aggregateType = "Notification"
    public static let eventType = "MailStatusChanged"
    /// The payload's `version`.
    public static let version = 1

    /// The table's layout for the relay: `table` in Herald's schema, default column names.
    public static func layout(schema: String) -> OutboxTableLayout {
        OutboxTableLayout(schema: schema, table: table)
    }

    /// `{schema}_mail_events`, the schema cut to 40 bytes: the channel the table's trigger
    /// NOTIFYs (`left(TG_TABLE_SCHEMA, 40) || '_mail_events'`, migration 6) and the relay
    /// LISTENs on. Always an identifier of at most 52 bytes for a valid schema name.
    public static func channel(schema: String) -> String {
        String(decoding: schema.utf8.prefix(40), as: UTF8.self) + "_mail_events"
    }

    /// `statement`, an UPDATE or INSERT on `notifications` without a RETURNING clause, as a
    /// statement that also inserts one `mail_outbox` row per notification it changed, and
    /// returns one row (column `id`) per notification changed. A notification now `queued` is
    /// published as `deferred`. `reply`: the number of the parameter holding the SMTP reply
    /// code (an integer or NULL), the next one holding the enhanced status code (text or
    /// NULL); nil when the statement has none.
    static func recording(_ statement: String, schema: String, reply: Int? = nil) -> String {
        let code = reply.map { "$\($0)::integer" } ?? "NULL::integer"
        let enhanced = reply.map { "$\($0 + 1)::text" } ?? "NULL::text"
        return """
            WITH changed AS (
                \(statement)
                RETURNING id, event_id, kind, user_id, status, attempts),
            recorded AS (
                INSERT INTO \(schema).\(table) (id, aggregate_type, aggregate_id, event_type, event_data, created_at)
                SELECT gen_random_uuid(), '\(aggregateType)', c.id::text, '\(eventType)',
                    jsonb_strip_nulls(jsonb_build_object(
                        'version', \(version), 'notification_id', c.id::text, 'kind', c.kind, 'user_id', c.user_id,
                        'event_id', c.event_id, 'status', CASE c.status WHEN 'queued' THEN 'deferred' ELSE c.status END,
                        'attempts', c.attempts, 'reply_code', \(code),
                        'reply_class', (\(code) / 100)::text || 'xx', 'enhanced_status', \(enhanced),
                        'occurred_at', to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))),
                    t.at
                FROM changed c CROSS JOIN (SELECT clock_timestamp() AS at) t)
            SELECT id::text AS id FROM changed
            """
    }
}
