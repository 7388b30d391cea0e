/// A template that cannot be loaded or rendered, or variables a mail cannot be rendered with.
///
/// The description names the file (`Templates/pt/welcome.html.mustache: missing`) and never
/// contains variable values: a link carries a one-time token. `line` points into the file when
/// the problem has a place there (a syntax error, an unknown or unescaped variable).
public struct TemplateError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unreadableDirectory = "unreadable directory"
            case missingDefaultLocale = "missing default locale"
            case invalidLocaleFolder = "invalid locale folder"
            case unexpectedFile = "unexpected file"
            case missingTemplate = "missing template"
            case unreadableTemplate = "unreadable template"
            case parseError = "parse error"
            case invalidTemplate = "invalid template"
            case invalidVariables = "invalid variables"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The templates directory does not exist or cannot be listed.
        public static let unreadableDirectory = Code(.unreadableDirectory)
        /// There is no folder for the default locale.
        public static let missingDefaultLocale = Code(.missingDefaultLocale)
        /// A folder whose name is not a language tag (`pt_BR` instead of `pt-BR`).
        public static let invalidLocaleFolder = Code(.invalidLocaleFolder)
        /// A `.mustache` file in a locale folder that belongs to no mail kind (a typo).
        public static let unexpectedFile = Code(.unexpectedFile)
        /// A template file that must exist does not.
        public static let missingTemplate = Code(.missingTemplate)
        /// A template file that cannot be read or is not UTF-8.
        public static let unreadableTemplate = Code(.unreadableTemplate)
        /// Mustache syntax error.
        public static let parseError = Code(.parseError)
        /// The template parses but fails validation with sample data (an unknown variable,
        /// an unescaped variable in HTML, a multi-line subject, a link kind without its link).
        public static let invalidTemplate = Code(.invalidTemplate)
        /// The variables passed to `render` lack what the kind needs (its link, old and new
        /// address) or hold a link that is not an http(s) URL.
        public static let invalidVariables = Code(.invalidVariables)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// The template file concerned, as found under the directory given to `MailTemplates`.
    public let file: String?
    /// The line of `file` (from 1) where the problem is, when it has one: a syntax error's
    /// line, the first tag naming an unknown variable, the first unescaped variable in HTML.
    public let line: Int?
    /// What is wrong, without any variable's value.
    public let reason: String
    /// Further problems found in the same validation pass (start-up reports them all at once).
    public let additionalProblems: [TemplateError]

    public init(_ code: Code, file: String?, line: Int? = nil, reason: String, additionalProblems: [TemplateError] = []) {
        self.code = code
        self.file = file
        self.line = line
        self.reason = reason
        self.additionalProblems = additionalProblems
    }

    /// This problem and the additional ones.
    public var allProblems: [TemplateError] {
        [TemplateError(code, file: file, line: line, reason: reason)] + additionalProblems.flatMap(\.allProblems)
    }

    /// The first of `problems`, carrying the others, or nil when there are none.
    static func combining(_ problems: [TemplateError]) -> TemplateError? {
        guard let first = problems.first else { return nil }
        return TemplateError(
            first.code, file: first.file, line: first.line, reason: first.reason, additionalProblems: Array(problems.dropFirst()))
    }

    public var description: String {
        let all = allProblems.map { problem in problem.file.map { "\($0): \(problem.reason)" } ?? problem.reason }
        if all.count == 1 { return all[0] }
        return "\(all.count) template problems: " + all.joined(separator: "; ")
    }
}
