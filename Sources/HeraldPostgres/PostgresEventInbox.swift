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
    /// Per kind: mails beyond the limit to one address are queued as `suppressed`.
    let rateLimits: [NotificationKind: MailRateLimit]
    /// Per kind: mail for an event older than this is recorded as `expired`, not queued.
    let maxAges: MailMaxAges
    /// Told of mail recorded as `expired` or `suppressed` at once.
    let mailObserver: (any MailQueueObserver)?

    /// The channel notified when a transaction queued mail.
    public let mailChannel: String

    public init(
        client: PostgresClient, schema: String, rateLimits: [NotificationKind: MailRateLimit] = [:],
        maxAges: MailMaxAges = .defaults, mailObserver: (any MailQueueObserver)? = nil, logger: Logger
    ) {
        self.client = client
        self.schema = HeraldSchema.quoted(schema)
        self.mailChannel = Self.mailChannel(schema: schema)
        self.rateLimits = rateLimits
        self.maxAges = maxAges
        self.mailObserver = mailObserver
        self.logger = logger
    }

    public func record(_ events: [AcceptedEvent], consumerGroup: String) async throws -> Set<EventID> {
        if events.isEmpty { return [] }
        let schema = self.schema
        let mail = MailPolicy(rateLimits: rateLimits, maxAges: maxAges)
        let channel = mailChannel
        let (inserted, decided) = try await Self.blamingValues(events) {
            try await client.transaction { connection -> (Set<String>, [MailDecision]) in
                let result = try connection.execute(
                    """
                    INSERT INTO \(schema).processed_events (consumer_group, event_id, event_type, topic, "partition", "offset")
                    SELECT $1, e.id, e.type, e.topic, e.part, e.off
                    FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[]) AS e(id, type, topic, part, off)
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
                var queuedMail = false
                var decided: [MailDecision] = []
                for event in events where new.contains(event.metadata.id.rawValue) {
                    // The same id twice in one batch: the first occurrence is the one recorded.
                    guard applied.insert(event.metadata.id.rawValue).inserted else { continue }
                    for effect in event.effects where effect.isDatabaseEffect {
                        if let decision = try Self.apply(effect, event: event.metadata, schema: schema, mail: mail, on: connection) {
                            if decision.status == .queued { queuedMail = true } else { decided.append(decision) }
                        }
                    }
                }
                // Delivered at commit to every courier LISTENing (other instances included).
                if queuedMail { try connection.execute("SELECT pg_notify($1, '')", [.text(channel)]) }
                return (new, decided)
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

    /// What the inbox does with mail requests: rate limits and maximum ages per kind.
    struct MailPolicy: Sendable {
        let rateLimits: [NotificationKind: MailRateLimit]
        let maxAges: MailMaxAges
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
        _ effect: Effect, event: EventMetadata, schema: String, mail: MailPolicy, on connection: PostgresConnection
    ) throws -> MailDecision? {
        switch effect {
        case .queueMail(let request):
            return try queue(request, event: event, schema: schema, policy: mail, on: connection)
        case .upsertRecipient(let profile, let at):
            // A newer event overwrites the fields it carries; an older one only fills fields
            // still empty. A deleted recipient stays deleted.
            try connection.execute(
                """
                INSERT INTO \(schema).recipients AS r (user_id, email, username, locale, updated_at)
                VALUES ($1, $2, $3, $4, $5::timestamptz)
                ON CONFLICT (user_id) DO UPDATE SET
                    email = CASE WHEN r.updated_at < EXCLUDED.updated_at THEN COALESCE(EXCLUDED.email, r.email)
                                 ELSE COALESCE(r.email, EXCLUDED.email) END,
                    username = CASE WHEN r.updated_at < EXCLUDED.updated_at THEN COALESCE(EXCLUDED.username, r.username)
                                    ELSE COALESCE(r.username, EXCLUDED.username) END,
                    locale = CASE WHEN r.updated_at < EXCLUDED.updated_at THEN COALESCE(EXCLUDED.locale, r.locale)
                                  ELSE COALESCE(r.locale, EXCLUDED.locale) END,
                    updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at)
                """,
                [
                    .text(profile.userID.rawValue), optional(profile.email?.rawValue), optional(profile.username?.rawValue),
                    optional(profile.locale?.rawValue), .text(RFC3339.format(at)),
                ])
        case .changeRecipientEmail(let user, let email, let at):
            // Only a newer change moves the address; an older one fills it only if unknown.
            try connection.execute(
                """
                INSERT INTO \(schema).recipients AS r (user_id, email, updated_at) VALUES ($1, $2, $3::timestamptz)
                ON CONFLICT (user_id) DO UPDATE SET
                    email = CASE WHEN r.updated_at < EXCLUDED.updated_at OR r.email IS NULL THEN EXCLUDED.email ELSE r.email END,
                    updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at)
                """,
                [.text(user.rawValue), .text(email.rawValue), .text(RFC3339.format(at))])
        case .deleteRecipient(let user, let at):
            try connection.execute(
                """
                INSERT INTO \(schema).recipients AS r (user_id, deleted_at, updated_at) VALUES ($1, $2::timestamptz, $2::timestamptz)
                ON CONFLICT (user_id) DO UPDATE SET
                    deleted_at = LEAST(COALESCE(r.deleted_at, EXCLUDED.deleted_at), EXCLUDED.deleted_at),
                    updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at)
                """,
                [.text(user.rawValue), .text(RFC3339.format(at))])
        case .invalidateRole, .revokeUser:
            break
        }
        return nil
    }

    /// Queues a notification, unique per (event, kind). Deleted recipients get nothing; a mail
    /// with no address in the event and none stored is a permanent failure. An event older
    /// than the kind's maximum age is recorded as `expired`; over `rateLimit` (mails of this
    /// kind to this address in the window, suppressed and expired ones not counted) the
    /// notification is recorded as `suppressed` instead of `queued`. Mail to the user's
    /// address (`MailAddressing.user`) records the address known now and the event's; the
    /// courier's claim takes the address stored then.
    static func queue(
        _ request: MailRequest, event: EventMetadata, schema: String, policy: MailPolicy, on connection: PostgresConnection
    ) throws -> MailDecision? {
        let stored = try connection.execute(
            "SELECT email, locale, deleted_at IS NOT NULL AS deleted FROM \(schema).recipients WHERE user_id = $1",
            [.text(request.userID.rawValue)])
        if stored.rows.count == 1, stored.string(0, "deleted") == "t" { return nil }
        let storedEmail = stored.rows.isEmpty ? nil : stored.string(0, "email")
        let address =
            switch request.addressing {
            case .event: request.to?.rawValue ?? storedEmail
            case .user: storedEmail ?? request.to?.rawValue
            }
        guard let to = address else {
            // The event names no address and none is known: no retry can find one.
            throw EventContentError(
                "no address for user \(request.userID): the event carries none and no recipient is stored (\(request.kind.rawValue) mail)")
        }
        let locale = request.locale?.rawValue ?? (stored.rows.isEmpty ? nil : stored.string(0, "locale"))
        let variables = try JSONSerialization.data(withJSONObject: request.variables, options: [.sortedKeys])
        var status = NotificationStatus.queued
        var reason: String?
        if let expired = policy.maxAges.expiry(request.kind, requestedAt: request.requestedAt, now: EventTime.now()) {
            status = .expired
            reason = expired
        } else if let rateLimit = policy.rateLimits[request.kind] {
            let recent = try connection.execute(
                """
                SELECT count(*) FROM \(schema).notifications
                WHERE recipient = $1 AND kind = $2 AND status NOT IN ('suppressed', 'expired') AND event_id <> $3
                  AND created_at > now() - make_interval(secs => $4::double precision)
                """,
                [.text(to), .text(request.kind.rawValue), .text(event.id.rawValue), .text(String(rateLimit.window.seconds))])
            if let count = recent.string(0, "count").flatMap({ Int($0) }), count >= rateLimit.count {
                status = .suppressed
                reason =
                    "rate limit: at most \(rateLimit.count) \(request.kind.rawValue) mails per \(Int(rateLimit.window.seconds))s to one address"
            }
        }
        let inserted = try connection.execute(
            """
            INSERT INTO \(schema).notifications (event_id, kind, user_id, recipient, address_from, event_email, locale, variables,
                requested_at, status, last_error)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::timestamptz, $10, $11)
            ON CONFLICT (event_id, kind) DO NOTHING
            """,
            [
                .text(event.id.rawValue), .text(request.kind.rawValue), .text(request.userID.rawValue), .text(to),
                .text(request.addressing.rawValue), optional(request.to?.rawValue), optional(locale),
                .text(String(decoding: variables, as: UTF8.self)), .text(RFC3339.format(request.requestedAt)),
                .text(status.rawValue), optional(reason),
            ]
        ).affectedRows
        return inserted == 1 ? MailDecision(kind: request.kind, status: status) : nil
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
