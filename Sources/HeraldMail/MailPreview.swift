import HeraldCore

/// What `herald templates preview` prints.
public enum MailPreviewFormat: String, CaseIterable, Sendable {
    /// The one-line subject.
    case subject
    /// The plain-text body.
    case text
    /// The HTML document (body inside the layout).
    case html
}

extension MailTemplates {
    /// Renders `kind` with the sample variables (`MailTemplates.sample`), so that a designer
    /// can look at a template: `locale` falls back as in `render`.
    public func preview(
        _ kind: MailKind,
        locale: LanguageTag? = nil,
        format: MailPreviewFormat,
        productName: String = "Herald",
        supportEmail: String = "support@example.com"
    ) throws(TemplateError) -> String {
        let mail = try render(
            kind, locale: locale, variables: Self.sample(kind, productName: productName, supportEmail: supportEmail))
        switch format {
        case .subject: return mail.subject + "\n"
        case .text: return mail.text
        case .html: return mail.html
        }
    }
}
