import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldSMTP
import HeraldSettings

/// Usernames, addresses, locales, sender settings and template variables → the message the
/// courier composes (`MailComposer`, with the repository's templates) and renders
/// (`MailRendering.render`): the bytes that go to the SMTP server and into `.eml` files.
///
/// Input: fields separated by 0xFF: a byte choosing the kind, the username, the recipient's
/// address, the locale, `HERALD_MAIL_FROM`, `HERALD_MAIL_REPLY_TO`, `HERALD_PRODUCT_NAME`,
/// the `old_email` and `new_email` variables, (unused: the notification id, a UUID the
/// database makes), the event's time in milliseconds, `HERALD_LINK_BASE_URL`, the kind's `HERALD_LINK_PATH_*`,
/// `HERALD_SUPPORT_EMAIL`. A missing or empty field takes a plain default. Values go through
/// the checks they meet on their way in (the event's value objects, the configuration, the
/// sender's `MailAddress(parsing:)`); an input they refuse is done.
///
/// Invariants: values that passed those checks compose and render (a mail Herald queued can
/// be sent; a value that cannot be must be refused at the door), to a message whose every
/// line ends in CRLF (no bare CR or LF anywhere), whose header fields are exactly Herald's, each once, with
/// no line over 998 bytes, whose To field holds exactly one mailbox, the recipient's address,
/// and From exactly one, the sender's; whose encoded words (subject, display names) decode
/// to text without control characters; and whose body has the two parts and the closing
/// boundary.
struct MailFuzzer: Sendable {
    static let token = LinkToken(secret: "q0JjrRZ7x8y3Lw1sZ3ylGm0n3v8yJb4TQk2oZc1hX9E")
    static let defaultFrom = "Herald <noreply@example.com>"

    let templates: MailTemplates

    init(templatesDirectory: String) throws {
        templates = try MailTemplates(directory: templatesDirectory, defaultLocale: "en")
    }

    func run(_ input: [UInt8]) throws(FuzzFailure) -> String {
        let fields = FuzzFields(input)
        func text(_ index: Int) -> String? { fields.string(index).flatMap { $0.isEmpty ? nil : $0 } }
        let kind = NotificationKind.allCases[Int(fields.byte(0)) % NotificationKind.allCases.count]

        // The event's values, as the catalogue validates them.
        var username: Username?
        if let name = text(1) {
            guard let valid = try? Username(name) else { return "refused: username" }
            username = valid
        }
        guard let recipient = try? EmailAddress(text(2) ?? "ada@example.com") else { return "refused: recipient" }
        var locale: LanguageTag?
        if let tag = text(3) {
            guard let valid = try? LanguageTag(tag) else { return "refused: locale" }
            locale = valid
        }
        var variables: [String: String] = [:]
        if kind.describesEmailChange {
            guard let old = try? EmailAddress(text(7) ?? recipient.rawValue), let new = try? EmailAddress(text(8) ?? "new@example.org")
            else { return "refused: email change addresses" }
            variables = ["old_email": old.rawValue, "new_email": new.rawValue]
        }

        // The sender's settings, as HeraldSettings checks them.
        var environment = [
            "HERALD_SMTP_URL": "file://var/mail", "HERALD_MAIL_FROM": text(4) ?? Self.defaultFrom,
            "HERALD_LINK_BASE_URL": text(11) ?? "https://auth.example.com",
        ]
        environment["HERALD_MAIL_REPLY_TO"] = text(5)
        environment["HERALD_PRODUCT_NAME"] = text(6)
        environment["HERALD_SUPPORT_EMAIL"] = text(13)
        if let path = text(12), let purpose = kind.link?.purpose {
            let names: [LinkPurpose: String] = [
                .resetPassword: "HERALD_LINK_PATH_RESET_PASSWORD", .confirmEmailChange: "HERALD_LINK_PATH_EMAIL_CHANGE",
                .verifyEmail: "HERALD_LINK_PATH_VERIFY_EMAIL",
            ]
            environment[names[purpose]!] = path
        }
        guard let mail = try? HeraldSettings.load(environment: environment, readFile: { $0 }).mail,
            let required = try? mail.requireSending()
        else { return "refused: configuration" }
        let from = required.sender.from
        let replyTo = required.sender.replyTo
        let composer = MailComposer(templates: templates, sender: required.sender, links: required.links)

        // The queue's row: a UUID id in practice, a time within PostgreSQL's timestamp range.
        let now = EnvelopeFuzzer.now
        let requested = text(10).flatMap { Int64($0) }.map { min(max($0, -210_866_803_200_000), 9_224_318_016_000_000) }
        let notification = ClaimedNotification(
            id: "0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11", eventID: "e-1", kind: kind, userID: try! UserID("u-1"),
            addressing: .event, recipient: recipient, eventEmail: recipient, locale: locale, variables: variables, attempts: 0,
            requestedAt: requested.map { EventTime(millisecondsSinceEpoch: $0) } ?? EventTime(millisecondsSinceEpoch: 1_893_455_940_000),
            storedRecipient: StoredRecipient(email: recipient, username: username, locale: locale),
            claim: NotificationClaim(id: "n", owner: "o", number: 1))

        let message: MailMessage
        let bytes: [UInt8]
        do {
            message = try composer.compose(notification, to: recipient, token: kind.link == nil ? nil : Self.token, now: now)
            bytes = try MailRendering.render(message)
        } catch {
            // Every value passed the checks at Herald's door: the mail must be sendable.
            throw FuzzFailure("a mail of valid values cannot be sent: \(error)")
        }
        try MessageCheck.check(
            bytes, recipient: recipient.rawValue, from: from.address.rawValue, replyTo: replyTo?.address.rawValue)
        return "rendered"
    }
}
