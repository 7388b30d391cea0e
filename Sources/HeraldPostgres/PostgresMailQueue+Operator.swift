import HeraldCore

/// One row of the mail queue as an operator sees it (`herald mail list|show`). Times are
/// RFC 3339 strings in UTC; `variables` is the JSON text queued with it (never a token).
public struct NotificationRecord: Sendable, Hashable {
    public var id: String
    public var eventID: String
    public var kind: String
    public var userID: String
    /// The address the mail goes (or went) to; for `addressFrom == "user"`, the address its
    /// latest attempt went to (the user's stored address at that claim).
    public var recipient: String
    /// `event` or `user` (`MailAddressing`).
    public var addressFrom: String
    /// The address the event carried, if any.
    public var eventEmail: String?
    public var locale: String?
    public var status: String
    public var attempts: Int
    public var nextAttemptAt: String?
    public var lastError: String?
    public var messageID: String?
    public var requestedAt: String?
    public var createdAt: String?
    public var claimedAt: String?
    /// The courier instance that claimed it last, and how many times it was claimed.
    public var claimedBy: String?
    public var claimNumber: Int
    public var sentAt: String?
    public var variables: String?
}

extension PostgresMailQueue {
    private static let columns = """
        id::text AS id, event_id, kind, user_id, recipient, address_from, event_email, locale, status, attempts,
        to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS next_attempt_at,
        last_error, message_id,
        to_char(requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS requested_at,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
        to_char(claimed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS claimed_at,
        claimed_by, claim_number,
        to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS sent_at,
        variables::text AS variables
        """

    private static func records(_ result: PostgresResult) -> [NotificationRecord] {
        result.rows.indices.map { row in
            NotificationRecord(
                id: result.string(row, "id") ?? "", eventID: result.string(row, "event_id") ?? "",
                kind: result.string(row, "kind") ?? "", userID: result.string(row, "user_id") ?? "",
                recipient: result.string(row, "recipient") ?? "", addressFrom: result.string(row, "address_from") ?? "event",
                eventEmail: result.string(row, "event_email"), locale: result.string(row, "locale"),
                status: result.string(row, "status") ?? "", attempts: Int(result.int(row, "attempts") ?? 0),
                nextAttemptAt: result.string(row, "next_attempt_at"), lastError: result.string(row, "last_error"),
                messageID: result.string(row, "message_id"), requestedAt: result.string(row, "requested_at"),
                createdAt: result.string(row, "created_at"), claimedAt: result.string(row, "claimed_at"),
                claimedBy: result.string(row, "claimed_by"), claimNumber: Int(result.int(row, "claim_number") ?? 0),
                sentAt: result.string(row, "sent_at"), variables: result.string(row, "variables"))
        }
    }

    /// The newest notifications first, optionally only those with `status`, `kind` or sent to
    /// `recipient`.
    public func list(
        status: NotificationStatus? = nil, kind: NotificationKind? = nil, recipient: String? = nil, limit: Int = 50
    ) async throws -> [NotificationRecord] {
        let schema = self.schema
        let result = try await client.withConnection { connection in
            try connection.execute(
                """
                SELECT \(Self.columns) FROM \(schema).notifications
                WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
                  AND ($3::text IS NULL OR recipient = $3)
                ORDER BY created_at DESC, id LIMIT $4
                """,
                [
                    status.map { .text($0.rawValue) } ?? .null, kind.map { .text($0.rawValue) } ?? .null,
                    recipient.map { .text($0) } ?? .null, .int(Int64(limit)),
                ])
        }
        return Self.records(result)
    }

    /// One notification by id (a UUID), nil when there is none.
    public func find(id: String) async throws -> NotificationRecord? {
        let schema = self.schema
        let result = try await client.withConnection { connection in
            try connection.execute(
                "SELECT \(Self.columns) FROM \(schema).notifications WHERE id::text = $1", [.text(id.lowercased())])
        }
        return Self.records(result).first
    }

    /// Notifications by status, for the queue's depth.
    public func countByStatus() async throws -> [NotificationStatus: Int] {
        let schema = self.schema
        let result = try await client.withConnection { connection in
            try connection.execute("SELECT status, count(*) AS n FROM \(schema).notifications GROUP BY status")
        }
        var counts: [NotificationStatus: Int] = [:]
        for row in result.rows.indices {
            if let status = result.string(row, "status").flatMap(NotificationStatus.init), let n = result.int(row, "n") {
                counts[status] = Int(n)
            }
        }
        return counts
    }

    /// How long the oldest notification waiting in the queue (status `queued`) has waited
    /// since it was queued; nil when none waits.
    public func oldestQueuedAge() async throws -> Duration? {
        let schema = self.schema
        let result = try await client.withConnection { connection in
            try connection.execute(
                """
                SELECT (EXTRACT(EPOCH FROM now() - min(created_at)) * 1000)::bigint AS age_ms
                FROM \(schema).notifications WHERE status = 'queued'
                """)
        }
        guard !result.rows.isEmpty, let ms = result.int(0, "age_ms") else { return nil }
        return .milliseconds(max(0, ms))
    }

    /// Requeues failed, abandoned or suppressed notifications for an immediate send with
    /// their attempts reset: those with the given ids, or every one with `status`. Returns
    /// the ids requeued (others are in another status, such as `expired`, or do not exist).
    public func retry(ids: [String] = [], status: NotificationStatus? = nil) async throws -> [String] {
        let schema = self.schema
        let retryable = NotificationStatus.allCases.filter(\.isRetryable).map(\.rawValue)
        let result = try await client.withConnection { connection in
            try connection.execute(
                """
                UPDATE \(schema).notifications SET status = 'queued', attempts = 0, next_attempt_at = now(),
                    claimed_at = NULL, last_error = 'requeued by an operator after: ' || coalesce(last_error, status)
                WHERE status = ANY($1::text[])
                  AND (id::text = ANY($2::text[]) OR ($3::text IS NOT NULL AND status = $3))
                RETURNING id::text AS id
                """,
                [.textArray(retryable), .textArray(ids.map { $0.lowercased() }), status.map { .text($0.rawValue) } ?? .null])
        }
        return result.rows.compactMap { $0.first ?? nil }
    }
}
