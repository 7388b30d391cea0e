import HeraldCore
import HeraldCourier
import HeraldMail
import Testing

/// The sample mail `herald mail test` sends and `herald templates preview --format eml`
/// prints: the composer's own message, with sample data and a link that grants nothing.
@Suite("Sample mail")
struct SampleMailTests {
    @Test("to the given address, with Herald's headers; a link kind's link at the configured base carries the sample token")
    func toRecipient() throws {
        let composer = try testComposer()
        let sample = try composer.composeSample(
            .passwordReset, to: email("ops@herald.test"), locale: try LanguageTag("pt-BR"),
            messageID: composer.messageID(local: "herald-mail-test-1"), date: EventTime(millisecondsSinceEpoch: 1_751_371_200_000))
        let message = sample.message
        #expect(message.to == MailAddress(email("ops@herald.test")))
        #expect(message.from.description == "Herald Tests <no-reply@herald.test>")
        #expect(message.messageID == "<herald-mail-test-1@herald.test>")
        #expect(message.date == EventTime(millisecondsSinceEpoch: 1_751_371_200_000))
        #expect(sample.locale.rawValue == "pt")
        #expect(message.headers.map(\.name) == ["Auto-Submitted", "Content-Language", "X-Herald-Kind"])
        #expect(message.headers.last?.value == "password_reset")
        let link = "https://auth.herald.test/auth/reset-password/confirm?token=\(MailTemplates.sampleLinkToken)"
        #expect(sample.link == link)
        #expect(message.textBody.contains(link))
        #expect(message.textBody.contains("Acme Cloud") && message.textBody.contains("help@herald.test"))
        // The token is not one Herald could have minted (43 base64url characters).
        #expect(MailTemplates.sampleLinkToken.count != 43 && MailTemplates.sampleLinkToken.hasPrefix("SAMPLE"))
    }

    @Test("without an address: the sample's own, greeted by name; a kind without a link has none")
    func sampleRecipient() throws {
        let composer = try testComposer()
        let sample = try composer.composeSample(
            .welcome, locale: nil, messageID: "<preview@herald.test>", date: EventTime(millisecondsSinceEpoch: 0))
        #expect(sample.message.to.description == "alex <alex@example.com>")
        #expect(sample.link == nil)
        #expect(sample.locale.rawValue == "en")
    }
}
