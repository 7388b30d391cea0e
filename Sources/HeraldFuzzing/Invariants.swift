import HeraldCore

/// Checks shared by the targets, written against bytes and scalars rather than through the
/// code under test.
enum Invariants {
    /// RFC 5322 specials and space: none may occur in an address Herald puts in a header.
    static let addressForbidden: Set<UInt8> = Set(" \"(),:;<>[\\]".utf8)

    /// What `EmailAddress` promises for mail headers and SMTP, on the bytes that reach the
    /// wire: exactly one `@`, a local part of 1...64 bytes, no space, control or RFC 5322
    /// special anywhere (nothing that could end the address or start a second one), no
    /// Unicode whitespace or control, and a domain of at least two non-empty labels.
    static func mailbox(_ address: String, _ field: String) throws(FuzzFailure) {
        let bytes = Array(address.utf8)
        let ats = bytes.indices.filter { bytes[$0] == UInt8(ascii: "@") }
        try check(ats.count == 1, "\(field) \(debug(address)) has \(ats.count) @ bytes")
        let at = ats[0]
        try check(at >= 1 && at <= 64, "\(field) \(debug(address)): local part of \(at) bytes")
        try check(bytes.count <= 254, "\(field) \(debug(address)) is \(bytes.count) bytes")
        if let bad = bytes.first(where: { $0 < 0x21 || $0 == 0x7F || addressForbidden.contains($0) }) {
            throw FuzzFailure("\(field) \(debug(address)) contains the byte 0x\(String(bad, radix: 16))")
        }
        if let bad = address.unicodeScalars.first(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) {
            throw FuzzFailure("\(field) \(debug(address)) contains U+\(String(bad.value, radix: 16, uppercase: true))")
        }
        let labels = bytes[(at + 1)...].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        try check(labels.count >= 2 && labels.allSatisfy { !$0.isEmpty }, "\(field) \(debug(address)): bad domain labels")
    }

    /// A C0 control, DEL or a C1 control (what CloudEvents forbids in a string, and what must
    /// never reach a header value).
    static func containsControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// The identifier rules of `IdentifierRules` (no control, no leading/trailing
    /// whitespace, non-empty, bounded), checked independently.
    static func identifier(_ value: String, maxLength: Int, _ field: String) throws(FuzzFailure) {
        try check(!value.isEmpty && value.utf8.count <= maxLength, "\(field) \(debug(value)): empty or longer than \(maxLength)")
        try check(
            !value.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(field) \(debug(value)) has a control")
        try check(
            !value.unicodeScalars.first!.properties.isWhitespace && !value.unicodeScalars.last!.properties.isWhitespace,
            "\(field) \(debug(value)) has leading or trailing whitespace")
    }

    /// `text` for a failure message: escaped, cut short.
    static func debug(_ text: String) -> String {
        let cut = text.unicodeScalars.count > 120 ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(120))) + "…" : text
        return cut.debugDescription
    }

    /// The Kafka topic name rules (`[A-Za-z0-9._-]`, 1...249 bytes, not `.` or `..`).
    static func isTopicName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 249 && name != "." && name != ".."
            && name.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F
                    || b == 0x2D
            }
    }
}
