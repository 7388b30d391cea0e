import Foundation
import HeraldCore
import HeraldMail
import Testing

/// Start-up validation: each test breaks a copy of Templates/ and expects the file named.
@Suite("Mail templates: start-up validation names the file")
struct TemplateValidationTests {
    @Test("a missing template is named")
    func missingFile() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.delete("pt/welcome.html.mustache")
        let error = try #require(copy.loadError())
        #expect(error.code == .missingTemplate)
        #expect(error.description == "\(copy.path)/pt/welcome.html.mustache: missing")
    }

    @Test("a missing layout is named")
    func missingLayout() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.delete("layout.html.mustache")
        let error = try #require(copy.loadError())
        #expect(error.code == .missingTemplate)
        #expect(error.description == "\(copy.path)/layout.html.mustache: missing")
    }

    @Test("an unclosed section is named with its line")
    func unclosedSection() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("en/verify_email.txt.mustache", "Hi {{{recipientName}}},\n\n{{#link}}\nOpen {{{link}}}\n")
        let error = try #require(copy.loadError())
        #expect(error.code == .parseError)
        #expect(error.file == copy.file("en/verify_email.txt.mustache"))
        #expect(error.description.hasPrefix("\(copy.path)/en/verify_email.txt.mustache: parse error at line "))
        #expect(error.description.contains("not closed"))
    }

    @Test("a mismatched closing tag is named with its line and column")
    func mismatchedClose() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("pt/welcome.html.mustache", "<p>Olá</p>\n<p>{{#oldEmail}}x{{/newEmail}}</p>\n")
        let error = try #require(copy.loadError())
        #expect(error.code == .parseError)
        #expect(error.description.hasPrefix("\(copy.path)/pt/welcome.html.mustache: parse error at line 2, column "))
    }

    @Test("an unknown variable is named with the file")
    func unknownVariable() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("pt/password_changed.subject.mustache", "A sua senha do {{prodName}} foi alterada\n")
        let error = try #require(copy.loadError())
        #expect(error.code == .invalidTemplate)
        #expect(error.description.hasPrefix("\(copy.path)/pt/password_changed.subject.mustache: unknown variable {{prodName}}"))
    }

    @Test("an HTML template that inserts a variable unescaped is rejected", arguments: ["{{{recipientName}}}", "{{&recipientName}}"])
    func unescapedHTML(tag: String) throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("en/welcome.html.mustache", "<p>Hi \(tag),</p>\n")
        let error = try #require(copy.loadError())
        #expect(error.code == .invalidTemplate)
        #expect(error.file == copy.file("en/welcome.html.mustache"))
        #expect(error.reason.contains("without HTML escaping"))
    }

    @Test("the layout must include the body and escape everything else")
    func layoutChecks() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("layout.html.mustache", "<html><title>{{{subject}}}</title><body></body></html>\n")
        let error = try #require(copy.loadError())
        let reasons = error.allProblems.filter { $0.file == copy.file("layout.html.mustache") }.map(\.reason)
        #expect(reasons.count == 2)
        #expect(reasons.contains { $0.contains("{{{content}}}") })
        #expect(reasons.contains { $0.contains("without HTML escaping") })
    }

    @Test("a subject on two lines is rejected")
    func multiLineSubject() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("en/welcome.subject.mustache", "Welcome\nto {{productName}}\n")
        let error = try #require(copy.loadError())
        #expect(error.description == "\(copy.path)/en/welcome.subject.mustache: a subject must be one line")
    }

    @Test("a link mail without its link or expiry is rejected")
    func linkMailWithoutLink() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("pt/password_reset.txt.mustache", "Olá {{{recipientName}}}, redefina a sua senha.\n")
        let error = try #require(copy.loadError())
        #expect(
            error.allProblems.map(\.description) == [
                "\(copy.path)/pt/password_reset.txt.mustache: does not contain the link ({{link}})",
                "\(copy.path)/pt/password_reset.txt.mustache: does not say when the link expires ({{linkExpiresInWords}})",
            ])
    }

    @Test("every problem is reported at once, each with its file")
    func allProblemsAtOnce() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.delete("en/email_changed.txt.mustache")
        try copy.delete("pt/email_changed.subject.mustache")
        try copy.write("pt/welcome.txt.mustache", "{{#productName}}\n")
        let error = try #require(copy.loadError())
        let files = error.allProblems.compactMap(\.file)
        #expect(
            files == [
                // Locale by locale, in MailKind order.
                copy.file("en/email_changed.txt.mustache"), copy.file("pt/welcome.txt.mustache"),
                copy.file("pt/email_changed.subject.mustache"),
            ])
        #expect(error.description.hasPrefix("3 template problems: "))
        #expect(error.description.contains("\(copy.path)/pt/email_changed.subject.mustache: missing"))
    }

    @Test("the default locale's folder is required")
    func missingDefault() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        let error = try #require(copy.loadError(defaultLocale: "de"))
        #expect(error.code == .missingDefaultLocale)
        #expect(error.description == "\(copy.path)/de: missing: the default locale's folder is required")
        #expect(copy.loadError(defaultLocale: "en_US")?.code == .missingDefaultLocale)
    }

    @Test("a folder that is not a language tag, and a template of no kind, are rejected")
    func strayFiles() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try FileManager.default.copyItem(atPath: copy.file("pt"), toPath: copy.file("pt_BR"))
        try copy.write("en/welcom.txt.mustache", "typo\n")
        try copy.write("README.md", "not a template\n")
        try FileManager.default.createDirectory(atPath: copy.file(".git"), withIntermediateDirectories: false)
        let error = try #require(copy.loadError())
        #expect(error.allProblems.map(\.code) == [.unexpectedFile, .invalidLocaleFolder])
        #expect(error.allProblems.map(\.file) == [copy.file("en/welcom.txt.mustache"), copy.file("pt_BR")])
    }

    @Test("the directory itself must exist")
    func noDirectory() {
        do {
            _ = try MailTemplates(directory: "/nonexistent/Templates")
            Issue.record("loaded")
        } catch {
            #expect(error.code == .unreadableDirectory)
            #expect(error.description == "/nonexistent/Templates: not a readable directory")
        }
    }

    @Test("a template that is not UTF-8 is named")
    func notUTF8() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try Data([0x4F, 0x6C, 0xE1, 0x0A]).write(to: URL(fileURLWithPath: copy.file("pt/welcome.subject.mustache")))
        let error = try #require(copy.loadError())
        #expect(error.description == "\(copy.path)/pt/welcome.subject.mustache: not valid UTF-8")
    }
}
