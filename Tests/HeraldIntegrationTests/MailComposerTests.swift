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
        let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Templates").path
        let sender = SenderSettings(
            from: try MailAddress(parsing: "Herald <noreply@ex\u{E4}mple.com>"), productName: "Herald")
        #expect(sender.messageIDDomain == "herald.local")
        let composer = MailComposer(
            templates: try MailTemplates(directory: templates), sender: sender,
            links: LinkSettings(baseURL: "https://auth.example.com"))
        let notification = ClaimedNotification(
            id: "0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11", eventID: "e-1", kind: .welcome, userID: try UserID("u-1"),
            recipient: try EmailAddress("ada@example.com"), locale: nil, variables: [:], attempts: 0,
            requestedAt: EventTime(millisecondsSinceEpoch: 1_714_564_800_000), username: try Username("ada"),
            recipientDeleted: false, claim: NotificationClaim(id: "n", owner: "o", number: 1))
        let message = try composer.compose(notification, token: nil, now: EventTime(millisecondsSinceEpoch: 1_714_564_860_000))
        #expect(message.messageID == "<0b7c6f1e-8f5d-4a57-9a43-8d1f0c2f4e11@herald.local>")
        let bytes = try MailRendering.render(message)
        #expect(String(decoding: bytes, as: UTF8.self).contains("From: Herald <noreply@ex\u{E4}mple.com>\r\n"))
    }
}
