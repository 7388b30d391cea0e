import HeraldCore
import HeraldCourier
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
}
