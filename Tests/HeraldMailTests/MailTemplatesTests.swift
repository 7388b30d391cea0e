import Foundation
import HeraldCore
import HeraldMail
import Testing

@Suite("Mail templates: loading, locales, rendering")
struct MailTemplatesTests {
    @Test("the repository's Templates/ load with en and pt")
    func loads() {
        #expect(repositoryTemplates.locales.map(\.rawValue) == ["en", "pt"])
        #expect(repositoryTemplates.defaultLocale.rawValue == "en")
    }

    @Test("every kind renders in every locale with sample data", arguments: ["en", "pt"], MailKind.allCases)
    func everyKindEveryLocale(locale: String, kind: MailKind) throws {
        let variables = MailTemplates.sample(kind, productName: "Acme ID", supportEmail: "help@acme.example")
        let mail = try repositoryTemplates.render(kind, locale: tag(locale), variables: variables)
        #expect(mail.locale.rawValue == locale)
        #expect(!mail.subject.isEmpty)
        #expect(!mail.subject.contains("\n") && !mail.subject.contains("\r"))
        #expect(mail.subject.contains("Acme ID"))
        #expect(mail.text.contains("Acme ID") && mail.text.contains("help@acme.example"))
        #expect(mail.html.hasPrefix("<!DOCTYPE html>"))
        #expect(mail.html.contains("<html lang=\"\(locale)\""))
        #expect(mail.html.contains("<title>\(mail.subject)</title>"))
        #expect(mail.html.contains("mailto:help@acme.example"))
        #expect(!mail.text.contains("<") && !mail.text.contains("&lt;") && !mail.text.contains("&amp;"))
        #expect(!mail.text.contains("{{") && !mail.html.contains("{{"))
        #expect(mail.text.contains("alex"))
        if kind.describesEmailChange {
            for text in [mail.text, mail.html] {
                #expect(text.contains("alex@example.com") && text.contains("alex.rivera@example.org"))
            }
        }
    }

    @Test("link mails contain the link and its expiry in words, in the mail's language")
    func linkAndExpiry() throws {
        let expectations: [(MailKind, String, String)] = [
            (.passwordReset, "en", "15 minutes"), (.passwordReset, "pt", "15 minutos"),
            (.verifyEmail, "en", "24 hours"), (.verifyEmail, "pt", "24 horas"),
            (.emailChangeConfirm, "en", "24 hours"), (.emailChangeConfirm, "pt", "24 horas"),
        ]
        for (kind, locale, words) in expectations {
            let variables = MailTemplates.sample(kind)
            let link = try #require(variables.link)
            let mail = try repositoryTemplates.render(kind, locale: tag(locale), variables: variables)
            #expect(mail.text.contains(link), "\(locale)/\(kind.rawValue).txt")
            #expect(mail.html.contains("href=\"\(link)\""), "\(locale)/\(kind.rawValue).html")
            #expect(mail.text.contains(words), "\(locale)/\(kind.rawValue).txt")
            #expect(mail.html.contains(words), "\(locale)/\(kind.rawValue).html")
        }
        let reset = try repositoryTemplates.render(.passwordReset, locale: nil, variables: MailTemplates.sample(.passwordReset))
        #expect(reset.text.contains("4 March 2025 at 14:45 UTC"))
        let resetPT = try repositoryTemplates.render(
            .passwordReset, locale: tag("pt"), variables: MailTemplates.sample(.passwordReset))
        #expect(resetPT.text.contains("4 de março de 2025, às 14:45 UTC"))
    }

    @Test(
        "locale fallback: exact, then shorter tags, then the default",
        arguments: [
            ("pt", "pt"), ("pt-BR", "pt"), ("PT-br", "pt"), ("pt-Latn-BR", "pt"), ("en-GB", "en"), ("fr", "en"),
            ("fr-CA", "en"), ("zh-Hant-TW", "en"),
        ])
    func fallback(requested: String, resolved: String) throws {
        #expect(repositoryTemplates.resolvedLocale(for: tag(requested)).rawValue == resolved)
        let mail = try repositoryTemplates.render(.welcome, locale: tag(requested), variables: MailTemplates.sample(.welcome))
        #expect(mail.locale.rawValue == resolved)
    }

    @Test("no locale means the default locale")
    func noLocale() throws {
        #expect(repositoryTemplates.resolvedLocale(for: nil).rawValue == "en")
        let mail = try repositoryTemplates.render(.welcome, locale: nil, variables: MailTemplates.sample(.welcome))
        #expect(mail.subject == "Welcome to Herald")
    }

    @Test("pt-BR falls back to pt until a pt-BR folder exists, then uses it")
    func regionalFolder() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try FileManager.default.copyItem(atPath: copy.file("pt"), toPath: copy.file("pt-BR"))
        try copy.write("pt-BR/welcome.subject.mustache", "Bem-vindo ao {{productName}}, do Brasil\n")
        let templates = try MailTemplates(directory: copy.path)
        let brazil = try templates.render(.welcome, locale: tag("pt-BR"), variables: MailTemplates.sample(.welcome))
        #expect(brazil.locale.rawValue == "pt-BR")
        #expect(brazil.subject == "Bem-vindo ao Herald, do Brasil")
        let portugal = try templates.render(.welcome, locale: tag("pt-PT"), variables: MailTemplates.sample(.welcome))
        #expect(portugal.locale.rawValue == "pt")
    }

    @Test("another default locale")
    func otherDefault() throws {
        let templates = try MailTemplates(directory: templatesDirectory, defaultLocale: "pt")
        #expect(templates.resolvedLocale(for: tag("fr")).rawValue == "pt")
        #expect(templates.resolvedLocale(for: tag("en-US")).rawValue == "en")
    }

    @Test("the variables a kind needs are required; a link must be http(s), and is never in the error")
    func requiredVariables() {
        var noLink = MailTemplates.sample(.passwordReset)
        noLink.link = nil
        #expect(throws: TemplateError.self) {
            try repositoryTemplates.render(.passwordReset, locale: nil, variables: noLink)
        }
        var noOldEmail = MailTemplates.sample(.emailChanged)
        noOldEmail.oldEmail = nil
        do {
            _ = try repositoryTemplates.render(.emailChanged, locale: nil, variables: noOldEmail)
            Issue.record("rendered without oldEmail")
        } catch {
            #expect(error.code == .invalidVariables)
            #expect(error.description == "email_changed needs oldEmail")
        }
        for link in ["javascript:alert(1)//secret-token", "https://x.example/?t=secret-token\r\nBcc: a@b.c", "data:text/html,secret-token"]
        {
            var bad = MailTemplates.sample(.verifyEmail)
            bad.link = link
            do {
                _ = try repositoryTemplates.render(.verifyEmail, locale: nil, variables: bad)
                Issue.record("accepted \(link)")
            } catch {
                #expect(error.code == .invalidVariables)
                #expect(!error.description.contains("secret-token"))
            }
        }
        // A kind without a link ignores one.
        var welcome = MailTemplates.sample(.welcome)
        welcome.link = "javascript:alert(1)"
        #expect(throws: Never.self) { try repositoryTemplates.render(.welcome, locale: nil, variables: welcome) }
    }

    @Test("preview renders sample data in each format")
    func preview() throws {
        let html = try repositoryTemplates.preview(.verifyEmail, locale: tag("pt-BR"), format: .html)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("lang=\"pt\"") && html.contains("Confirmar e-mail"))
        let text = try repositoryTemplates.preview(.passwordReset, format: .text)
        #expect(text.contains("https://auth.example.com/auth/reset-password/confirm?token="))
        #expect(text.contains("15 minutes"))
        let subject = try repositoryTemplates.preview(.emailChanged, locale: tag("fr"), format: .subject, productName: "Acme")
        #expect(subject == "Your Acme email address was changed\n")
    }
}
