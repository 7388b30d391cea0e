import Foundation
import HeraldCore
import Mustache

/// Renders every template of every locale with sample data and checks the output.
struct TemplateValidator {
    let templates: MailTemplates
    /// The kinds checked in each locale.
    let kinds: [MailKind]
    private var problems: [TemplateError] = []

    /// A value no HTML-escaping template can let through as markup.
    static let probe = "<x-herald-probe>"

    init(templates: MailTemplates, kinds: [MailKind] = MailKind.allCases) {
        self.templates = templates
        self.kinds = kinds
    }

    /// All problems as one error, or nil.
    func validate() -> TemplateError? {
        var validator = self
        validator.checkLayout()
        for locale in templates.locales {
            for kind in kinds {
                validator.check(kind, in: templates.localeTemplates[locale.rawValue.lowercased()]!)
            }
        }
        return TemplateError.combining(validator.problems)
    }

    private func path(_ locale: LanguageTag, _ kind: MailKind, _ part: TemplatePart) -> String {
        "\(templates.directory)/\(locale.rawValue)/\(part.fileName(kind))"
    }

    private mutating func invalid(_ file: String, _ reason: String, line: Int? = nil) {
        problems.append(TemplateError(.invalidTemplate, file: file, line: line, reason: reason))
    }

    /// Renders and reports names that are not variables.
    private mutating func render(_ template: MustacheTemplate, _ values: [String: String], known: Set<String>, file: String)
        -> String
    {
        let recording = RecordingValues(values)
        let output = template.render(recording)
        let unknown = recording.requested.subtracting(known).sorted()
        if !unknown.isEmpty {
            invalid(
                file,
                "unknown variable " + unknown.map { "{{\($0)}}" }.joined(separator: ", ") + " (variables: "
                    + known.sorted().joined(separator: ", ") + ")",
                line: templates.sources[file].flatMap { source in
                    unknown.compactMap { TemplateSource.line(ofTagNamed: $0, in: source) }.min()
                })
        }
        return output
    }

    private mutating func check(_ kind: MailKind, in locale: MailTemplates.LocaleTemplates) {
        let sample = MailTemplates.sample(kind)
        let values = TemplateValues.make(sample, locale: locale.tag)
        let probes = values.mapValues { _ in Self.probe }
        let kindTemplates = locale.kinds[kind]!
        for part in TemplatePart.allCases {
            let file = path(locale.tag, kind, part)
            let template = kindTemplates.template(part)
            let output = render(template, values, known: TemplateValues.names, file: file)
            switch part {
            case .subject:
                let trimmed = output.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed.isEmpty {
                    invalid(file, "renders an empty subject")
                } else if trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                    invalid(file, "a subject must be one line")
                }
            case .text, .html:
                if part == .html && template.render(probes).contains(Self.probe) {
                    invalid(
                        file, "a variable is inserted without HTML escaping: use {{name}}, not {{{name}}} or {{&name}}",
                        line: templates.sources[file].flatMap { TemplateSource.lineOfUnescapedTag(in: $0) })
                }
                guard kind.hasLink, let link = values["link"], let expiry = values["linkExpiresInWords"] else { continue }
                let expected = part == .html ? Self.htmlEscape(link) : link
                if !output.contains(expected) {
                    invalid(file, "does not contain the link ({{link}})")
                }
                if !output.contains(part == .html ? Self.htmlEscape(expiry) : expiry) {
                    invalid(file, "does not say when the link expires ({{linkExpiresInWords}})")
                }
            }
        }
    }

    private mutating func checkLayout() {
        let file = "\(templates.directory)/\(TemplateLoader.layoutFile)"
        let marker = "<p id=\"herald-content-marker\"></p>"
        let values = TemplateValues.make(MailTemplates.sample(.welcome), locale: templates.defaultLocale)
        let output = render(
            templates.layout, TemplateValues.layout(values, subject: "Subject", content: marker),
            known: TemplateValues.layoutNames, file: file)
        if !output.contains(marker) {
            invalid(file, "does not include the mail's body ({{{content}}})")
        }
        let probes = TemplateValues.layout(values.mapValues { _ in Self.probe }, subject: Self.probe, content: marker)
        if templates.layout.render(probes).contains(Self.probe) {
            invalid(
                file, "a variable other than content is inserted without HTML escaping: use {{name}}",
                line: templates.sources[file].flatMap { TemplateSource.lineOfUnescapedTag(in: $0, except: ["content"]) })
        }
    }

    static func htmlEscape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "&": result += "&amp;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
