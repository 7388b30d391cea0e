import Foundation
import HeraldCore
import Logging

/// The mail queue in PostgreSQL (`notifications`, migration 4). Couriers claim due rows with
/// `FOR UPDATE SKIP LOCKED` and mark them `sending` in the same committed statement, so
/// several Herald instances share one queue and never claim the same row; a row left
/// `sending` by a crashed courier is requeued after a timeout (`requeueStale`).
public struct PostgresMailQueue: MailQueue {
    let client: PostgresClient
    let schema: String

    public init(client: PostgresClient, schema: String) {
        self.client = client
        self.schema = HeraldSchema.quoted(schema)
    }

    public func claim(limit: Int) async throws -> [ClaimedNotification] {
        let schema = self.schema
        let result = try await client.withConnection { connection in
            try connection.execute(
                """
                WITH due AS (
                    SELECT id FROM \(schema).notifications
                    WHERE status = 'queued' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED)
                UPDATE \(schema).notifications n SET status = 'sending', claimed_at = now()
                FROM due WHERE n.id = due.id
                RETURNING n.id::text AS id, n.event_id, n.kind, n.user_id, n.recipient, n.locale,
                    n.variables::text AS variables, n.attempts,
                    (extract(epoch FROM n.requested_at) * 1000)::bigint AS requested_ms,
                    (SELECT r.username FROM \(schema).recipients r WHERE r.user_id = n.user_id) AS username,
                    EXISTS (SELECT 1 FROM \(schema).recipients r WHERE r.user_id = n.user_id AND r.deleted_at IS NOT NULL)
                        AS deleted
                """,
                [.int(Int64(limit))])
        }
        var claimed: [ClaimedNotification] = []
        var unreadable: [(id: String, outcome: NotificationOutcome)] = []
        for row in result.rows.indices {
            let id = result.string(row, "id") ?? ""
            do {
                claimed.append(try Self.notification(result, row: row))
            } catch {
                // A row Herald cannot read (edited by hand) fails with the reason instead of
                // blocking the queue.
                unreadable.append((id, .failed(reason: "unreadable notification row: \(error)")))
            }
        }
        if !unreadable.isEmpty { try await complete(unreadable) }
        return claimed
    }

    static func notification(_ result: PostgresResult, row: Int) throws -> ClaimedNotification {
        func value(_ column: String) throws -> String {
            guard let v = result.string(row, column) else { throw ValidationError(field: column, reason: "is NULL") }
            return v
        }
        guard let kind = NotificationKind(rawValue: try value("kind")) else {
            throw ValidationError(field: "kind", reason: "unknown notification kind")
        }
        var variables: [String: String] = [:]
        if let object = try JSONSerialization.jsonObject(with: Data(try value("variables").utf8)) as? [String: Any] {
            for (key, v) in object { if let text = v as? String { variables[key] = text } }
        }
        guard let requestedMs = result.int(row, "requested_ms") else {
            throw ValidationError(field: "requested_at", reason: "is NULL")
        }
        return ClaimedNotification(
            id: try value("id"), eventID: try value("event_id"), kind: kind, userID: try UserID(try value("user_id")),
            recipient: try EmailAddress(try value("recipient")),
            locale: try result.string(row, "locale").map { try LanguageTag($0) },
            variables: variables, attempts: Int(result.int(row, "attempts") ?? 0),
            requestedAt: EventTime(millisecondsSinceEpoch: requestedMs),
            username: result.string(row, "username").flatMap { try? Username($0) },
            recipientDeleted: result.bool(row, "deleted") ?? false)
    }

    public func complete(_ outcomes: [(id: String, outcome: NotificationOutcome)]) async throws {
        if outcomes.isEmpty { return }
        let schema = self.schema
        try await client.transaction { connection in
            for (id, outcome) in outcomes {
                switch outcome {
                case .sent(let messageID, _):
                    try connection.execute(
                        """
                        UPDATE \(schema).notifications SET status = 'sent', sent_at = now(), message_id = $2,
                            attempts = attempts + 1, last_error = NULL
                        WHERE id = $1::uuid AND status = 'sending'
                        """, [.text(id), .text(messageID)])
                case .retry(let reason, let delay, let countsAsAttempt):
                    try connection.execute(
                        """
                        UPDATE \(schema).notifications SET status = 'queued', claimed_at = NULL, last_error = $2,
                            attempts = attempts + $3,
                            next_attempt_at = now() + make_interval(secs => $4::double precision)
                        WHERE id = $1::uuid AND status = 'sending'
                        """, [.text(id), .text(reason), .int(countsAsAttempt ? 1 : 0), .text(String(delay.seconds))])
                case .failed(let reason), .abandoned(let reason):
                    try connection.execute(
                        """
                        UPDATE \(schema).notifications SET status = $2, last_error = $3, attempts = attempts + 1
                        WHERE id = $1::uuid AND status = 'sending'
                        """, [.text(id), .text(outcome.status.rawValue), .text(reason)])
                case .suppressed(let reason):
                    try connection.execute(
                        """
                        UPDATE \(schema).notifications SET status = 'suppressed', last_error = $2
                        WHERE id = $1::uuid AND status = 'sending'
                        """, [.text(id), .text(reason)])
                }
            }
        }
    }

    public func requeueStale(claimedLongerThan timeout: Duration) async throws -> Int {
        let schema = self.schema
        return try await client.withConnection { connection in
            try connection.execute(
                """
                UPDATE \(schema).notifications SET status = 'queued', claimed_at = NULL, next_attempt_at = now(),
                    last_error = 'requeued: its courier stopped while sending (it may have been sent once)'
                WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => $1::double precision)
                """, [.text(String(timeout.seconds))]
            ).affectedRows
        }
    }
}
