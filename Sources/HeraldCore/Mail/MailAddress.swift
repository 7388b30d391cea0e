/// A mailbox with an optional display name, as in `From: Herald <noreply@example.com>`.
public struct MailAddress: Sendable, Hashable, CustomStringConvertible {
    public let address: EmailAddress
    /// Shown by mail clients; any text (it is RFC 2047-encoded or quoted when rendered). A CR or
    /// LF makes rendering fail.
    public let displayName: String?

    public init(_ address: EmailAddress, displayName: String? = nil) {
        self.address = address
        self.displayName = displayName.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Parses `Name <addr@example.com>`, `"Name" <addr@example.com>`, `<addr@example.com>` or
    /// `addr@example.com` (the form of `HERALD_MAIL_FROM`).
    public init(parsing text: String, field: String = "mail address") throws(ValidationError) {
        let trimmed = text.trimmingSpaces()
        if trimmed.unicodeScalars.contains(where: Self.isControl) {
            throw ValidationError(field: field, reason: "contains a control character")
        }
        guard trimmed.hasSuffix(">") else {
            self.init(try EmailAddress(trimmed, field: field))
            return
        }
        guard let open = trimmed.lastIndex(of: "<") else {
            throw ValidationError(field: field, reason: "has no opening <")
        }
        let inner = trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)]
        let address = try EmailAddress(String(inner), field: field)
        var name = String(trimmed[..<open]).trimmingSpaces()
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            name = Self.unquote(name.dropFirst().dropLast())
        }
        self.init(address, displayName: name.isEmpty ? nil : name)
    }

    /// `Name <address>` or `address`, unencoded (for logs and configuration echoes).
    public var description: String {
        guard let displayName else { return address.rawValue }
        return "\(displayName) <\(address.rawValue)>"
    }

    /// A C0 control other than tab (CR and LF among them), DEL or a C1 control: never part of
    /// a header value.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar != "\t" && (scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value))
    }

    private static func unquote(_ quoted: Substring) -> String {
        var result = ""
        var escaped = false
        for ch in quoted {
            if escaped {
                result.append(ch)
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                result.append(ch)
            }
        }
        return result
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
