import Foundation
import HeraldCore
import Mustache

/// Reads and parses the templates directory, collecting every problem.
struct TemplateLoader {
    static let layoutFile = "layout.html.mustache"

    var problems: [TemplateError] = []
    /// The text of every file read, by path: validation points at lines in it.
    var sources: [String: String] = [:]

    static func load(directory: String, defaultLocale: LanguageTag) throws(TemplateError) -> (
        locales: [String: MailTemplates.LocaleTemplates], layout: MustacheTemplate, sources: [String: String]
    ) {
        var loader = TemplateLoader()
        let fm = FileManager.default
        guard isDirectory(directory), let entries = try? fm.contentsOfDirectory(atPath: directory) else {
            throw TemplateError(.unreadableDirectory, file: directory, reason: "not a readable directory")
        }

        let layout = loader.template(at: "\(directory)/\(layoutFile)", plain: false)
        var locales: [String: MailTemplates.LocaleTemplates] = [:]
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            let path = "\(directory)/\(entry)"
            guard isDirectory(path) else {
                if entry.hasSuffix(".mustache") && entry != layoutFile {
                    loader.problems.append(
                        TemplateError(
                            .unexpectedFile, file: path,
                            reason: "only \(layoutFile) belongs here; mail templates go in a locale folder"))
                }
                continue
            }
            guard let tag = try? LanguageTag(entry) else {
                loader.problems.append(
                    TemplateError(
                        .invalidLocaleFolder, file: path,
                        reason: "a locale folder must be named by a language tag such as en, pt or pt-BR"))
                continue
            }
            let key = entry.lowercased()
            if let other = locales[key] {
                loader.problems.append(
                    TemplateError(
                        .invalidLocaleFolder, file: path,
                        reason: "the same locale as \(directory)/\(other.tag.rawValue) (tags ignore case)"))
                continue
            }
            if let templates = loader.locale(tag, at: path) { locales[key] = templates }
        }
        if !entries.contains(where: { $0.lowercased() == defaultLocale.rawValue.lowercased() && isDirectory("\(directory)/\($0)") }) {
            loader.problems.append(
                TemplateError(
                    .missingDefaultLocale, file: "\(directory)/\(defaultLocale.rawValue)",
                    reason: "missing: the default locale's folder is required"))
        }
        if let error = TemplateError.combining(loader.problems) { throw error }
        return (locales, layout!, loader.sources)
    }

    /// Only the layout and the three templates of `kind` in the locale folder `locale`: what
    /// `herald templates serve` renders for one mail, so that a fault elsewhere in the
    /// directory does not hide it.
    static func load(directory: String, locale: LanguageTag, kind: MailKind) throws(TemplateError) -> (
        locale: MailTemplates.LocaleTemplates, layout: MustacheTemplate, sources: [String: String]
    ) {
        var loader = TemplateLoader()
        let folder = "\(directory)/\(locale.rawValue)"
        let layout = loader.template(at: "\(directory)/\(layoutFile)", plain: false)
        let subject = loader.template(at: "\(folder)/\(TemplatePart.subject.fileName(kind))", plain: true)
        let text = loader.template(at: "\(folder)/\(TemplatePart.text.fileName(kind))", plain: true)
        let html = loader.template(at: "\(folder)/\(TemplatePart.html.fileName(kind))", plain: false)
        guard let layout, let subject, let text, let html else {
            throw TemplateError.combining(loader.problems)!
        }
        return (.init(tag: locale, kinds: [kind: .init(subject: subject, text: text, html: html)]), layout, loader.sources)
    }

    /// The templates of one locale folder, or nil after recording why not.
    private mutating func locale(_ tag: LanguageTag, at folder: String) -> MailTemplates.LocaleTemplates? {
        let expected = Set(MailKind.allCases.flatMap { kind in TemplatePart.allCases.map { $0.fileName(kind) } })
        for entry in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        where entry.hasSuffix(".mustache") && !expected.contains(entry) {
            problems.append(
                TemplateError(
                    .unexpectedFile, file: "\(folder)/\(entry)",
                    reason: "not a template of any mail kind (expected <kind>.subject|txt|html.mustache, kinds: "
                        + MailKind.allCases.map(\.rawValue).joined(separator: ", ") + ")"))
        }
        var kinds: [MailKind: MailTemplates.KindTemplates] = [:]
        for kind in MailKind.allCases {
            let subject = template(at: "\(folder)/\(TemplatePart.subject.fileName(kind))", plain: true)
            let text = template(at: "\(folder)/\(TemplatePart.text.fileName(kind))", plain: true)
            let html = template(at: "\(folder)/\(TemplatePart.html.fileName(kind))", plain: false)
            if let subject, let text, let html {
                kinds[kind] = .init(subject: subject, text: text, html: html)
            }
        }
        guard kinds.count == MailKind.allCases.count else { return nil }
        return .init(tag: tag, kinds: kinds)
    }

    /// Reads and parses one file, or records why it cannot be.
    private mutating func template(at path: String, plain: Bool) -> MustacheTemplate? {
        do throws(TemplateError) {
            let text = try Self.read(path)
            sources[path] = text
            return try Self.parse(text, file: path, plain: plain)
        } catch {
            problems.append(error)
            return nil
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func read(_ path: String) throws(TemplateError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TemplateError(.missingTemplate, file: path, reason: "missing")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw TemplateError(.unreadableTemplate, file: path, reason: "cannot be read")
        }
        guard var text = String(validating: data, as: UTF8.self) else {
            throw TemplateError(.unreadableTemplate, file: path, reason: "not valid UTF-8")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text
    }

    /// Parses a template. Plain templates (subjects, text bodies) get the TEXT content type, so
    /// that `{{x}}` inserts `x` verbatim there, as `{{{x}}}` does.
    static func parse(_ text: String, file: String, plain: Bool) throws(TemplateError) -> MustacheTemplate {
        // Parsed as written first, so that line and column numbers match the file.
        let template: MustacheTemplate
        do {
            template = try MustacheTemplate(string: text)
        } catch let error as MustacheTemplate.ParserError {
            let context = error.context
            throw TemplateError(
                .parseError, file: file, line: context.lineNumber,
                reason: "parse error at line \(context.lineNumber), column \(context.columnNumber): \(explain(error.error))")
        } catch {
            throw TemplateError(.parseError, file: file, reason: "parse error: \(explain(error))")
        }
        guard plain else { return template }
        do {
            return try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}\n" + text)
        } catch {
            throw TemplateError(.parseError, file: file, reason: "parse error: \(explain(error))")
        }
    }

    static func explain(_ error: any Error) -> String {
        guard let error = error as? MustacheTemplate.Error else {
            return "the template ends inside a tag or section (is a {{/name}} or }} missing?)"
        }
        switch error {
        case .sectionCloseNameIncorrect: return "a {{/name}} closes a section that is not the one open"
        case .unfinishedName: return "a tag is not closed or its name is malformed"
        case .expectedSectionEnd: return "a section is not closed (is a {{/name}} missing?)"
        case .invalidSetDelimiter: return "malformed set-delimiter tag"
        case .transformAppliedToInheritanceSection: return "a transform is applied to an inheritance section"
        case .illegalTokenInsideInheritSection: return "illegal tag inside an inheritance section"
        case .textInsideInheritSection: return "text inside an inheritance section"
        case .invalidConfigVariableSyntax: return "malformed {{% pragma}}"
        case .unrecognisedConfigVariable: return "unknown {{% pragma}}"
        }
    }
}
