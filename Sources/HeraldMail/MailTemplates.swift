import HeraldCore
import Mustache

/// Every mail template, loaded, parsed and checked once at start-up; renders a mail by kind
/// and locale.
///
/// Layout of the directory (`Templates/`): one folder per locale named by its language tag
/// (`en`, `pt`, `pt-BR`), each holding three files per `MailKind`:
/// `<kind>.subject.mustache`, `<kind>.txt.mustache` and `<kind>.html.mustache`; and one shared
/// `layout.html.mustache` that wraps every HTML body (`{{{content}}}`).
///
/// Subjects and text bodies are rendered as plain text: `{{x}}` and `{{{x}}}` both insert the
/// value verbatim. HTML bodies and the layout HTML-escape `{{x}}`; validation rejects an HTML
/// template that inserts a variable unescaped (other than the layout's `{{{content}}}`).
public struct MailTemplates: Sendable {
    /// The directory the templates were loaded from, as given.
    public let directory: String
    /// The locale used when the requested one (and its language) has no folder.
    public let defaultLocale: LanguageTag

    let localeTemplates: [String: LocaleTemplates]
    let layout: MustacheTemplate
    /// Each template file's text, by path: problems found at validation point at a line in it.
    let sources: [String: String]

    struct KindTemplates: Sendable {
        let subject: MustacheTemplate
        let text: MustacheTemplate
        let html: MustacheTemplate

        func template(_ part: TemplatePart) -> MustacheTemplate {
            switch part {
            case .subject: subject
            case .text: text
            case .html: html
            }
        }
    }

    struct LocaleTemplates: Sendable {
        let tag: LanguageTag
        let kinds: [MailKind: KindTemplates]
    }

    /// Loads every locale folder under `directory`, parses every template, then renders each
    /// one with sample data. Every problem found is reported in one error, each naming its
    /// file: a missing or unreadable file, a syntax error (with line and column), an unknown
    /// variable, an HTML template that does not escape a variable, a subject on several lines,
    /// a link mail whose body lacks the link or its expiry.
    public init(directory: String, defaultLocale: String = "en") throws(TemplateError) {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.directory = trimmed
        guard let defaultTag = try? LanguageTag(defaultLocale) else {
            throw TemplateError(
                .missingDefaultLocale, file: nil, reason: "the default locale '\(defaultLocale)' is not a language tag")
        }
        self.defaultLocale = defaultTag

        let loaded = try TemplateLoader.load(directory: trimmed, defaultLocale: defaultTag)
        self.localeTemplates = loaded.locales
        self.layout = loaded.layout
        self.sources = loaded.sources
        if let error = TemplateValidator(templates: self).validate() { throw error }
    }

    /// Only the layout and `kind`'s templates in the folder of `locale` (no fallback), checked
    /// as `init(directory:defaultLocale:)` checks them: what `herald templates serve` renders
    /// one mail with, whatever is wrong elsewhere in the directory.
    init(directory: String, locale: LanguageTag, kind: MailKind) throws(TemplateError) {
        self.directory = directory
        self.defaultLocale = locale
        let loaded = try TemplateLoader.load(directory: directory, locale: locale, kind: kind)
        self.localeTemplates = [locale.rawValue.lowercased(): loaded.locale]
        self.layout = loaded.layout
        self.sources = loaded.sources
        if let error = TemplateValidator(templates: self, kinds: [kind]).validate() { throw error }
    }

    /// The locales with a folder, sorted.
    public var locales: [LanguageTag] {
        localeTemplates.values.map(\.tag).sorted { $0.rawValue < $1.rawValue }
    }

    /// The locale whose templates `render` uses for `requested`: the tag itself, else the tag
    /// with its last subtags removed one by one (`pt-BR` → `pt`), else the default locale.
    /// Tags are compared case-insensitively.
    public func resolvedLocale(for requested: LanguageTag?) -> LanguageTag {
        templates(for: requested).tag
    }

    func templates(for requested: LanguageTag?) -> LocaleTemplates {
        if let requested {
            var subtags = requested.rawValue.lowercased().split(separator: "-")
            while !subtags.isEmpty {
                if let found = localeTemplates[subtags.joined(separator: "-")] { return found }
                subtags.removeLast()
                // RFC 4647 lookup: never end on a singleton such as the `x` of `en-x-foo`.
                if subtags.last?.count == 1 { subtags.removeLast() }
            }
        }
        return localeTemplates[defaultLocale.rawValue.lowercased()]!
    }

    /// Renders `kind` in the best locale for `locale` (see `resolvedLocale(for:)`).
    ///
    /// Throws `invalidVariables` when the kind needs something `variables` lacks (a link
    /// kind's link and its expiry, an email-change kind's old and new address) or when the
    /// link is not an http(s) URL. The subject is always one line: line breaks and other
    /// control characters from the variables become spaces.
    public func render(_ kind: MailKind, locale: LanguageTag?, variables: MailVariables) throws(TemplateError)
        -> RenderedMail
    {
        try Self.check(variables, for: kind)
        let templates = templates(for: locale)
        let values = TemplateValues.make(variables, locale: templates.tag)
        let kindTemplates = templates.kinds[kind]!
        let subject = Self.oneLine(kindTemplates.subject.render(values))
        let text = kindTemplates.text.render(values)
        let content = kindTemplates.html.render(values)
        let html = layout.render(TemplateValues.layout(values, subject: subject, content: content))
        return RenderedMail(subject: subject, text: text, html: html, locale: templates.tag)
    }

    static func check(_ variables: MailVariables, for kind: MailKind) throws(TemplateError) {
        func missing(_ name: String) -> TemplateError {
            TemplateError(.invalidVariables, file: nil, reason: "\(kind.rawValue) needs \(name)")
        }
        if kind.hasLink {
            guard let link = variables.link else { throw missing("link") }
            guard variables.linkLifetime != nil else { throw missing("linkLifetime") }
            guard variables.linkExpiresAt != nil else { throw missing("linkExpiresAt") }
            let lowered = link.lowercased()
            guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://"),
                !link.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control })
            else {
                // Never the link itself: it carries a token.
                throw TemplateError(.invalidVariables, file: nil, reason: "the link is not an http(s) URL")
            }
        }
        if kind.describesEmailChange {
            guard variables.oldEmail != nil else { throw missing("oldEmail") }
            guard variables.newEmail != nil else { throw missing("newEmail") }
        }
    }

    /// A subject is one header line: every run of line breaks and other control characters
    /// (CR, LF, tab, NEL, U+2028, U+2029) becomes one space, and the ends are trimmed.
    static func oneLine(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var pendingSpace = false
        for scalar in text.unicodeScalars {
            let breaks =
                scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}"
                || scalar.properties.isWhitespace
            if breaks {
                pendingSpace = !result.isEmpty
            } else {
                if pendingSpace { result.append(" ") }
                pendingSpace = false
                result.append(scalar)
            }
        }
        return String(result)
    }
}

/// The three templates of a kind.
enum TemplatePart: String, CaseIterable, Sendable {
    case subject
    case text = "txt"
    case html

    /// Subjects and text bodies insert values verbatim; HTML escapes them.
    var isPlain: Bool { self != .html }

    func fileName(_ kind: MailKind) -> String { "\(kind.rawValue).\(rawValue).mustache" }
}
