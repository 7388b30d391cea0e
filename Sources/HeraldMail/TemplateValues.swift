import HeraldCore
import Mustache

/// The names templates can use and the values they get.
enum TemplateValues {
    /// Every name a kind's templates may use; a name absent from a mail's values renders empty
    /// and makes `{{#name}}…{{/name}}` sections disappear.
    static let names: Set<String> = [
        "recipientName", "recipientEmail", "productName", "supportEmail", "requestedAt", "requestedAtHuman",
        "link", "linkExpiresInWords", "linkExpiresAt", "linkExpiresAtHuman", "oldEmail", "newEmail", "locale",
    ]
    /// The layout may also use the mail's subject and its rendered HTML body.
    static let layoutNames: Set<String> = names.union(["subject", "content"])

    static func make(_ variables: MailVariables, locale: LanguageTag) -> [String: String] {
        let words = MailLocalization.forLocale(locale)
        var values: [String: String] = [
            "recipientName": variables.recipientName,
            "recipientEmail": variables.recipientEmail,
            "productName": variables.productName,
            "supportEmail": variables.supportEmail,
            "requestedAt": RFC3339.format(variables.requestedAt),
            "requestedAtHuman": words.human(variables.requestedAt),
            "locale": locale.rawValue,
        ]
        values["link"] = variables.link
        values["linkExpiresInWords"] = variables.linkLifetime.map(words.words(for:))
        values["linkExpiresAt"] = variables.linkExpiresAt.map(RFC3339.format)
        values["linkExpiresAtHuman"] = variables.linkExpiresAt.map(words.human)
        values["oldEmail"] = variables.oldEmail
        values["newEmail"] = variables.newEmail
        return values
    }

    static func layout(_ values: [String: String], subject: String, content: String) -> [String: String] {
        var values = values
        values["subject"] = subject
        values["content"] = content
        return values
    }
}

/// Renders like a dictionary and remembers every name a template asked for, so validation
/// can report names that are not variables (`{{recipentName}}` would otherwise render empty).
final class RecordingValues: MustacheParent {
    let values: [String: String]
    private(set) var requested: Set<String> = []

    init(_ values: [String: String]) {
        self.values = values
    }

    func child(named name: String) -> Any? {
        requested.insert(name)
        return values[name]
    }
}
