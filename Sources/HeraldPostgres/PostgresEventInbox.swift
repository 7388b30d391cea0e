import Foundation
import HeraldCore
import Logging

/// The inbox (`processed_events`) and the recipients model in PostgreSQL. One transaction per
/// batch: the inbox rows go in with one multi-row INSERT (arrays through `unnest`, one round
/// trip), and only the events it actually inserted get their database effects applied, so a
/// redelivered event, or the same event arriving on two partitions at once, changes nothing.
public struct PostgresEventInbox: EventInbox {
    let client: PostgresClient
    let schema: String
    let logger: Logger
    /// Decides whether each requested mail is queued, to whom, or recorded `expired` or
    /// `suppressed`; the inbox loads what it needs and stores its decision.
    let mailPolicy: MailPolicy
    /// Told of mail recorded as `expired` or `suppressed` at once.
    let mailObserver: (any MailQueueObserver)?
    /// Mail recorded as `expired` or `suppressed` at once also gets its `MailStatusChanged`
    /// row in `mail_outbox`, in the same statement (HERALD_MAIL_EVENTS_ENABLED).
    let mailEvents: Bool

    /// The channel notified when a transaction queued mail.
    public let mailChannel: String

    public init(
        client: PostgresClient, schema: String, mailPolicy: MailPolicy = MailPolicy(), mailObserver: (any MailQueueObserver)? = nil,
        mailEvents: Bool = false, logger: Logger
    ) {
        self.client = client
        self.schema = HeraldSchema.quoted(schema)
        self.mailChannel = Self.mailChannel(schema: schema)
        self.mailPolicy = mailPolicy
        self.mailObserver = mailObserver
        self.mailEvents = mailEvents
        self.logger = logger
    }

    public func record(_ events: [AcceptedEvent], consumerGroup: String) async throws -> Set<EventID> {
        if events.isEmpty { return [] }
        let schema = self.schema
        let mail = mailPolicy
        let channel = mailChannel
        let mailEvents = self.mailEvents
        let (inserted, decided) = try await Self.blamingValues(events) {
            try await client.transaction { connection -> (Set<String>, [MailDecision]) in
                // Rows in event-id order: two batches holding the same events (one event on two
                // partitions, a redelivery beside its original) take the unique index's locks in
                // the same order, so one waits for the other instead of both deadlocking.
                let result = try connection.execute(
                    """
                    INSERT INTO \(schema).processed_events (consumer_group, event_id, event_type, topic, "partition", "offset")
                    SELECT $1, e.id, e.type, e.topic, e.part, e.off
                    FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[]) AS e(id, type, topic, part, off)
                    ORDER BY e.id
                    ON CONFLICT (consumer_group, event_id) DO NOTHING
                    RETURNING event_id
                    """,
                    [
                        .text(consumerGroup),
                        .textArray(events.map { $0.metadata.id.rawValue }),
                        .textArray(events.map { $0.metadata.type.rawValue }),
                        .textArray(events.map { $0.metadata.topic }),
                        .intArray(events.map { Int64($0.metadata.partition) }),
                        .intArray(events.map { $0.metadata.offset }),
                    ])
                let new = Set(result.rows.compactMap { $0.first ?? nil })
                var applied: Set<String> = []
                var effects = BatchApplier(schema: schema, policy: mail, mailEvents: mailEvents, connection: connection)
                for event in events where new.contains(event.metadata.id.rawValue) {
                    // The same id twice in one batch: the first occurrence is the one recorded.
                    guard applied.insert(event.metadata.id.rawValue).inserted else { continue }
                    try effects.add(event)
                }
                try effects.flush()
                // Delivered at commit to every courier LISTENing (other instances included).
                if effects.queuedMail { try connection.execute("SELECT pg_notify($1, '')", [.text(channel)]) }
                return (new, effects.decided)
            }
        }
        for mail in decided { mailObserver?.queued(kind: mail.kind, status: mail.status) }
        if inserted.count < events.count {
            logger.debug(
                "events already processed; acknowledged without applying them again",
                metadata: ["duplicates": "\(events.count - inserted.count)", "group": "\(consumerGroup)"])
        }
        return Set(events.lazy.map(\.metadata.id).filter { inserted.contains($0.rawValue) })
    }

    /// Runs `body`, whose statements carry the values of `events`. A PostgreSQL error that
    /// those values caused (`isCausedByValues`: a data exception, a NOT NULL or CHECK rule)
    /// becomes `EventContentError`, so the batch processor isolates and dead-letters the
    /// event. Every other error (a standby, a revoked permission, a missing table, the server
    /// down) is thrown as it is: an outage, during which the partition waits.
    static func blamingValues<T>(_ events: [AcceptedEvent], _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError where error.isCausedByValues {
            let subject = events.count == 1 ? "event \(events[0].metadata.id)" : "one of \(events.count) events"
            throw EventContentError("PostgreSQL refused a value of \(subject): \(error)")
        }
    }

    /// `{schema}_mail`: the channel couriers LISTEN on for the queue in `schema`, and the one
    /// the inbox NOTIFYs. A channel name is an identifier (at most 63 bytes: `pg_notify`
    /// refuses a longer one, `LISTEN` cuts it): for a schema of 59 bytes or more, the schema is
    /// cut to 49 bytes and followed by `_` and 8 hex digits of FNV-1a over the whole schema
    /// name, so two long schemas that share a prefix still get different channels.
    public static func mailChannel(schema: String) -> String {
        let channel = schema + "_mail"
        guard channel.utf8.count > 63 else { return channel }
        var hash: UInt32 = 2_166_136_261
        for byte in schema.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let hex = String(hash, radix: 16)
        let prefix = String(decoding: schema.utf8.prefix(63 - 5 - 9), as: UTF8.self)
        return prefix + "_" + String(repeating: "0", count: 8 - hex.count) + hex + "_mail"
    }

    /// A notification the inbox inserted, and its first status.
    struct MailDecision: Sendable {
        let kind: NotificationKind
        let status: NotificationStatus
    }

    /// Applies one database effect; for mail, returns the notification inserted (nil when
    /// none was: a deleted recipient, or already queued for this event).
    @discardableResult
    static func apply(
        _ effect: Effect, event: EventMetadata, schema: String, mail: MailPolicy, mailEvents: Bool,
        on connection: PostgresConnection
    ) throws -> MailDecision? {
        switch effect {
        case .queueMail(let request):
            return try queue(request, event: event, schema: schema, policy: mail, mailEvents: mailEvents, on: connection)
        case .upsertRecipient(let profile, let at):
            try upsertRecipients([(profile, at)], schema: schema, on: connection)
        case .changeRecipientEmail(let user, let email, let at):
            try changeRecipientEmails([(user, email, at)], schema: schema, on: connection)
        case .deleteRecipient(let user, let at):
            try deleteRecipients([(user, at)], schema: schema, on: connection)
        case .invalidateRole, .revokeUser:
            break
        }
        return nil
    }

    /// Records the notification `policy` decides on for `request`, unique per (event, kind):
    /// loads the recipient as stored and, when the policy asks, how many mails of the kind
    /// went to the address recently; stores the decision. A deleted recipient gets nothing; a
    /// mail with no address anywhere is the event's content error. With `mailEvents`, a mail
    /// recorded `expired` or `suppressed` gets its `mail_outbox` row in the same statement.
    static func queue(
        _ request: MailRequest, event: EventMetadata, schema: String, policy: MailPolicy, mailEvents: Bool,
        on connection: PostgresConnection
    ) throws -> MailDecision? {
        let recipient = try storedRecipients([request.userID.rawValue], schema: schema, on: connection)[request.userID.rawValue]
        let decision = try policy.queueDecision(for: request, recipient: recipient, now: EventTime.now()) { address, window in
            // Mails of this kind to `address` within `window`; suppressed and expired ones,
            // and this event's own (a redelivery), do not count.
            let recent = try connection.execute(
                """
                SELECT count(*) FROM \(schema).notifications
                WHERE recipient = $1 AND kind = $2 AND status NOT IN ('suppressed', 'expired') AND event_id <> $3
                  AND created_at > now() - make_interval(secs => $4::double precision)
                """,
                [.text(address.rawValue), .text(request.kind.rawValue), .text(event.id.rawValue), .text(String(window.seconds))])
            return recent.string(0, "count").flatMap { Int($0) } ?? 0
        }
        if case .noAddress(let reason) = decision {
            // No retry can find an address: the event's own content fails.
            throw EventContentError(reason)
        }
        guard let notification = decision.notification else { return nil }
        let variables = try JSONSerialization.data(withJSONObject: request.variables, options: [.sortedKeys])
        let insert = """
            INSERT INTO \(schema).notifications (event_id, kind, user_id, recipient, address_from, event_email, locale, variables,
                requested_at, status, last_error)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::timestamptz, $10, $11)
            ON CONFLICT (event_id, kind) DO NOTHING
            """
        let published = mailEvents && notification.status != .queued
        let result = try connection.execute(
            published ? MailEventOutbox.recording(insert, schema: schema) : insert,
            [
                .text(event.id.rawValue), .text(request.kind.rawValue), .text(request.userID.rawValue),
                .text(notification.addressee.address.rawValue), .text(request.addressing.rawValue), optional(request.to?.rawValue),
                optional(notification.addressee.locale?.rawValue), .text(String(decoding: variables, as: UTF8.self)),
                .text(RFC3339.format(request.requestedAt)), .text(notification.status.rawValue), optional(notification.reason),
            ])
        let inserted = published ? result.count : result.affectedRows
        return inserted == 1 ? MailDecision(kind: request.kind, status: notification.status) : nil
    }

    /// Deletes inbox rows older than `age`, in batches of `batchSize` so the table is never
    /// locked for long. Returns the number of rows deleted.
    public func prune(olderThan age: Duration, batchSize: Int = 5000) async throws -> Int {
        let schema = self.schema
        var total = 0
        while true {
            let deleted = try await client.withConnection { connection in
                try connection.execute(
                    """
                    DELETE FROM \(schema).processed_events WHERE ctid = ANY(ARRAY(
                        SELECT ctid FROM \(schema).processed_events
                        WHERE processed_at < now() - make_interval(secs => $1::double precision)
                        LIMIT $2))
                    """,
                    [.text(String(age.seconds)), .int(Int64(batchSize))]
                ).affectedRows
            }
            total += deleted
            if deleted < batchSize { return total }
        }
    }
}

private func optional(_ value: String?) -> PostgresValue {
    value.map { .text($0) } ?? .null
}
