import HeraldCore

/// Renders a `MailMessage` to the bytes of an RFC 5322 message: the same bytes go to the SMTP
/// server and into `.eml` files.
///
/// Herald builds the MIME structure itself rather than with libcurl's MIME API
/// (`curl_mime_*`): that API produces its bytes only while libcurl uploads them, so the
/// file transport and `herald templates preview --format eml` could not get them, and it
/// passes header values through as given, without RFC 2047 encoding of non-ASCII subjects and
/// display names, and without folding.
///
/// The message: `Date`, `From`, `To`, `Reply-To`, `Subject`, `Message-ID`, `MIME-Version`, the
/// extra headers, then `multipart/alternative` with a `text/plain` part followed by a
/// `text/html` part, both UTF-8 and quoted-printable. Header lines are folded at 78
/// characters; every line ends in CRLF.
public enum MailRendering {
    /// Header fields Herald writes itself; an extra header may not use these names.
    static let reservedHeaderNames: Set<String> = [
        "from", "to", "cc", "bcc", "reply-to", "sender", "subject", "date", "message-id", "mime-version",
        "content-type", "content-transfer-encoding", "return-path",
    ]

    /// Throws a permanent `MailError` (`invalidMessage`) when a value that lands in a header
    /// (subject, display names, addresses, message id, extra headers) contains CR, LF or
    /// another control character, or an extra header has an invalid or reserved name.
    public static func render(_ message: MailMessage) throws(MailError) -> [UInt8] {
        var out = HeaderWriter()
        out.field("Date", HeaderText.rfc5322Date(message.date))
        try out.addressField("From", message.from, field: "from")
        try out.addressField("To", message.to, field: "to")
        if let replyTo = message.replyTo { try out.addressField("Reply-To", replyTo, field: "reply-to") }
        try out.unstructuredField("Subject", message.subject, field: "subject")
        out.field("Message-ID", try messageID(message.messageID))
        out.field("MIME-Version", "1.0")
        for header in message.headers {
            try checkHeaderName(header.name)
            try out.unstructuredField(header.name, header.value, field: "header \(header.name)")
        }
        let boundary = Self.boundary(for: message)
        out.field("Content-Type", "multipart/alternative; boundary=\"\(boundary)\"")
        var bytes = out.bytes
        bytes.append(contentsOf: crlf)
        for (type, body) in [("text/plain", message.textBody), ("text/html", message.htmlBody)] {
            append("--\(boundary)\r\n", to: &bytes)
            append("Content-Type: \(type); charset=UTF-8\r\n", to: &bytes)
            append("Content-Transfer-Encoding: quoted-printable\r\n\r\n", to: &bytes)
            QuotedPrintable.encode(body, into: &bytes)
            bytes.append(contentsOf: crlf)
        }
        append("--\(boundary)--\r\n", to: &bytes)
        return bytes
    }

    /// `=_herald_` and 16 hex digits derived from the message id (so the same message renders
    /// to the same bytes). Quoted-printable output never contains `=_` (`=` is always followed
    /// by two hex digits or a line break there), so the boundary cannot occur in a body.
    static func boundary(for message: MailMessage) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in message.messageID.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "=_herald_" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The longest message id rendered (between the angle brackets), in bytes.
    public static let maxMessageIDLength = MailMessage.maxMessageIDLength

    /// The message id in angle brackets: printable ASCII, no spaces, no brackets inside.
    static func messageID(_ value: String) throws(MailError) -> String {
        var id = Substring(value)
        if id.hasPrefix("<") && id.hasSuffix(">") && id.count >= 2 { id = id.dropFirst().dropLast() }
        guard !id.isEmpty, id.utf8.count <= maxMessageIDLength,
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") })
        else {
            throw MailError.make(.invalidMessage, "message-id is not printable ASCII without spaces or brackets")
        }
        return "<\(id)>"
    }

    static func checkHeaderName(_ name: String) throws(MailError) {
        guard !name.isEmpty, name.utf8.count <= 76, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") })
        else {
            throw MailError.make(.invalidMessage, "an extra header name is not a valid field name")
        }
        guard !reservedHeaderNames.contains(name.lowercased()) else {
            throw MailError.make(.invalidMessage, "extra header \(name) would replace one Herald writes")
        }
    }

    private static let crlf: [UInt8] = [13, 10]

    private static func append(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: text.utf8)
    }
}

/// Builds folded header lines.
struct HeaderWriter {
    static let lineLimit = 78
    private(set) var bytes: [UInt8] = []

    /// A field whose value is ASCII and needs no folding.
    mutating func field(_ name: String, _ value: String) {
        bytes.append(contentsOf: "\(name): \(value)\r\n".utf8)
    }

    /// `name: token token …`, folding (CRLF + space) before a token that would pass the line
    /// limit (also before the first one, after the colon). Never folds before an empty token,
    /// so no line is whitespace only. A token longer than a line stays whole.
    mutating func folded(_ name: String, _ tokens: [String]) {
        var line = name.utf8.count + 1
        bytes.append(contentsOf: "\(name):".utf8)
        for token in tokens {
            let length = token.utf8.count
            if !token.isEmpty && line + 1 + length > Self.lineLimit {
                bytes.append(contentsOf: "\r\n ".utf8)
                line = 1
            } else {
                bytes.append(UInt8(ascii: " "))
                line += 1
            }
            bytes.append(contentsOf: token.utf8)
            line += length
        }
        bytes.append(contentsOf: "\r\n".utf8)
    }

    /// Subject and extra headers: plain words when the value is printable ASCII (and holds no
    /// `=?` that a reader would take for an encoded word), RFC 2047 encoded words otherwise.
    mutating func unstructuredField(_ name: String, _ value: String, field: String) throws(MailError) {
        try HeaderText.check(value, field: field)
        if HeaderText.isPlainASCII(value) && !value.contains("=?") {
            let words = value.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            if words.allSatisfy({ $0.utf8.count <= 900 }) {
                folded(name, words)
                return
            }
        }
        folded(name, HeaderText.encodedWords(value))
    }

    /// `Display Name <address>`: the name as atoms, a quoted string, or encoded words.
    mutating func addressField(_ name: String, _ mailbox: MailAddress, field: String) throws(MailError) {
        let address = mailbox.address.rawValue
        try HeaderText.check(address, field: "\(field) address")
        guard let displayName = mailbox.displayName else {
            folded(name, [address])
            return
        }
        try HeaderText.check(displayName, field: "\(field) display name")
        folded(name, HeaderText.phrase(displayName) + ["<\(address)>"])
    }
}

/// Checks and encodings of header text.
enum HeaderText {
    /// True when `text` holds a C0 control other than tab (CR and LF among them), DEL or a C1
    /// control.
    static func containsControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { scalar in
            scalar != "\t" && (scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value))
        }
    }

    static func check(_ value: String, field: String) throws(MailError) {
        if value.utf8.contains(13) || value.utf8.contains(10) {
            throw MailError.make(.invalidMessage, "\(field) contains a line break")
        }
        if containsControl(value) {
            throw MailError.make(.invalidMessage, "\(field) contains a control character")
        }
    }

    /// Printable ASCII and spaces only.
    static func isPlainASCII(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    /// The tokens of a display name: its words when they are all atoms, one quoted string
    /// when it is other printable ASCII, encoded words when it is not ASCII.
    static func phrase(_ name: String) -> [String] {
        guard isPlainASCII(name) else { return encodedWords(name) }
        let words = name.split(separator: " ", omittingEmptySubsequences: true)
        if !words.isEmpty, !name.hasPrefix(" "), !name.hasSuffix(" "), !name.contains("  "), !name.contains("=?"),
            words.allSatisfy({ $0.utf8.allSatisfy(isAtext) })
        {
            return words.map(String.init)
        }
        var quoted = "\""
        for ch in name {
            if ch == "\"" || ch == "\\" { quoted.append("\\") }
            quoted.append(ch)
        }
        return [quoted + "\""]
    }

    /// RFC 5322 atext: letters, digits and ``!#$%&'*+-/=?^_`{|}~``.
    static func isAtext(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
        }
    }

    /// RFC 2047 `=?UTF-8?B?…?=` words of at most 60 characters (the limit is 75; shorter words
    /// leave room for the field name on the first line), split between characters (a character
    /// is never split across words unless it alone is longer than a word).
    static func encodedWords(_ text: String) -> [String] {
        let maxBytes = 36  // 48 base64 characters + 12 of `=?UTF-8?B?` and `?=`
        var words: [String] = []
        var chunk: [UInt8] = []
        func flush() {
            if !chunk.isEmpty { words.append("=?UTF-8?B?" + Base64.encode(chunk) + "?=") }
            chunk.removeAll(keepingCapacity: true)
        }
        for character in text {
            let bytes = Array(character.utf8)
            if bytes.count > maxBytes {
                for scalar in character.unicodeScalars {
                    let scalarBytes = Array(String(scalar).utf8)
                    if chunk.count + scalarBytes.count > maxBytes { flush() }
                    chunk += scalarBytes
                }
                continue
            }
            if chunk.count + bytes.count > maxBytes { flush() }
            chunk += bytes
        }
        flush()
        return words.isEmpty ? ["=?UTF-8?B??="] : words
    }

    /// `Tue, 1 Jul 2025 12:00:00 +0000` (RFC 5322 section 3.3), in UTC.
    static func rfc5322Date(_ time: EventTime) -> String {
        let seconds = time.epochSeconds
        var days = seconds / 86_400
        var rest = seconds % 86_400
        if rest < 0 {
            rest += 86_400
            days -= 1
        }
        let weekday = ((days % 7) + 7 + 4) % 7  // 1970-01-01 was a Thursday
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let clock = "\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))"
        return "\(names[Int(weekday)]), \(day) \(months[Int(month) - 1]) \(year) \(clock) +0000"
    }
}

/// Quoted-printable (RFC 2045 section 6.7) with CRLF line breaks.
enum QuotedPrintable {
    static let maxLine = 76

    /// Encodes `text`, whose line breaks may be LF, CRLF or CR, as lines of at most 76
    /// characters separated by CRLF (no CRLF after the last line: the one before the next
    /// boundary belongs to the boundary, so a body's own final line break is kept). `=`, controls, non-ASCII bytes, whitespace at the end of a line and
    /// a `.` at the start of a line (which some relays mishandle) are encoded.
    static func encode(_ text: String, into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        let bytes = Array(text.utf8)
        var index = 0
        var lineLength = 0
        while true {
            if index == bytes.count { break }
            // End of a source line: hard line break.
            if bytes[index] == 13 || bytes[index] == 10 {
                out.append(contentsOf: [13, 10])
                lineLength = 0
                if bytes[index] == 13 && index + 1 < bytes.count && bytes[index + 1] == 10 { index += 1 }
                index += 1
                continue
            }
            let byte = bytes[index]
            let atLineEnd = index + 1 == bytes.count || bytes[index + 1] == 13 || bytes[index + 1] == 10
            let literal: Bool
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): literal = !atLineEnd
            case UInt8(ascii: "="): literal = false
            case UInt8(ascii: "."): literal = lineLength != 0
            case 33...126: literal = true
            default: literal = false
            }
            let width = literal ? 1 : 3
            // Leave room for the `=` of a soft break, unless this is the line's last token.
            if lineLength + width > (atLineEnd ? maxLine : maxLine - 1) {
                out.append(contentsOf: [UInt8(ascii: "="), 13, 10])
                lineLength = 0
                continue  // re-evaluate: a `.` now at the start of a line is encoded
            }
            if literal {
                out.append(byte)
            } else {
                out.append(contentsOf: [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            }
            lineLength += width
            index += 1
        }
    }
}
