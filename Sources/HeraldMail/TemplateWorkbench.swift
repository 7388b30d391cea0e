import Foundation
import HeraldCore

/// The templates directory as `herald templates serve` shows it: read from disk when made
/// (each page is a fresh read, so an edit shows on reload), every kind × locale rendered on
/// its own with the sample data, so that one broken template hides no other mail.
public struct TemplateWorkbench: Sendable {
    /// The directory, as given (trailing slashes removed).
    public let directory: String
    /// The default locale as configured (`HERALD_MAIL_DEFAULT_LOCALE`).
    public let defaultLocale: String
    /// The locale folders found (folders named by a language tag), sorted.
    public let locales: [LanguageTag]
    /// What `herald templates check`, and `herald run` at start-up, say about the whole
    /// directory; nil when it passes.
    public let check: TemplateError?
    /// One per locale × kind, locale by locale, kinds in `MailKind.allCases` order.
    public let samples: [TemplateSample]

    /// Reads `directory` now. Never throws: every problem is in `check` and the samples.
    public init(directory: String, defaultLocale: String, productName: String = "Herald", supportEmail: String = "support@example.com") {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.directory = trimmed
        self.defaultLocale = defaultLocale
        do {
            _ = try MailTemplates(directory: trimmed, defaultLocale: defaultLocale)
            check = nil
        } catch {
            check = error
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: trimmed)) ?? []
        locales = entries.filter { !$0.hasPrefix(".") && TemplateLoader.isDirectory("\(trimmed)/\($0)") }
            .compactMap { try? LanguageTag($0) }.sorted { $0.rawValue < $1.rawValue }
        samples = locales.flatMap { locale in
            MailKind.allCases.map { kind in
                TemplateSample(
                    directory: trimmed, locale: locale, kind: kind, productName: productName, supportEmail: supportEmail)
            }
        }
    }

    /// The sample of `kind` in the locale folder named `locale` (exactly as on disk), if any.
    public func sample(_ kind: MailKind, locale: String) -> TemplateSample? {
        samples.first { $0.kind == kind && $0.locale.rawValue == locale }
    }
}

/// One kind in one locale folder, rendered with the sample data, or why it cannot be.
public struct TemplateSample: Sendable {
    public let kind: MailKind
    public let locale: LanguageTag
    /// The values the templates see, by name (`MailTemplates.sample`, as `herald templates
    /// preview` uses); a name the kind does not have is absent.
    public let values: [String: String]
    /// The mail, or every problem of its four files (the layout and its three templates), each
    /// with its file and, where it has one, its line.
    public let result: Result<RenderedMail, TemplateError>

    /// The three template files of this mail and the layout, as paths.
    public let files: [String]

    init(directory: String, locale: LanguageTag, kind: MailKind, productName: String, supportEmail: String) {
        self.kind = kind
        self.locale = locale
        let variables = MailTemplates.sample(kind, productName: productName, supportEmail: supportEmail)
        values = TemplateValues.make(variables, locale: locale)
        files =
            TemplatePart.allCases.map { "\(directory)/\(locale.rawValue)/\($0.fileName(kind))" }
            + ["\(directory)/\(TemplateLoader.layoutFile)"]
        do throws(TemplateError) {
            let templates = try MailTemplates(directory: directory, locale: locale, kind: kind)
            result = .success(try templates.render(kind, locale: locale, variables: variables))
        } catch {
            result = .failure(error)
        }
    }

    /// The mail's problems, one per entry; empty when it renders.
    public var problems: [TemplateError] {
        if case .failure(let error) = result { return error.allProblems }
        return []
    }
}
