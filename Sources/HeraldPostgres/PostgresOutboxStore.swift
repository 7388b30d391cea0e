import HeraldCore
import Logging

/// The API's transactional outbox table in PostgreSQL (`outbox_events` of docs/integration.md; table and
/// column names from `OutboxTableLayout`). Status values: `pending`, `processed`, `failed`.
///
/// Claiming, and why rows of one aggregate are never published out of order, even with many
/// relays at once: a relay claims, with `FOR UPDATE SKIP LOCKED`, only rows that are the
/// oldest unprocessed row (by `created_at`, then `id`) of their aggregate (`aggregate_id`) —
/// no earlier row of the same aggregate is `pending` or `failed`. Row N+1 of an aggregate is
/// therefore not claimable while row N is unprocessed: while another relay holds row N (its
/// transaction has not committed `processed`), every other relay still sees row N pending,
/// and skips row N+1. Row N's claim is released only by the commit that marks it processed
/// (after the broker acknowledged it) or by a rollback (it stays pending). A relay that
/// reads row N between the other relay's commit and its own lock re-checks the locked row's
/// status (PostgreSQL re-evaluates the row's conditions under `FOR UPDATE`) and skips it
/// because it is processed. A `failed` row blocks its aggregate the same way, and only its
/// aggregate.
///
/// Having locked an aggregate's head, the relay also takes the aggregate's next pending rows
/// (up to its first `failed` one, within the batch size): no other relay can claim them
/// while it holds the head. The relay publishes them in waves (`OutboxRelay.deliver`): row
/// N+1 only after row N was acknowledged, and not at all when row N was refused; such rows
/// stay pending. So one aggregate's rows share a transaction and keep their order.
///
/// The claim, the publishing (`deliver`) and the status updates run in one transaction, so
/// a relay that dies mid-batch leaves its rows pending (their locks go with its session):
/// another relay publishes them again, with the same `ce_id`.
public struct PostgresOutboxStore: OutboxStore {
    let client: PostgresClient
    let layout: OutboxTableLayout
    let logger: Logger
    private let statements: Statements

    /// `layout`'s names must be identifiers (`OutboxTableLayout.isIdentifier`); the
    /// configuration checks them.
    public init(client: PostgresClient, layout: OutboxTableLayout, logger: Logger) {
        precondition(
            ([layout.table] + (layout.schema.map { [$0] } ?? []) + OutboxTableLayout.Column.allCases.map(layout.name(of:)))
                .allSatisfy(OutboxTableLayout.isIdentifier),
            "outbox table and column names must be validated identifiers")
        self.client = client
        self.layout = layout
        self.logger = logger
        self.statements = Statements(layout)
    }

    public func claim(
        limit: Int, deliver: @escaping @Sendable ([OutboxEvent]) async throws -> [OutboxOutcome]
    ) async throws -> [OutboxOutcome] {
        let statements = self.statements
        return try await client.transaction(spanning: { transaction in
            let events = try await transaction.execute { connection in
                // The aggregates' oldest unprocessed rows no other relay holds, then, while the
                // batch has room, the rows after them in their aggregates, up to a failed one.
                let limit = max(1, limit)
                let heads = try connection.execute(statements.claim, [.int(Int64(limit))])
                var events = try Self.events(heads)
                let room = limit - events.count
                guard !events.isEmpty, room > 0 else { return events }
                let locations = heads.rows.indices.compactMap { heads.string($0, "location") }
                events += try Self.events(
                    connection.execute(statements.claimFollowing, [.textArray(locations), .int(Int64(room))]))
                return events
            }
            if events.isEmpty { return [] }
            let outcomes = try await deliver(events)
            try await transaction.execute { connection in
                var published: [String?] = []
                published.reserveCapacity(outcomes.count)
                for outcome in outcomes {
                    switch outcome {
                    case .published(let id):
                        published.append(id)
                    case .failed(let id, let reason, let final):
                        try connection.execute(statements.fail, [.text(id), .text(reason), .bool(final)])
                    }
                }
                if !published.isEmpty {
                    try connection.execute(statements.markProcessed, [.textArray(published)])
                }
            }
            return outcomes
        })
    }

    public func deleteProcessed(olderThan age: Duration, batchSize: Int) async throws -> Int {
        let statement = statements.deleteProcessed
        var total = 0
        while true {
            let deleted = try await client.withConnection { connection in
                try connection.execute(statement, [.text(String(age.seconds)), .int(Int64(max(1, batchSize)))]).affectedRows
            }
            total += deleted
            if deleted < batchSize { return total }
        }
    }

    public func backlog() async throws -> OutboxBacklog {
        let statement = statements.backlog
        let result = try await client.withConnection { try $0.execute(statement) }
        return OutboxBacklog(
            failedRows: Int(result.int(0, "failed_rows") ?? 0), blockedAggregates: Int(result.int(0, "blocked_aggregates") ?? 0),
            waitingRows: Int(result.int(0, "waiting_rows") ?? 0))
    }

    // MARK: - Operators

    /// One row as `herald outbox list` shows it.
    public struct Listing: Sendable, Hashable {
        public let id: String
        public let aggregateType: String
        public let aggregateID: String
        public let eventType: String
        public let status: String
        public let attempts: Int
        /// RFC 3339, UTC.
        public let createdAt: String
        public let processedAt: String?
        public let errorMessage: String?
    }

    /// The oldest rows with `status` (any status when nil), at most `limit`.
    public func list(status: String?, limit: Int) async throws -> [Listing] {
        let statement = statements.list
        let result = try await client.withConnection { connection in
            try connection.execute(statement, [status.map { .text($0) } ?? .null, .int(Int64(max(1, limit)))])
        }
        return result.rows.indices.map { row in
            Listing(
                id: result.string(row, "id") ?? "", aggregateType: result.string(row, "aggregate_type") ?? "",
                aggregateID: result.string(row, "aggregate_id") ?? "", eventType: result.string(row, "event_type") ?? "",
                status: result.string(row, "status") ?? "", attempts: Int(result.int(row, "retry_count") ?? 0),
                createdAt: result.string(row, "created_at") ?? "", processedAt: result.string(row, "processed_at"),
                errorMessage: result.string(row, "error_message"))
        }
    }

    /// Counts rows per status.
    public func counts() async throws -> [String: Int] {
        let statement = statements.counts
        let result = try await client.withConnection { try $0.execute(statement) }
        var counts: [String: Int] = [:]
        for row in result.rows.indices {
            counts[result.string(row, "status") ?? "NULL"] = Int(result.int(row, "n") ?? 0)
        }
        return counts
    }

    /// Puts `failed` rows back to `pending` with their attempts reset (the ids given, or
    /// every failed row when `ids` is nil), then sends `NOTIFY channel` so that listening
    /// relays look at once. Returns how many rows changed.
    public func retry(ids: [String]?, notify channel: String?) async throws -> Int {
        let statements = self.statements
        return try await client.transaction { connection in
            let changed: Int
            if let ids {
                changed = try connection.execute(statements.retrySome, [.textArray(ids)]).affectedRows
            } else {
                changed = try connection.execute(statements.retryAll).affectedRows
            }
            if let channel, changed > 0 {
                try connection.execute("SELECT pg_notify($1, '')", [.text(channel)])
            }
            return changed
        }
    }

    // MARK: - SQL

    private static func events(_ result: PostgresResult) throws -> [OutboxEvent] {
        var events: [OutboxEvent] = []
        events.reserveCapacity(result.count)
        let columns = ["id", "aggregate_type", "aggregate_id", "event_type", "event_data", "retry_count", "created_ms"]
        let index = columns.map { result.columns.firstIndex(of: $0) ?? -1 }
        guard !index.contains(-1) else {
            throw PostgresError.make(.unexpectedResult, "the outbox claim returned unexpected columns")
        }
        for row in result.rows {
            events.append(
                OutboxEvent(
                    id: row[index[0]] ?? "", aggregateType: row[index[1]] ?? "", aggregateID: row[index[2]] ?? "",
                    eventType: row[index[3]] ?? "", payload: Array((row[index[4]] ?? "").utf8),
                    createdAt: EventTime(millisecondsSinceEpoch: row[index[6]].flatMap { Int64($0) } ?? 0),
                    attempts: row[index[5]].flatMap { Int($0) } ?? 0))
        }
        return events
    }

    /// The statements, built once from the layout (every name validated and double-quoted).
    struct Statements: Sendable {
        let table: String
        let claim: String
        let claimFollowing: String
        let markProcessed: String
        let fail: String
        let deleteProcessed: String
        let backlog: String
        let list: String
        let counts: String
        let retrySome: String
        let retryAll: String

        init(_ layout: OutboxTableLayout) {
            func q(_ name: String) -> String { "\"" + name + "\"" }
            let table = (layout.schema.map { q($0) + "." } ?? "") + q(layout.table)
            let id = q(layout.name(of: .id))
            let type = q(layout.name(of: .aggregateType))
            let aggregate = q(layout.name(of: .aggregateID))
            let eventType = q(layout.name(of: .eventType))
            let data = q(layout.name(of: .eventData))
            let status = q(layout.name(of: .status))
            let retries = q(layout.name(of: .retryCount))
            let created = q(layout.name(of: .createdAt))
            let processed = q(layout.name(of: .processedAt))
            let error = q(layout.name(of: .errorMessage))
            self.table = table
            // created_at::timestamptz: a `timestamp` column is read in the session's time
            // zone, the zone `now()` was converted with when the API wrote it. Milliseconds
            // are truncated (floor), as `herald outbox list` shows them: a cast would round
            // .9996 up, a ce_time after the row was written (and into the next second).
            claim = """
                SELECT o.\(id)::text AS id, o.\(type)::text AS aggregate_type, o.\(aggregate)::text AS aggregate_id,
                       o.\(eventType)::text AS event_type, o.\(data)::text AS event_data,
                       COALESCE(o.\(retries), 0) AS retry_count,
                       floor(extract(epoch FROM o.\(created)::timestamptz) * 1000)::bigint AS created_ms,
                       o.ctid::text AS location
                FROM \(table) AS o
                WHERE o.\(status) = 'pending'
                  AND NOT EXISTS (
                      SELECT 1 FROM \(table) AS p
                      WHERE p.\(aggregate) = o.\(aggregate) AND p.\(status) <> 'processed'
                        AND (p.\(created), p.\(id)) < (o.\(created), o.\(id)))
                ORDER BY o.\(created), o.\(id)
                LIMIT $1
                FOR UPDATE OF o SKIP LOCKED
                """
            // The rows after the claimed heads (found by their row locations, which cannot
            // change while this transaction holds them), in order, up to the first failed
            // one. No other relay can hold them: for every other relay the head is still
            // unprocessed, so nothing after it is claimable.
            claimFollowing = """
                SELECT o.\(id)::text AS id, o.\(type)::text AS aggregate_type, o.\(aggregate)::text AS aggregate_id,
                       o.\(eventType)::text AS event_type, o.\(data)::text AS event_data,
                       COALESCE(o.\(retries), 0) AS retry_count,
                       floor(extract(epoch FROM o.\(created)::timestamptz) * 1000)::bigint AS created_ms
                FROM \(table) AS h
                JOIN \(table) AS o ON o.\(aggregate) = h.\(aggregate)
                WHERE h.ctid = ANY($1::tid[])
                  AND o.\(status) = 'pending'
                  AND (o.\(created), o.\(id)) > (h.\(created), h.\(id))
                  AND NOT EXISTS (
                      SELECT 1 FROM \(table) AS f
                      WHERE f.\(aggregate) = o.\(aggregate) AND f.\(status) = 'failed'
                        AND (f.\(created), f.\(id)) < (o.\(created), o.\(id)))
                ORDER BY o.\(created), o.\(id)
                LIMIT $2
                FOR UPDATE OF o
                """
            markProcessed = "UPDATE \(table) SET \(status) = 'processed', \(processed) = now() WHERE \(id) = ANY($1)"
            fail = """
                UPDATE \(table) SET \(retries) = COALESCE(\(retries), 0) + 1, \(error) = $2,
                    \(status) = CASE WHEN $3 THEN 'failed' ELSE \(status) END
                WHERE \(id) = $1
                """
            deleteProcessed = """
                DELETE FROM \(table) WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM \(table)
                    WHERE \(status) = 'processed' AND \(processed) < now() - make_interval(secs => $1::double precision)
                    LIMIT $2))
                """
            backlog = """
                SELECT (SELECT count(*) FROM \(table) WHERE \(status) = 'failed') AS failed_rows,
                       (SELECT count(DISTINCT \(aggregate)) FROM \(table) WHERE \(status) = 'failed') AS blocked_aggregates,
                       (SELECT count(*) FROM \(table) AS w
                        WHERE w.\(status) = 'pending' AND EXISTS (
                            SELECT 1 FROM \(table) AS f
                            WHERE f.\(aggregate) = w.\(aggregate) AND f.\(status) = 'failed'
                              AND (f.\(created), f.\(id)) < (w.\(created), w.\(id)))) AS waiting_rows
                """
            list = """
                SELECT \(id)::text AS id, \(type)::text AS aggregate_type, \(aggregate)::text AS aggregate_id,
                       \(eventType)::text AS event_type, \(status)::text AS status, COALESCE(\(retries), 0) AS retry_count,
                       to_char(\(created)::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
                       to_char(\(processed)::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS processed_at,
                       \(error)::text AS error_message
                FROM \(table)
                WHERE $1::text IS NULL OR \(status) = $1::text
                ORDER BY \(created), \(id)
                LIMIT $2
                """
            counts = "SELECT \(status)::text AS status, count(*) AS n FROM \(table) GROUP BY 1 ORDER BY 1"
            retrySome = "UPDATE \(table) SET \(status) = 'pending', \(retries) = 0 WHERE \(status) = 'failed' AND \(id) = ANY($1)"
            retryAll = "UPDATE \(table) SET \(status) = 'pending', \(retries) = 0 WHERE \(status) = 'failed'"
        }
    }
}
