import ArgumentParser
import Foundation
import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldPostgres
import HeraldRuntime
import HeraldSMTP
import HeraldSettings
import Logging

extension NotificationStatus: ExpressibleByArgument {}
extension NotificationKind: ExpressibleByArgument {}
extension MailPreviewFormat: ExpressibleByArgument {}

struct MailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mail",
        abstract: "Look at the mail queue and requeue failed mail (HERALD_DATABASE_URL); send a test mail.",
        discussion: """
            HERALD_DATABASE_URL unset in a `make run` tree: the database `make run` started (var/postgres/url). \
            `herald mail test` needs no database: it sends one mail through the SMTP settings and nothing else.
            """,
        subcommands: [List.self, Show.self, Retry.self, Test.self])

    /// The queue in HERALD_DATABASE_URL; the schema must be current.
    static func queue() async throws -> (PostgresMailQueue, PostgresClient) {
        let settings = try Environment.settings(makeRunDatabaseUnless: ["HERALD_DATABASE_URL"])
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level == "info" ? "warning" : settings.log.level)
        let client = try await Database.open(settings.database, poolSize: 1, logger: Logger(label: "herald.mail"), migrateIfBehind: false)
        return (PostgresMailQueue(client: client, schema: settings.database.schema), client)
    }

    /// One notification as `JSONOutput` prints it: every column, `variables` as an object.
    static func json(_ r: NotificationRecord) throws -> String {
        try JSONOutput.line([
            "id": r.id, "event_id": r.eventID, "kind": r.kind, "user_id": r.userID, "recipient": r.recipient,
            "address_from": r.addressFrom, "event_email": JSONOutput.nullable(r.eventEmail), "locale": JSONOutput.nullable(r.locale),
            "status": r.status, "attempts": r.attempts, "next_attempt_at": JSONOutput.nullable(r.nextAttemptAt),
            "last_error": JSONOutput.nullable(r.lastError), "message_id": JSONOutput.nullable(r.messageID),
            "requested_at": JSONOutput.nullable(r.requestedAt), "created_at": JSONOutput.nullable(r.createdAt),
            "claimed_at": JSONOutput.nullable(r.claimedAt), "claimed_by": JSONOutput.nullable(r.claimedBy),
            "claim_number": r.claimNumber, "sent_at": JSONOutput.nullable(r.sentAt), "variables": JSONOutput.parsed(r.variables),
        ])
    }

    /// Why expired mail is not requeued.
    static func expiredRefusal(_ kind: NotificationKind?) -> String {
        if let kind, kind.link != nil {
            return
                "its link would be past its age: the request is older than the \(kind.rawValue) maximum age (HERALD_MAIL_MAX_AGE); the user must ask again"
        }
        return
            "the event is older than the kind's maximum age (HERALD_MAIL_MAX_AGE): the notice would be stale news, and the courier would expire it again"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List notifications, newest first.")

        @Option(help: "Only this status: \(NotificationStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
        var status: NotificationStatus?

        @Option(help: "Only this kind: \(NotificationKind.allCases.map(\.rawValue).joined(separator: ", ")).")
        var kind: NotificationKind?

        @Option(help: "Only mail to this address.")
        var recipient: String?

        @Option(help: "At most this many.")
        var limit = 50

        @Flag(help: "One JSON object per notification instead of a table.")
        var json = false

        func run() async throws {
            let (queue, client) = try await MailCommand.queue()
            defer { client.close() }
            let records = try await queue.list(status: status, kind: kind, recipient: recipient, limit: max(1, limit))
            if json {
                for record in records { print(try MailCommand.json(record)) }
                return
            }
            let counts = try await queue.countByStatus()
            print(
                "queue: "
                    + NotificationStatus.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", "))
            if records.isEmpty { return }
            let rows =
                [["ID", "KIND", "RECIPIENT", "STATUS", "ATTEMPTS", "CREATED", "LAST ERROR"]]
                + records.map { r in
                    [
                        r.id, r.kind, r.recipient, r.status, String(r.attempts), r.createdAt ?? "",
                        String((r.lastError ?? "").prefix(60)),
                    ]
                }
            print(Table.render(rows))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one notification.")

        @Argument(help: "The notification's id (a UUID, as `herald mail list` prints it).")
        var id: String

        func run() async throws {
            let (queue, client) = try await MailCommand.queue()
            defer { client.close() }
            guard let record = try await queue.find(id: id) else {
                throw HeraldCLIError("no notification \(id)")
            }
            print(try MailCommand.json(record))
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Requeue failed, abandoned or suppressed mail for an immediate send, with its attempts reset.",
            discussion: """
                Give ids, or --status to requeue every notification with that status. Expired mail is never \
                requeued: its event is older than the kind's maximum age (HERALD_MAIL_MAX_AGE), so a link in it \
                would be past its age and a notice would be stale; the user asks again.
                """)

        @Argument(help: "Notification ids.")
        var ids: [String] = []

        @Option(help: "Requeue every notification with this status (failed, abandoned or suppressed).")
        var status: NotificationStatus?

        func validate() throws {
            if ids.isEmpty && status == nil { throw ValidationError("give notification ids or --status") }
            if status == .expired {
                throw ValidationError("expired mail cannot be requeued: \(MailCommand.expiredRefusal(nil))")
            }
            if let status, !status.isRetryable {
                throw ValidationError("only failed, abandoned or suppressed mail can be requeued")
            }
        }

        func run() async throws {
            let (queue, client) = try await MailCommand.queue()
            defer { client.close() }
            let requeued = try await queue.retry(ids: ids, status: status)
            print("requeued \(requeued.count)")
            for id in requeued { print(id) }
            let missed = Set(ids.map { $0.lowercased() }).subtracting(requeued).sorted()
            if missed.isEmpty { return }
            var reasons: [String] = []
            for id in missed {
                guard let record = try await queue.find(id: id) else {
                    reasons.append("\(id): no such notification")
                    continue
                }
                if record.status == NotificationStatus.expired.rawValue {
                    reasons.append(
                        "\(id): expired \(record.kind) mail cannot be requeued: \(MailCommand.expiredRefusal(NotificationKind(rawValue: record.kind)))"
                    )
                } else {
                    reasons.append("\(id): \(record.status), not failed, abandoned or suppressed")
                }
            }
            throw HeraldCLIError("not requeued:\n" + reasons.joined(separator: "\n"))
        }
    }
}

struct TemplatesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "Check, preview and serve the mail templates (HERALD_TEMPLATES_DIR, default Templates).",
        subcommands: [Check.self, Preview.self, Serve.self])

    struct Options: ParsableArguments {
        @Option(help: "The templates directory (default: HERALD_TEMPLATES_DIR, else Templates).")
        var templates: String?

        func load() throws -> (MailTemplates, MailSettings) {
            let mail = try Environment.settings().mail
            do {
                return (try MailTemplates(directory: templates ?? mail.templatesDirectory, defaultLocale: mail.defaultLocale), mail)
            } catch {
                throw HeraldCLIError("\(error)")
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse every template and render it with sample data, as `herald run` does at start-up.")

        @OptionGroup var options: Options

        func run() async throws {
            let (templates, _) = try options.load()
            print(
                "templates in \(templates.directory): \(NotificationKind.allCases.count) kinds in "
                    + templates.locales.map(\.rawValue).joined(separator: ", ") + " (default \(templates.defaultLocale))")
        }
    }

    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render one kind of mail with example data.",
            discussion: """
                KIND is one of \(NotificationKind.allCases.map(\.rawValue).joined(separator: ", ")). \
                --format eml prints the whole message as Herald would send it (headers, text and HTML parts).
                """)

        @Argument(help: "The kind of mail.")
        var kind: NotificationKind

        @Option(help: "The locale (falls back as at send time: pt-BR → pt → the default).")
        var locale: String?

        @Option(help: "subject, text, html or eml.")
        var format: PreviewFormat = .text

        @OptionGroup var options: Options

        enum PreviewFormat: String, ExpressibleByArgument, CaseIterable {
            case subject, text, html, eml
        }

        func run() async throws {
            let (templates, mail) = try options.load()
            let tag: LanguageTag?
            do {
                tag = try locale.map { try LanguageTag($0) }
            } catch {
                throw HeraldCLIError("--locale: \(error)")
            }
            let supportEmail = mail.supportEmail ?? "support@example.com"
            switch format {
            case .subject, .text, .html:
                let part = MailPreviewFormat(rawValue: format.rawValue)!
                do {
                    print(
                        try templates.preview(kind, locale: tag, format: part, productName: mail.productName, supportEmail: supportEmail),
                        terminator: "")
                } catch {
                    throw HeraldCLIError("\(error)")
                }
            case .eml:
                do {
                    // The sample's link, as the other formats show it, whatever HERALD_LINK_BASE_URL says.
                    let composer = MailComposer(
                        templates: templates,
                        sender: try mail.sender
                            ?? SenderSettings(
                                from: MailAddress(parsing: "Herald <no-reply@example.com>", field: "HERALD_MAIL_FROM"),
                                productName: mail.productName, supportEmail: supportEmail),
                        links: LinkSettings(baseURL: "https://auth.example.com"))
                    let (message, _, _) = try composer.composeSample(
                        kind, locale: tag, messageID: composer.messageID(local: "preview"),
                        date: MailTemplates.sample(kind).requestedAt)
                    print(String(decoding: try MailRendering.render(message), as: UTF8.self), terminator: "")
                } catch {
                    throw HeraldCLIError("\(error)")
                }
            }
        }
    }
}

/// Left-aligned columns separated by two spaces.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
