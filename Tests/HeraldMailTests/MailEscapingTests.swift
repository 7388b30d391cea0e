import Foundation
import HeraldCore
import HeraldMail
import Testing

@Suite("Mail templates: escaping and header safety")
struct MailEscapingTests {
    static let hostileNames = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "a & b 'quoted'"]

    static func htmlEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    @Test("hostile names are escaped in HTML and verbatim, without markup, in text", arguments: ["en", "pt"], hostileNames)
    func hostileRecipientName(locale: String, name: String) throws {
        for kind in MailKind.allCases {
            var variables = MailTemplates.sample(kind)
            variables.recipientName = name
            let mail = try repositoryTemplates.render(kind, locale: tag(locale), variables: variables)
            #expect(mail.html.contains(Self.htmlEscaped(name)), "\(kind.rawValue).html")
            #expect(!mail.html.contains(name), "\(kind.rawValue).html")
            #expect(!mail.html.contains("<script") && !mail.html.contains("<img"))
            #expect(mail.text.contains(name), "\(kind.rawValue).txt")
            // Without the name, the text has no markup and no entity at all.
            let rest = mail.text.replacingOccurrences(of: name, with: "")
            #expect(!rest.contains("<") && !rest.contains(">") && !rest.contains("&"), "\(kind.rawValue).txt")
        }
    }

    @Test("every variable is escaped in HTML, including product name, addresses and support address")
    func everyVariableEscaped() throws {
        let evil = "<b>x</b>"
        var variables = MailTemplates.sample(.emailChangeConfirm, productName: evil, supportEmail: evil)
        variables.oldEmail = evil
        variables.newEmail = evil
        variables.recipientEmail = evil
        for locale in ["en", "pt"] {
            let mail = try repositoryTemplates.render(.emailChangeConfirm, locale: tag(locale), variables: variables)
            #expect(!mail.html.contains(evil))
            #expect(mail.html.contains("&lt;b&gt;x&lt;/b&gt;"))
            #expect(mail.html.contains("<title>Confirm your new email address for &lt;b&gt;x&lt;/b&gt;</title>") || locale == "pt")
            #expect(mail.text.contains(evil))
            #expect(mail.subject.contains(evil))
        }
    }

    @Test("a link with & is &amp; in HTML attributes and text, and verbatim in the plain text")
    func ampersandLink() throws {
        let link = "https://auth.example.com/auth/reset-password/confirm?token=abc_DEF-123&lang=pt"
        let variables = MailTemplates.sample(.passwordReset).withLink(
            link, lifetime: .seconds(900), mintedAt: EventTime(millisecondsSinceEpoch: 0))
        let mail = try repositoryTemplates.render(.passwordReset, locale: nil, variables: variables)
        #expect(mail.html.contains("href=\"https://auth.example.com/auth/reset-password/confirm?token=abc_DEF-123&amp;lang=pt\""))
        #expect(!mail.html.contains("token=abc_DEF-123&lang"))
        #expect(mail.text.contains("\n\(link)\n"))
        #expect(!mail.text.contains("&amp;"))
    }

    @Test("subjects are one line whatever the variables hold")
    func subjectOneLine() throws {
        var variables = MailTemplates.sample(.welcome, productName: "Acme\r\nBcc: victim@example.com")
        variables.recipientName = "x\ny"
        let mail = try repositoryTemplates.render(.welcome, locale: nil, variables: variables)
        #expect(mail.subject == "Welcome to Acme Bcc: victim@example.com")
        for product in ["A\rB", "A\nB", "A\u{85}B", "A\u{2028}B", "A\u{2029}B", "A\tB", "A\u{0}B", "A \r\n\r\n B"] {
            let mail = try repositoryTemplates.render(
                .passwordChanged, locale: tag("pt"), variables: MailTemplates.sample(.passwordChanged, productName: product))
            #expect(mail.subject == "Sua senha do A B foi alterada", "\(product.debugDescription)")
            #expect(!mail.subject.unicodeScalars.contains { $0.properties.generalCategory == .control })
        }
    }

    @Test("in subjects and text bodies {{x}} is verbatim too (no HTML escaping outside HTML)")
    func plainDoubleMustache() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("en/welcome.subject.mustache", "Hi {{recipientName}}\n")
        try copy.write("en/welcome.txt.mustache", "Hi {{recipientName}} of {{productName}}\n")
        let templates = try MailTemplates(directory: copy.path)
        var variables = MailTemplates.sample(.welcome, productName: "A & B")
        variables.recipientName = "<o'neil>"
        let mail = try templates.render(.welcome, locale: nil, variables: variables)
        #expect(mail.subject == "Hi <o'neil>")
        #expect(mail.text == "Hi <o'neil> of A & B\n")
    }
}
