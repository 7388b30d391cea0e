import HeraldCore

/// The pages of `herald templates serve`, as HTML strings: pure functions of a
/// `TemplateWorkbench`, so that what they show is tested without a server. Every value is
/// HTML-escaped; a mail's HTML part is shown only inside a sandboxed `<iframe srcdoc>`, where
/// no script runs and nothing reaches the page's origin. No JavaScript.
public enum TemplatePages {
    /// The path of a mail's page.
    public static func path(_ kind: MailKind, locale: LanguageTag) -> String {
        "/mail/\(locale.rawValue)/\(kind.rawValue)"
    }

    /// Every kind × locale found on disk, each linking to its page, a failing one marked with
    /// its first problem; above it, what `herald templates check` says about the directory.
    public static func index(_ workbench: TemplateWorkbench) -> String {
        var body = "<h1>Herald templates</h1>\n"
        body += intro(workbench)
        body += check(workbench)
        if workbench.locales.isEmpty {
            body += "<p class=\"error\">No locale folder in <code>\(escape(workbench.directory))</code>.</p>\n"
            return page(title: "Herald templates", body: body)
        }
        body += "<table class=\"index\">\n<thead><tr><th>kind</th>"
        body += workbench.locales.map { "<th>\(escape($0.rawValue))</th>" }.joined()
        body += "</tr></thead>\n<tbody>\n"
        for kind in MailKind.allCases {
            body += "<tr><th scope=\"row\">\(escape(kind.rawValue))</th>"
            for locale in workbench.locales {
                guard let sample = workbench.sample(kind, locale: locale.rawValue) else { continue }
                let link = "<a href=\"\(escape(path(kind, locale: locale)))\">"
                switch sample.result {
                case .success(let mail):
                    body += "<td class=\"ok\">\(link)\(escape(mail.subject))</a></td>"
                case .failure(let error):
                    let count = error.allProblems.count
                    body += "<td class=\"failed\">\(link)✗ \(count) problem\(count == 1 ? "" : "s")</a>"
                    body += "<br>\(problem(error.allProblems[0]))</td>"
                }
            }
            body += "</tr>\n"
        }
        body += "</tbody>\n</table>\n"
        return page(title: "Herald templates", body: body)
    }

    /// One mail: subject, text part and HTML part side by side, the sample data, or every
    /// problem of its files with file and line.
    public static func mail(_ sample: TemplateSample, in workbench: TemplateWorkbench) -> String {
        let title = "\(sample.kind.rawValue) (\(sample.locale.rawValue))"
        var body = "<p class=\"nav\"><a href=\"/\">All templates</a>"
        let others = workbench.locales.filter { $0 != sample.locale }
        if !others.isEmpty {
            body +=
                " · also in "
                + others.map { "<a href=\"\(escape(path(sample.kind, locale: $0)))\">\(escape($0.rawValue))</a>" }
                .joined(separator: ", ")
        }
        body += "</p>\n<h1>\(escape(title))</h1>\n"
        body += "<p class=\"files\">Files: " + sample.files.map { "<code>\(escape($0))</code>" }.joined(separator: ", ") + "</p>\n"
        switch sample.result {
        case .failure(let error):
            body += "<section class=\"errors\" id=\"errors\">\n<h2>Template errors</h2>\n<ul>\n"
            body += error.allProblems.map { "<li>\(problem($0))</li>\n" }.joined()
            body += "</ul>\n<p>Fix the file and reload this page.</p>\n</section>\n"
        case .success(let mail):
            body +=
                "<p class=\"subject\"><span class=\"label\">Subject</span> <strong id=\"subject\">\(escape(mail.subject))</strong></p>\n"
            body += "<div class=\"parts\">\n"
            body += "<section><h2>Text part</h2>\n<pre id=\"text\">\(escape(mail.text))</pre></section>\n"
            // No `allow-*` token: scripts, forms and popups are off and the frame's origin is
            // opaque, whatever the template writes.
            body += "<section><h2>HTML part</h2>\n"
            body += "<iframe id=\"html\" title=\"HTML part\" sandbox srcdoc=\"\(escape(mail.html))\"></iframe></section>\n"
            body += "</div>\n"
        }
        body += "<section><h2>Sample data</h2>\n<table class=\"sample\" id=\"sample\">\n"
        for name in sample.values.keys.sorted() {
            body += "<tr><th scope=\"row\"><code>\(escape(name))</code></th><td>\(escape(sample.values[name]!))</td></tr>\n"
        }
        body += "</table></section>\n"
        return page(title: "\(title) · Herald templates", body: body)
    }

    /// A path that names no page.
    public static func notFound(_ path: String) -> String {
        page(
            title: "Not found · Herald templates",
            body: "<h1>Not found</h1>\n<p>No page at <code>\(escape(path))</code>. <a href=\"/\">All templates</a></p>\n")
    }

    /// `file:line: reason`, escaped.
    static func problem(_ error: TemplateError) -> String {
        var place = error.file ?? ""
        if let line = error.line { place += ":\(line)" }
        let reason = "<span class=\"reason\">\(escape(error.reason))</span>"
        return place.isEmpty ? reason : "<code class=\"where\">\(escape(place))</code> \(reason)"
    }

    private static func intro(_ workbench: TemplateWorkbench) -> String {
        "<p>Directory <code>\(escape(workbench.directory))</code>, default locale <code>\(escape(workbench.defaultLocale))</code>. "
            + "Every page reads the files again: edit a template and reload.</p>\n"
    }

    private static func check(_ workbench: TemplateWorkbench) -> String {
        guard let error = workbench.check else {
            return "<p class=\"check ok\" id=\"check\">✓ <code>herald templates check</code> passes: "
                + "<code>herald run</code> would start with these templates.</p>\n"
        }
        let problems = error.allProblems
        return "<section class=\"check failed\" id=\"check\">\n<p>✗ <code>herald templates check</code> fails "
            + "(<code>herald run</code> would refuse to start): \(problems.count) problem\(problems.count == 1 ? "" : "s")</p>\n<ul>\n"
            + problems.map { "<li>\(problem($0))</li>\n" }.joined() + "</ul>\n</section>\n"
    }

    private static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; background: #fafafa; }
        code, pre { font: 13px/1.4 ui-monospace, monospace; }
        table { border-collapse: collapse; background: #fff; }
        th, td { border: 1px solid #d0d0d5; padding: .35rem .6rem; text-align: left; vertical-align: top; }
        td.ok { background: #eef8ee; } td.failed, .failed { background: #fdecec; }
        .check { padding: .5rem .8rem; border: 1px solid #d0d0d5; } .check.ok { background: #eef8ee; }
        .errors { background: #fdecec; border: 1px solid #e0a0a0; padding: .5rem 1rem; }
        .where { font-weight: bold; } .label { color: #666; text-transform: uppercase; font-size: 12px; }
        .parts { display: flex; gap: 1rem; align-items: stretch; }
        .parts section { flex: 1; min-width: 0; }
        pre { background: #fff; border: 1px solid #d0d0d5; padding: .8rem; white-space: pre-wrap; margin: 0; min-height: 520px; }
        iframe { width: 100%; height: 560px; border: 1px solid #d0d0d5; background: #fff; }
        </style>
        </head>
        <body>
        \(body)</body>
        </html>

        """
    }

    static func escape(_ text: String) -> String { TemplateValidator.htmlEscape(text) }
}
