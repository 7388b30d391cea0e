import Foundation
import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldSMTP
import Testing

/// The sender's settings, without a server or a queue.
@Suite("Mail composer")
struct MailComposerTests {
    // With Characters, "noreply\u{D4E}@example.com" has no "@" Character (U+0D4E joins the
    // "@" into its own Character), and every Message-ID fell back to herald.local.
    @Test("the Message-ID's domain is the From address's, also after a prepended letter")
    func messageIDDomain() throws {
        for (address, domain) in [("noreply@example.com", "example.com"), ("noreply\u{D4E}@mail.example.org", "mail.example.org")] {
            let sender = SenderSettings(from: MailAddress(try EmailAddress(address)), productName: "Herald")
            #expect(sender.messageIDDomain == domain)
        }
    }

    // Found by the mail fuzz target: HERALD_MAIL_FROM=Herald <noreply@exämple.com> passed the
    // start-up checks, then every mail failed for good ("message-id is not printable ASCII").
    @Test("a From address with an internationalised domain gives mail that renders, with an ASCII Message-ID")
    func internationalisedFromDomain() throws {
        let sender = SenderSettings(
            from: try MailAddress(parsing: "Herald <noreply@ex\u{E4}mple.com>"), productName: "Herald")
        #expect(sender.messageIDDomain == "herald.local")
        let message = try Self.welcome(from: sender)
        #expect(message.messageID == "<0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11@herald.local>")
        let bytes = try MailRendering.render(message)
        #expect(String(decoding: bytes, as: UTF8.self).contains("From: Herald <noreply@ex\u{E4}mple.com>\r\n"))
    }

    // Found by the mail fuzz target: a From domain of 214 or more bytes (a valid address has
    // up to 252) made every Message-ID longer than the 250 bytes rendering allows, so every
    // mail failed for good.
    @Test("a From domain too long for a Message-ID gives mail that renders")
    func longFromDomain() throws {
        let domain = Array(repeating: String(repeating: "d", count: 60), count: 4).joined(separator: ".") + ".example"
        let sender = SenderSettings(from: MailAddress(try EmailAddress("o@" + domain)), productName: "Herald")
        let message = try Self.welcome(from: sender)
        #expect(message.messageID == "<0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11@herald.local>")
        _ = try MailRendering.render(message)
        let short = try Self.welcome(from: SenderSettings(from: MailAddress(try EmailAddress("o@example.com")), productName: "H"))
        #expect(short.messageID == "<0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11@example.com>")
    }

    /// A welcome mail composed with the repository's templates.
    static func welcome(from sender: SenderSettings) throws -> MailMessage {
        let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Templates").path
        let composer = MailComposer(
            templates: try MailTemplates(directory: templates), sender: sender,
            links: LinkSettings(baseURL: "https://auth.example.com"))
        let recipient = try EmailAddress("ada@example.com")
        let notification = ClaimedNotification(
            id: "0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11", eventID: "e-1", kind: .welcome, userID: try UserID("u-1"),
            addressing: .event, recipient: recipient, eventEmail: recipient, locale: nil, variables: [:], attempts: 0,
            requestedAt: EventTime(millisecondsSinceEpoch: 1_714_564_800_000),
            storedRecipient: StoredRecipient(email: recipient, username: try Username("ada")),
            claim: NotificationClaim(id: "n", owner: "o", number: 1))
        return try composer.compose(
            notification, to: recipient, token: nil, now: EventTime(millisecondsSinceEpoch: 1_714_564_860_000))
    }
}
