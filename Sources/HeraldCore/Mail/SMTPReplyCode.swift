/// The SMTP reply code and enhanced status code (RFC 3463) a courier's outcome text names,
/// for a mail event: the first three-digit code 200–599 standing alone as a word (`550`,
/// `(550)`, `550-…`), and the enhanced status code right after it (`5.1.1`). Nothing else of
/// the server's text is kept: it may echo the recipient's address.
public struct SMTPReplyCode: Sendable, Hashable {
    public let code: Int
    public let enhanced: String?

    public init?(in text: String) {
        let bytes = Array(text.utf8)
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        func isBoundary(_ i: Int) -> Bool { i < 0 || i >= bytes.count || !(isDigit(i) || bytes[i] == 0x2E) }
        var i = 0
        while i + 2 < bytes.count {
            if (0x32...0x35).contains(bytes[i]), isDigit(i + 1), isDigit(i + 2), isBoundary(i - 1), isBoundary(i + 3) {
                code = Int(bytes[i] - 0x30) * 100 + Int(bytes[i + 1] - 0x30) * 10 + Int(bytes[i + 2] - 0x30)
                // `550 5.1.1` or `550-5.1.1`: class.subject.detail, the class the code's.
                var j = i + 3
                if j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x2D { j += 1 }
                var k = j
                var parts: [Int] = []
                var digits = 0
                while k < bytes.count, isDigit(k) || bytes[k] == 0x2E {
                    if bytes[k] == 0x2E {
                        parts.append(digits)
                        digits = 0
                    } else {
                        digits += 1
                    }
                    k += 1
                }
                parts.append(digits)
                let valid =
                    parts.count == 3 && parts[0] == 1 && (1...3).contains(parts[1]) && (1...3).contains(parts[2])
                    && bytes[j] == bytes[i]
                enhanced = valid ? String(decoding: bytes[j..<k], as: UTF8.self) : nil
                return
            }
            i += 1
        }
        return nil
    }

    /// The code in `text` when it is of reply class `replyClass` (2, 4 or 5), else nil.
    public init?(in text: String, class replyClass: Int) {
        guard let found = SMTPReplyCode(in: text), found.code / 100 == replyClass else { return nil }
        self = found
    }
}
