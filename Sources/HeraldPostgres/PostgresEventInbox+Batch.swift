import Foundation
import HeraldCore

extension PostgresEventInbox {
    /// Applies the database effects of an inbox transaction's new events with a few statements
    /// per run of events instead of a few per event: a run's recipient changes with one
    /// statement per kind of change, its recipients read with one `SELECT`, and the mail it
    /// queues inserted with one `INSERT`.
    ///
    /// The result is the one applying each event in order would give, because a run never
    /// holds two events that touch the same user: before an event that touches a user an
    /// earlier event of the run touched, the run is applied and a new one starts. Within a run,
    /// each event's recipient changes are applied before any recipient is read, as within the
    /// event. What depends on other users' mail is applied in order, one event at a time, as
    /// before: an event whose mail kind is rate-limited (the count of recent mail to an
    /// address can include another user's mail of the same run), an event with two recipient
    /// changes for one user, and every mail the policy records as `expired` or `suppressed`
    /// (`queue`, which stores each decision).
    struct BatchApplier {
        let schema: String
        let policy: MailPolicy
        /// Whether mail recorded `expired` or `suppressed` also goes to the mail events outbox
        /// (`queue` writes it; queued mail publishes nothing).
        let mailEvents: Bool
        let connection: PostgresConnection

        /// Notification decisions other than `queued` (reported to the mail observer).
        private(set) var decided: [MailDecision] = []
        /// Whether a notification was queued (the transaction then NOTIFYs the couriers).
        private(set) var queuedMail = false

        private var users: Set<UserID> = []
        private var upserts: [(profile: RecipientProfile, at: EventTime)] = []
        private var emailChanges: [(user: UserID, email: EmailAddress, at: EventTime)] = []
        private var deletions: [(user: UserID, at: EventTime)] = []
        private var mail: [(request: MailRequest, event: EventMetadata)] = []

        init(schema: String, policy: MailPolicy, mailEvents: Bool, connection: PostgresConnection) {
            self.schema = schema
            self.policy = policy
            self.mailEvents = mailEvents
            self.connection = connection
        }

        /// Adds `event`'s database effects to the run, applying the run first when `event`
        /// cannot join it, or applies `event` alone.
        mutating func add(_ event: AcceptedEvent) throws {
            let effects = event.effects.filter(\.isDatabaseEffect)
            if effects.isEmpty { return }
            var touched: [UserID] = []
            var changed: Set<UserID> = []
            var alone = false
            for effect in effects {
                switch effect {
                case .upsertRecipient(let profile, _):
                    touched.append(profile.userID)
                    alone = alone || !changed.insert(profile.userID).inserted
                case .changeRecipientEmail(let user, _, _), .deleteRecipient(let user, _):
                    touched.append(user)
                    alone = alone || !changed.insert(user).inserted
                case .queueMail(let request):
                    touched.append(request.userID)
                    alone = alone || policy.rateLimits[request.kind] != nil
                case .invalidateRole, .revokeUser:
                    break
                }
            }
            if alone || touched.contains(where: users.contains) { try flush() }
            if alone {
                for effect in effects {
                    if let decision = try PostgresEventInbox.apply(
                        effect, event: event.metadata, schema: schema, mail: policy, mailEvents: mailEvents, on: connection)
                    {
                        record(decision)
                    }
                }
                return
            }
            users.formUnion(touched)
            for effect in effects {
                switch effect {
                case .upsertRecipient(let profile, let at): upserts.append((profile, at))
                case .changeRecipientEmail(let user, let email, let at): emailChanges.append((user, email, at))
                case .deleteRecipient(let user, let at): deletions.append((user, at))
                case .queueMail(let request): mail.append((request, event.metadata))
                case .invalidateRole, .revokeUser: break
                }
            }
        }

        /// Applies the run: recipient changes, then the mail.
        mutating func flush() throws {
            defer {
                users.removeAll(keepingCapacity: true)
                upserts.removeAll(keepingCapacity: true)
                emailChanges.removeAll(keepingCapacity: true)
                deletions.removeAll(keepingCapacity: true)
                mail.removeAll(keepingCapacity: true)
            }
            try applyRecipientChanges()
            try queueMail()
        }

        private mutating func record(_ decision: MailDecision) {
            if decision.status == .queued { queuedMail = true } else { decided.append(decision) }
        }

        private func applyRecipientChanges() throws {
            if !upserts.isEmpty { try PostgresEventInbox.upsertRecipients(upserts, schema: schema, on: connection) }
            if !emailChanges.isEmpty { try PostgresEventInbox.changeRecipientEmails(emailChanges, schema: schema, on: connection) }
            if !deletions.isEmpty { try PostgresEventInbox.deleteRecipients(deletions, schema: schema, on: connection) }
        }

        /// Reads the run's recipients at once, decides each mail as `queue` does, and inserts
        /// the queued ones at once; a mail recorded otherwise goes through `queue`.
        private mutating func queueMail() throws {
            if mail.isEmpty { return }
            let recipients = try PostgresEventInbox.storedRecipients(
                Set(mail.map { $0.request.userID.rawValue }), schema: schema, on: connection)
            var queued: [(request: MailRequest, event: EventMetadata, addressee: MailAddressee, variables: String)] = []
            let now = EventTime.now()
            for (request, event) in mail {
                // No rate limit applies in a run (`add`): the count is never asked for.
                let decision = policy.queueDecision(for: request, recipient: recipients[request.userID.rawValue], now: now) { _, _ in 0 }
                switch decision {
                case .queue(let addressee):
                    let variables = try JSONSerialization.data(withJSONObject: request.variables, options: [.sortedKeys])
                    queued.append((request, event, addressee, String(decoding: variables, as: UTF8.self)))
                case .noAddress(let reason):
                    // No retry can find an address: the event's own content fails.
                    throw EventContentError(reason)
                case .recipientDeleted:
                    break
                case .expired, .suppressed:
                    if let decision = try PostgresEventInbox.queue(
                        request, event: event, schema: schema, policy: policy, mailEvents: mailEvents, on: connection)
                    {
                        record(decision)
                    }
                }
            }
            if queued.isEmpty { return }
            let inserted = try connection.execute(
                """
                INSERT INTO \(schema).notifications (event_id, kind, user_id, recipient, address_from, event_email, locale, variables,
                    requested_at, status)
                SELECT e, k, u, r, a, m, l, v::jsonb, t::timestamptz, 'queued'
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
                    AS n(e, k, u, r, a, m, l, v, t)
                ON CONFLICT (event_id, kind) DO NOTHING
                """,
                [
                    .textArray(queued.map { $0.event.id.rawValue }), .textArray(queued.map { $0.request.kind.rawValue }),
                    .textArray(queued.map { $0.request.userID.rawValue }),
                    .textArray(queued.map { $0.addressee.address.rawValue }),
                    .textArray(queued.map { $0.request.addressing.rawValue }), .textArray(queued.map { $0.request.to?.rawValue }),
                    .textArray(queued.map { $0.addressee.locale?.rawValue }), .textArray(queued.map(\.variables)),
                    .textArray(queued.map { RFC3339.format($0.request.requestedAt) }),
                ]
            ).affectedRows
            if inserted > 0 { queuedMail = true }
        }
    }
}

extension PostgresEventInbox {
    // The recipient statements, one row per user (a user appears at most once per call:
    // `ON CONFLICT DO UPDATE` cannot change one row twice in a statement).

    /// A newer event overwrites the fields it carries; an older one only fills fields still
    /// empty. A deleted recipient stays deleted.
    static func upsertRecipients(
        _ rows: [(profile: RecipientProfile, at: EventTime)], schema: String, on connection: PostgresConnection
    ) throws {
        try connection.execute(
            """
            INSERT INTO \(schema).recipients AS r (user_id, email, username, locale, updated_at)
            SELECT u, e, n, l, t::timestamptz
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS c(u, e, n, l, t)
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
                .textArray(rows.map { $0.profile.userID.rawValue }), .textArray(rows.map { $0.profile.email?.rawValue }),
                .textArray(rows.map { $0.profile.username?.rawValue }), .textArray(rows.map { $0.profile.locale?.rawValue }),
                .textArray(rows.map { RFC3339.format($0.at) }),
            ])
    }

    /// Only a newer change moves the address; an older one fills it only if unknown.
    static func changeRecipientEmails(
        _ rows: [(user: UserID, email: EmailAddress, at: EventTime)], schema: String, on connection: PostgresConnection
    ) throws {
        try connection.execute(
            """
            INSERT INTO \(schema).recipients AS r (user_id, email, updated_at)
            SELECT u, e, t::timestamptz FROM unnest($1::text[], $2::text[], $3::text[]) AS c(u, e, t)
            ON CONFLICT (user_id) DO UPDATE SET
                email = CASE WHEN r.updated_at < EXCLUDED.updated_at OR r.email IS NULL THEN EXCLUDED.email ELSE r.email END,
                updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at)
            """,
            [
                .textArray(rows.map { $0.user.rawValue }), .textArray(rows.map { $0.email.rawValue }),
                .textArray(rows.map { RFC3339.format($0.at) }),
            ])
    }

    /// The earliest deletion wins; a deleted recipient stays deleted.
    static func deleteRecipients(_ rows: [(user: UserID, at: EventTime)], schema: String, on connection: PostgresConnection) throws {
        try connection.execute(
            """
            INSERT INTO \(schema).recipients AS r (user_id, deleted_at, updated_at)
            SELECT u, t::timestamptz, t::timestamptz FROM unnest($1::text[], $2::text[]) AS c(u, t)
            ON CONFLICT (user_id) DO UPDATE SET
                deleted_at = LEAST(COALESCE(r.deleted_at, EXCLUDED.deleted_at), EXCLUDED.deleted_at),
                updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at)
            """,
            [.textArray(rows.map { $0.user.rawValue }), .textArray(rows.map { RFC3339.format($0.at) })])
    }

    /// The stored recipients among `users`, by user id. A stored value Herald cannot read
    /// (edited by hand) counts as unknown.
    static func storedRecipients(
        _ users: some Collection<String>, schema: String, on connection: PostgresConnection
    ) throws -> [String: StoredRecipient] {
        let stored = try connection.execute(
            """
            SELECT user_id, email, username, locale, deleted_at IS NOT NULL AS deleted FROM \(schema).recipients
            WHERE user_id = ANY($1::text[])
            """,
            [.textArray(Array(users))])
        var recipients: [String: StoredRecipient] = [:]
        for row in stored.rows.indices {
            guard let user = stored.string(row, "user_id") else { continue }
            recipients[user] = StoredRecipient(
                email: stored.string(row, "email").flatMap { try? EmailAddress($0) },
                username: stored.string(row, "username").flatMap { try? Username($0) },
                locale: stored.string(row, "locale").flatMap { try? LanguageTag($0) },
                deleted: stored.bool(row, "deleted") ?? false)
        }
        return recipients
    }
}
