import Foundation
import HeraldCore
import HeraldMail
import Testing

@Suite("Mail variables and the words Herald writes")
struct MailVariablesTests {
    @Test("the recipient is greeted by username, else by the address's local part")
    func recipientName() throws {
        let email = try EmailAddress("ana.silva@example.com")
        let withName = MailVariables(
            recipient: email, username: try Username("ana"), productName: "Herald",
            supportEmail: try EmailAddress("support@example.com"), requestedAt: EventTime(millisecondsSinceEpoch: 0))
        #expect(withName.recipientName == "ana")
        #expect(withName.recipientEmail == "ana.silva@example.com")
        #expect(MailVariables.recipientName(username: nil, email: email) == "ana.silva")
        // "ൎ@" is one Character: the local part ends at the scalar, not at a Character.
        let prepended = try EmailAddress("ana\u{D4E}@example.com")
        #expect(MailVariables.recipientName(username: nil, email: prepended) == "ana\u{D4E}")
    }

    @Test("withLink sets the expiry from the mint time")
    func withLink() {
        let variables = MailTemplates.sample(.welcome).withLink(
            "https://x.example/c?token=t", lifetime: .seconds(900), mintedAt: EventTime(millisecondsSinceEpoch: 1_000))
        #expect(variables.linkExpiresAt == EventTime(millisecondsSinceEpoch: 901_000))
        #expect(variables.linkLifetime == .seconds(900))
    }

    @Test("JSON round trip with RFC 3339 times and the lifetime in seconds")
    func codable() throws {
        let variables = MailTemplates.sample(.emailChangeConfirm)
        let data = try JSONEncoder().encode(variables)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["requestedAt"] as? String == "2025-03-04T14:30:00.000Z")
        #expect(json["linkExpiresAt"] as? String == "2025-03-05T14:30:00.000Z")
        #expect(json["linkLifetimeSeconds"] as? Int == 86_400)
        #expect(try JSONDecoder().decode(MailVariables.self, from: data) == variables)

        let minimal = Data(
            #"{"recipientName":"a","recipientEmail":"a@example.com","productName":"P","supportEmail":"s@example.com","requestedAt":"2025-01-01T00:00:00Z"}"#
                .utf8)
        let decoded = try JSONDecoder().decode(MailVariables.self, from: minimal)
        #expect(decoded.link == nil && decoded.linkLifetime == nil && decoded.oldEmail == nil)
        let badTime = Data(
            #"{"recipientName":"a","recipientEmail":"a@example.com","productName":"P","supportEmail":"s@example.com","requestedAt":"yesterday"}"#
                .utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MailVariables.self, from: badTime) }
    }

    @Test(
        "a link's lifetime in words",
        arguments: [
            (15 * 60, "15 minutes", "15 minutos"), (60, "1 minute", "1 minuto"), (30, "1 minute", "1 minuto"),
            (3600, "1 hour", "1 hora"), (24 * 3600, "24 hours", "24 horas"),
            (90 * 60, "1 hour and 30 minutes", "1 hora e 30 minutos"), (48 * 3600, "2 days", "2 dias"),
            (7 * 86_400, "7 days", "7 dias"), (3601, "1 hour and 1 minute", "1 hora e 1 minuto"),
        ])
    func lifetimeWords(seconds: Int, english: String, portuguese: String) throws {
        for (locale, words) in [("en", english), ("pt", portuguese)] {
            let variables = MailTemplates.sample(.verifyEmail).withLink(
                "https://x.example/c?token=t", lifetime: .seconds(seconds), mintedAt: EventTime(millisecondsSinceEpoch: 0))
            let mail = try repositoryTemplates.render(.verifyEmail, locale: tag(locale), variables: variables)
            #expect(mail.text.contains("\(locale == "en" ? "expires in" : "expira em") \(words) ("), "\(locale)")
        }
    }

    @Test("times in words, in UTC, and as RFC 3339")
    func humanTimes() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        let text = "{{requestedAt}} | {{requestedAtHuman}}\n"
        try copy.write("en/welcome.txt.mustache", text)
        try copy.write("pt/welcome.txt.mustache", text)
        let templates = try MailTemplates(directory: copy.path)
        var variables = MailTemplates.sample(.welcome)
        variables.requestedAt = try #require(RFC3339.parse("2024-12-31T23:05:09.250-02:00"))
        #expect(
            try templates.render(.welcome, locale: nil, variables: variables).text
                == "2025-01-01T01:05:09.250Z | 1 January 2025 at 01:05 UTC\n")
        #expect(
            try templates.render(.welcome, locale: tag("pt-BR"), variables: variables).text
                == "2025-01-01T01:05:09.250Z | 1 de janeiro de 2025, às 01:05 UTC\n")
        // A time outside the years 0000–9999 (an event_timestamp from year -2) renders as its
        // ISO 8601 form in both; it once trapped reading "00-2" as a four-digit year.
        variables.requestedAt = EventTime(millisecondsSinceEpoch: -62_200_000_000_000)
        #expect(
            try templates.render(.welcome, locale: nil, variables: variables).text
                == "-0002-12-17T14:13:20.000Z | -0002-12-17T14:13:20.000Z\n")
    }

    @Test("sample data: a link for the link kinds, old and new addresses for the email-change kinds")
    func samples() {
        for kind in MailKind.allCases {
            let sample = MailTemplates.sample(kind)
            #expect((sample.link != nil) == kind.hasLink)
            #expect((sample.linkLifetime != nil) == kind.hasLink)
            #expect((sample.oldEmail != nil) == kind.describesEmailChange)
        }
        #expect(MailTemplates.sample(.emailChangeConfirm).recipientEmail == MailTemplates.sample(.emailChangeConfirm).newEmail)
        #expect(MailTemplates.sample(.emailChanged).recipientEmail == MailTemplates.sample(.emailChanged).oldEmail)
        #expect(
            MailKind.allCases.map(\.rawValue) == [
                "welcome", "verify_email", "password_reset", "password_changed", "email_change_confirm",
                "email_change_requested", "email_changed",
            ])
    }
}
