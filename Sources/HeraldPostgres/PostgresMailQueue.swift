import HeraldCore
import Logging

/// The mail queue in PostgreSQL (`notifications`, migrations 4 and 5). Couriers claim due
/// rows with `FOR UPDATE SKIP LOCKED` and mark them `sending` in the same committed statement,
/// so several Herald instances share one queue and never claim the same row; a row left
/// `sending` by a crashed courier is requeued after a timeout (`requeueStale`). Each claim
/// stamps the row with its courier (`claimed_by`) and the next claim number
/// (`claim_number`); an outcome is recorded only under the current claim. The claim loads the
/// user as the recipients model holds them then, for the courier's `MailPolicy` to address
/// the mail (`address_from = 'user'`: the user's address at send time); the outcome records
/// the address it went to (`recipient`). Who gets mail is decided there, not here.
///
/// With `mailEvents`, each outcome that changes a notification's status (except a requeue
/// after an outage, which used no attempt) also writes its `MailStatusChanged` row to
/// `mail_outbox` in the same statement (`MailEventOutbox`): no row when the claim is no
/// longer current, and none without the status.
public struct PostgresMailQueue: MailQueue {
    let client: PostgresClient
    let schema: String
    /// Outcomes are recorded in `mail_outbox` too (HERALD_MAIL_EVENTS_ENABLED).
    let mailEvents: Bool

    public init(client: PostgresClient, schema: String, mailEvents: Bool = false) {
        self.client = client
        self.schema = HeraldSchema.quoted(schema)
        self.mailEvents = mailEvents
    }

    public func claim(limit: Int, owner: String) async throws -> [ClaimedNotification] {
        let schema = self.schema
        let result = try await client.withConnection { connection in
            try connection.execute(
                """
                WITH due AS (
                    SELECT id, user_id FROM \(schema).notifications
                    WHERE status = 'queued' AND next_attempt_at <= now()
                    ORDER BY next_attempt_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED)
                UPDATE \(schema).notifications n SET status = 'sending', claimed_at = now(), claimed_by = $2,
                    claim_number = n.claim_number + 1
                FROM due LEFT JOIN \(schema).recipients r ON r.user_id = due.user_id
                WHERE n.id = due.id
                RETURNING n.id::text AS id, n.event_id, n.kind, n.user_id, n.address_from, n.recipient, n.event_email, n.locale,
                    n.variables::text AS variables, n.attempts, n.claim_number,
                    (extract(epoch FROM n.requested_at) * 1000)::bigint AS requested_ms,
                    r.user_id IS NOT NULL AS stored, r.email AS stored_email, r.username AS stored_username,
                    r.locale AS stored_locale, r.deleted_at IS NOT NULL AS stored_deleted
                """,
                [.int(Int64(limit)), .text(owner)])
        }
        var claimed: [ClaimedNotification] = []
        for row in result.rows.indices {
            let claim = NotificationClaim(
                id: result.string(row, "id") ?? "", owner: owner, number: Int(result.int(row, "claim_number") ?? 0))
            do {
                claimed.append(try Self.notification(result, row: row, claim: claim))
            } catch {
                // A row Herald cannot read (edited by hand) fails with the reason instead of
                // blocking the queue.
                _ = try await complete(claim, .failed(reason: "unreadable notification row: \(error)"), recipient: nil)
            }
        }
        return claimed
    }

    static func notification(_ result: PostgresResult, row: Int, claim: NotificationClaim) throws -> ClaimedNotification {
        func value(_ column: String) throws -> String {
            guard let v = result.string(row, column) else { throw ValidationError(field: column, reason: "is NULL") }
            return v
        }
        guard let kind = NotificationKind(rawValue: try value("kind")) else {
            throw ValidationError(field: "kind", reason: "unknown notification kind")
        }
        var variables: [String: String] = [:]
        // Herald's own JSON parser, as for events (`herald-bench json`: 4.5× JSONSerialization).
        let object = try JSONObject(parsing: Array(try value("variables").utf8))
        for key in object.keys { if let text = try? object.string(key) { variables[key] = text } }
        guard let requestedMs = result.int(row, "requested_ms") else {
            throw ValidationError(field: "requested_at", reason: "is NULL")
        }
        guard let addressing = MailAddressing(rawValue: try value("address_from")) else {
            throw ValidationError(field: "address_from", reason: "is neither event nor user")
        }
        // The recipients model as stored now; a value Herald cannot read counts as unknown.
        let stored =
            result.bool(row, "stored") == true
            ? StoredRecipient(
                email: result.string(row, "stored_email").flatMap { try? EmailAddress($0) },
                username: result.string(row, "stored_username").flatMap { try? Username($0) },
                locale: result.string(row, "stored_locale").flatMap { try? LanguageTag($0) },
                deleted: result.bool(row, "stored_deleted") ?? false)
            : nil
        return ClaimedNotification(
            id: try value("id"), eventID: try value("event_id"), kind: kind, userID: try UserID(try value("user_id")),
            addressing: addressing, recipient: try EmailAddress(try value("recipient")),
            eventEmail: try result.string(row, "event_email").map { try EmailAddress($0) },
            locale: try result.string(row, "locale").map { try LanguageTag($0) },
            variables: variables, attempts: Int(result.int(row, "attempts") ?? 0),
            requestedAt: EventTime(millisecondsSinceEpoch: requestedMs), storedRecipient: stored, claim: claim)
    }

    public func complete(_ claim: NotificationClaim, _ outcome: NotificationOutcome, recipient: EmailAddress?) async throws -> Bool {
        let schema = self.schema
        // Only under the current claim: a courier whose claim was requeued (it outlived the
        // claim timeout) and taken by another must not overwrite the newer outcome. The
        // address the mail went to, when the courier addressed it, replaces the one recorded.
        let held = "id = $1::uuid AND status = 'sending' AND claimed_by = $2 AND claim_number = $3"
        let key: [PostgresValue] = [.text(claim.id), .text(claim.owner), .int(Int64(claim.number))]
        let addressed: PostgresValue = recipient.map { .text($0.rawValue) } ?? .null
        // The statement, its parameters, and whether it is published: an outage's requeue
        // (no attempt used, the mail never reached a server) is not. The reply code is taken
        // from the outcome's text only in the class the outcome implies, so a number in
        // another message (a template error's line) is not reported as a reply.
        let statement: String
        let parameters: [PostgresValue]
        var published = mailEvents
        var reply: SMTPReplyCode?
        switch outcome {
        case .sent(let messageID, let serverReply):
            statement = """
                UPDATE \(schema).notifications SET status = 'sent', sent_at = now(), message_id = $5,
                    attempts = attempts + 1, last_error = NULL, recipient = coalesce($4, recipient)
                WHERE \(held)
                """
            parameters = key + [addressed, .text(messageID)]
            reply = serverReply.flatMap { SMTPReplyCode(in: $0, class: 2) }
        case .retry(let reason, let delay, let countsAsAttempt):
            statement = """
                UPDATE \(schema).notifications SET status = 'queued', claimed_at = NULL, last_error = $5,
                    attempts = attempts + $6, recipient = coalesce($4, recipient),
                    next_attempt_at = now() + make_interval(secs => $7::double precision)
                WHERE \(held)
                """
            parameters = key + [addressed, .text(reason), .int(countsAsAttempt ? 1 : 0), .text(String(delay.seconds))]
            published = published && countsAsAttempt
            reply = SMTPReplyCode(in: reason, class: 4)
        case .failed(let reason), .abandoned(let reason):
            statement = """
                UPDATE \(schema).notifications SET status = $5, last_error = $6, attempts = attempts + 1,
                    recipient = coalesce($4, recipient)
                WHERE \(held)
                """
            parameters = key + [addressed, .text(outcome.status.rawValue), .text(reason)]
            // A refusal is a 5xx; an abandoned mail's last reply a 4xx.
            reply = SMTPReplyCode(in: reason, class: outcome.status == .failed ? 5 : 4)
        case .suppressed(let reason), .expired(let reason):
            // Never attempted: no attempt used.
            statement =
                "UPDATE \(schema).notifications SET status = $5, last_error = $6, recipient = coalesce($4, recipient) WHERE \(held)"
            parameters = key + [addressed, .text(outcome.status.rawValue), .text(reason)]
        }
        let replyParameters: [PostgresValue] = [
            reply.map { .int(Int64($0.code)) } ?? .null, reply?.enhanced.map { .text($0) } ?? .null,
        ]
        let recorded = published
        let updated = try await client.withConnection { connection in
            if recorded {
                return try connection.execute(
                    MailEventOutbox.recording(statement, schema: schema, reply: parameters.count + 1),
                    parameters + replyParameters
                ).count
            }
            return try connection.execute(statement, parameters).affectedRows
        }
        return updated == 1
    }

    public func release(_ claims: [NotificationClaim]) async throws {
        if claims.isEmpty { return }
        let schema = self.schema
        _ = try await client.withConnection { connection in
            try connection.execute(
                """
                UPDATE \(schema).notifications n SET status = 'queued', claimed_at = NULL
                FROM unnest($1::text[], $2::text[], $3::bigint[]) AS c(id, owner, number)
                WHERE n.id = c.id::uuid AND n.status = 'sending' AND n.claimed_by = c.owner AND n.claim_number = c.number
                """,
                [.textArray(claims.map(\.id)), .textArray(claims.map(\.owner)), .intArray(claims.map { Int64($0.number) })])
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
