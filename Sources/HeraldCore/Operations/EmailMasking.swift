/// Masks email addresses in log text (`HERALD_LOG_MASK_EMAILS=true`): the local part becomes
/// its first character and `***`, the domain stays, so a line still tells which domain a mail
/// went to, not to whom. `ada.lovelace@example.com` → `a***@example.com`,
/// `jörg@exämple.de` → `j***@exämple.de`, `用户@例子.广告` → `用***@例子.广告`.
public enum EmailMasking {
    /// Replaces the local part of every `local@domain.tld` in `text`.
    ///
    /// A local part is letters, digits and combining marks of any script (RFC 6531 allows
    /// UTF-8 addresses) plus the punctuation RFC 5322 allows unquoted, except `=`, `` ` ``,
    /// `{`, `|` and `}`, which log lines use around values. A domain is labels of letters,
    /// digits, marks and `-` (internationalized names as written, or their `xn--` form),
    /// separated by `.` or an ideographic full stop, with at least two labels.
    public static func mask(_ text: String) -> String {
        guard text.contains("@") || text.contains("\u{FF20}") else { return text }
        return text.replacing(
            /([\p{L}\p{M}\p{N}._%+\-'!#$&*\/?^~])[\p{L}\p{M}\p{N}._%+\-'!#$&*\/?^~]*[@＠]([\p{L}\p{M}\p{N}\-]+(?:[.。．｡][\p{L}\p{M}\p{N}\-]+)+)/
        ) { match in
            "\(match.output.1)***@\(match.output.2)"
        }
    }
}
