import HeraldCore

/// One mail, rendered: a one-line subject, a plain-text body and an HTML body (inside the
/// shared layout), in the locale whose templates were used.
public struct RenderedMail: Sendable, Hashable {
    /// One line: no CR, LF or other control character.
    public let subject: String
    /// Plain text, no markup; variables verbatim.
    public let text: String
    /// A complete HTML document; every variable HTML-escaped.
    public let html: String
    /// The locale folder the templates came from (after fallback), for `Content-Language`.
    public let locale: LanguageTag

    public init(subject: String, text: String, html: String, locale: LanguageTag) {
        self.subject = subject
        self.text = text
        self.html = html
        self.locale = locale
    }
}
