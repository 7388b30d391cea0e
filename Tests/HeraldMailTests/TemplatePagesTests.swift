import Foundation
import HeraldCore
import HeraldMail
import Testing

/// The pages of `herald templates serve` as pure functions of a copy of Templates/: what the
/// index lists, what a mail's page shows, that every value is escaped and that a broken
/// template shows up with its file and line instead of hiding the page.
@Suite("Mail templates: the pages of herald templates serve")
struct TemplatePagesTests {
    static func workbench(_ copy: TemplatesCopy, productName: String = "Herald") -> TemplateWorkbench {
        TemplateWorkbench(directory: copy.path, defaultLocale: "en", productName: productName)
    }

    @Test("the index lists every kind × locale found on disk, each linking to its page with its subject")
    func indexListing() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        let workbench = Self.workbench(copy)
        #expect(workbench.check == nil)
        #expect(workbench.locales.map(\.rawValue) == ["en", "pt"])
        #expect(workbench.samples.count == MailKind.allCases.count * 2)
        let page = TemplatePages.index(workbench)
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(page.contains("<th>en</th><th>pt</th>"))
        for kind in MailKind.allCases {
            #expect(page.contains("<th scope=\"row\">\(kind.rawValue)</th>"), "\(kind)")
            for locale in ["en", "pt"] {
                #expect(page.contains("<a href=\"/mail/\(locale)/\(kind.rawValue)\">"), "\(kind) \(locale)")
            }
        }
        let subject = try repositoryTemplates.preview(.welcome, format: .subject).trimmingCharacters(in: .newlines)
        #expect(page.contains("<a href=\"/mail/en/welcome\">\(subject)</a>"))
        #expect(page.contains("herald templates check</code> passes"))
        #expect(!page.contains("class=\"failed\""))
        #expect(!page.contains("<script"))
    }

    @Test("a new locale folder appears in the index")
    func newLocale() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try FileManager.default.copyItem(atPath: copy.file("pt"), toPath: copy.file("pt-PT"))
        let workbench = Self.workbench(copy)
        #expect(workbench.locales.map(\.rawValue) == ["en", "pt", "pt-PT"])
        #expect(TemplatePages.index(workbench).contains("<a href=\"/mail/pt-PT/password_reset\">"))
    }

    @Test("a mail's page: the subject, the text part, the HTML part in a sandboxed srcdoc frame, the sample data")
    func mailPage() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        let workbench = Self.workbench(copy)
        let sample = try #require(workbench.sample(.passwordReset, locale: "pt"))
        let mail = try sample.result.get()
        #expect(
            mail == (try repositoryTemplates.render(.passwordReset, locale: tag("pt"), variables: MailTemplates.sample(.passwordReset))))
        let page = TemplatePages.mail(sample, in: workbench)
        #expect(page.contains("<strong id=\"subject\">\(TemplatePagesTests.escaped(mail.subject))</strong>"))
        #expect(page.contains("<pre id=\"text\">\(TemplatePagesTests.escaped(mail.text))</pre>"))
        #expect(
            page.contains("<iframe id=\"html\" title=\"HTML part\" sandbox srcdoc=\"\(TemplatePagesTests.escaped(mail.html))\"></iframe>"))
        // The sample data, link included (a sample token: it grants nothing).
        #expect(page.contains("<tr><th scope=\"row\"><code>link</code></th><td>https://auth.example.com/"))
        #expect(page.contains(MailTemplates.sampleLinkToken))
        #expect(page.contains("<tr><th scope=\"row\"><code>recipientName</code></th><td>alex</td></tr>"))
        #expect(!page.contains("<code>oldEmail</code>"))
        #expect(page.contains("<a href=\"/mail/en/password_reset\">en</a>"))
        #expect(!page.contains("id=\"errors\""))
        // The mail's own markup only inside the srcdoc attribute: one <body>, the page's.
        #expect(mail.html.contains("<body"))
        #expect(page.components(separatedBy: "<body").count == 2)
    }

    @Test("every value is escaped: markup in the product name shows as text on the index and the mail page")
    func escaping() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        let hostile = "<script>alert('x')</script> & \"Co\""
        let workbench = Self.workbench(copy, productName: hostile)
        let index = TemplatePages.index(workbench)
        let page = TemplatePages.mail(try #require(workbench.sample(.welcome, locale: "en")), in: workbench)
        for html in [index, page] {
            #expect(!html.contains("<script"))
            #expect(!html.contains("alert('x')"))
        }
        #expect(index.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;"))
        // In the sample data and the subject once escaped; in the HTML part escaped twice
        // (once by the template, once into the srcdoc attribute).
        #expect(page.contains("<td>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;</td>"))
        #expect(page.contains("&amp;lt;script&amp;gt;"))
        // A file name is escaped too.
        #expect(TemplatePages.notFound("/mail/<b>").contains("<code>/mail/&lt;b&gt;</code>"))
    }

    @Test("a syntax error: the index marks that mail with file and line, its page lists it, the other mails still render")
    func syntaxError() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("en/welcome.html.mustache", "<p>Hi {{recipientName}}</p>\n<p>{{#oldEmail}}x{{/newEmail}}</p>\n")
        let workbench = Self.workbench(copy)
        let file = copy.file("en/welcome.html.mustache")
        #expect(workbench.check?.file == file)
        let sample = try #require(workbench.sample(.welcome, locale: "en"))
        let problem = try #require(sample.problems.first)
        #expect(problem.file == file && problem.line == 2, "\(problem)")
        let index = TemplatePages.index(workbench)
        #expect(
            index.contains("<td class=\"failed\"><a href=\"/mail/en/welcome\">✗ 1 problem</a><br><code class=\"where\">\(file):2</code>"))
        #expect(index.contains("herald templates check</code> fails"))
        #expect(index.components(separatedBy: "<td class=\"ok\">").count - 1 == MailKind.allCases.count * 2 - 1)
        let page = TemplatePages.mail(sample, in: workbench)
        #expect(page.contains("<section class=\"errors\" id=\"errors\">"))
        #expect(page.contains("<li><code class=\"where\">\(file):2</code> <span class=\"reason\">parse error at line 2, column"))
        #expect(!page.contains("<iframe"))
        #expect(page.contains("<code>productName</code>"))
        #expect((try? workbench.sample(.welcome, locale: "pt")?.result.get()) != nil)
    }

    @Test("an unknown variable and an unescaped one point at their lines; a broken layout marks every mail")
    func validationLines() throws {
        let copy = try TemplatesCopy()
        defer { copy.remove() }
        try copy.write("pt/password_changed.subject.mustache", "A sua senha do {{prodName}} foi alterada\n")
        try copy.write("en/verify_email.html.mustache", try copy.read("en/verify_email.html.mustache") + "\n<p>{{{recipientName}}}</p>\n")
        let lines = try copy.read("en/verify_email.html.mustache").components(separatedBy: "\n").count - 1
        var workbench = Self.workbench(copy)
        let subject = try #require(workbench.sample(.passwordChanged, locale: "pt")?.problems.first)
        #expect(subject.line == 1 && subject.reason.hasPrefix("unknown variable {{prodName}}"), "\(subject)")
        let html = try #require(workbench.sample(.verifyEmail, locale: "en")?.problems.first)
        #expect(html.line == lines && html.reason.contains("without HTML escaping"), "\(html)")
        // The whole directory's check lists both, with their lines.
        let all = try #require(workbench.check).allProblems
        #expect(all.contains(subject) && all.contains(html))

        try copy.write("layout.html.mustache", "<html>\n<body>{{{content}}}{{/x}}</body></html>\n")
        workbench = Self.workbench(copy)
        #expect(workbench.samples.allSatisfy { $0.problems.contains { $0.file == copy.file("layout.html.mustache") && $0.line == 2 } })
        #expect(!TemplatePages.index(workbench).contains("<td class=\"ok\">"))
    }

    @Test("a missing directory: the index says so instead of an empty page")
    func missingDirectory() {
        let workbench = TemplateWorkbench(directory: "/nonexistent/herald-templates/", defaultLocale: "en")
        #expect(workbench.directory == "/nonexistent/herald-templates")
        #expect(workbench.samples.isEmpty)
        let index = TemplatePages.index(workbench)
        #expect(index.contains("/nonexistent/herald-templates</code> <span class=\"reason\">not a readable directory"))
        #expect(index.contains("No locale folder in <code>/nonexistent/herald-templates</code>"))
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }
}
