import HeraldCore

/// What Herald can install in the API's database when asked (`herald outbox install-trigger`),
/// as versioned migrations recorded in their own schema (default `herald_outbox`, which also
/// holds the trigger function), never in Herald's own:
///
/// 1. a statement-level `AFTER INSERT` trigger on the outbox table that calls
///    `pg_notify(channel, '')`: the notification is delivered when the API's transaction
///    commits (never for a rolled-back one), and PostgreSQL folds identical notifications of
///    one transaction into one, so a transaction writing many rows wakes the relay once;
/// 2. partial indexes for the relay's queries: pending rows by creation order, unprocessed
///    rows per aggregate (the ordering check), processed rows by `processed_at` (retention).
///
/// Both take a lock on the outbox table while they run (building the indexes blocks the
/// API's inserts for that long): on a large table, print them (`--print`) and apply them in
/// the API's own migrations, with `CREATE INDEX CONCURRENTLY`.
public enum OutboxTriggerSchema {
    public static let defaultSchema = "herald_outbox"

    public static func migrations(layout: OutboxTableLayout, channel: String) -> [PostgresMigration] {
        precondition(OutboxTableLayout.isIdentifier(channel), "the channel must be a validated identifier")
        func q(_ name: String) -> String { "\"" + name + "\"" }
        let table = (layout.schema.map { q($0) + "." } ?? "") + q(layout.table)
        let id = q(layout.name(of: .id))
        let aggregate = q(layout.name(of: .aggregateID))
        let status = q(layout.name(of: .status))
        let created = q(layout.name(of: .createdAt))
        let processed = q(layout.name(of: .processedAt))
        let prefix = "herald_" + String(layout.table.prefix(40))
        return [
            PostgresMigration(
                version: 1, name: "outbox_notify_trigger",
                sql: """
                    CREATE OR REPLACE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        PERFORM pg_notify('\(channel)', '');
                        RETURN NULL;
                    END
                    $$;
                    DROP TRIGGER IF EXISTS herald_outbox_notify ON \(table);
                    CREATE TRIGGER herald_outbox_notify AFTER INSERT ON \(table)
                        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify();
                    """),
            PostgresMigration(
                version: 2, name: "outbox_relay_indexes",
                sql: """
                    CREATE INDEX IF NOT EXISTS \(q(prefix + "_pending")) ON \(table) (\(created), \(id))
                        WHERE \(status) = 'pending';
                    CREATE INDEX IF NOT EXISTS \(q(prefix + "_unprocessed")) ON \(table) (\(aggregate), \(created), \(id))
                        WHERE \(status) <> 'processed';
                    CREATE INDEX IF NOT EXISTS \(q(prefix + "_processed_at")) ON \(table) (\(processed))
                        WHERE \(status) = 'processed';
                    """),
        ]
    }
}
