/// Bytes from outside (a Kafka record's key, value, header names and values) turned into text
/// that is safe to print on a terminal or to put in a JSON string, and that still says what
/// the bytes were:
/// - valid UTF-8 is shown as it is, except what would act on a terminal or hide what
///   follows: control characters (C0, DEL) as `\xNN`, C1 controls, line and paragraph
///   separators and bidirectional controls as `\u{NNNN}`; `\n`, `\r` and `\t` as such;
/// - a byte that is not part of valid UTF-8 as `\xNN` (only bytes ≥ 0x80 can be: an ASCII
///   `\xNN` is a control character);
/// - a backslash as `\\`, so that no escape can be forged;
/// - with `maskEmails`, every email address's local part masked as in the logs
///   (`EmailMasking`: `ada@example.com` → `a***@example.com`), before the text is cut;
/// - with a `limit`, cut at a character or escape boundary so that the text takes at most
///   that many UTF-8 bytes (`truncated` says so; the caller shows the size).
public enum PrintableBytes {
    public struct Rendered: Sendable, Equatable {
        public let text: String
        /// Some of the bytes are not shown.
        public let truncated: Bool

        public init(text: String, truncated: Bool) {
            self.text = text
            self.truncated = truncated
        }
    }

    /// How far past `limit` the bytes are decoded and masked, so that an address straddling
    /// the cut is masked as a whole before it is cut (an address is at most 254 bytes).
    static let maskingMargin = 512

    public static func render(_ bytes: [UInt8], limit: Int? = nil, maskEmails: Bool = false) -> Rendered {
        var window = bytes[...]
        if let limit, bytes.count > limit + maskingMargin {
            var end = limit + maskingMargin
            // Cut before a character rather than through it: back up over continuation bytes
            // to the first byte of the character `end` is in.
            var backed = 0
            while end > 0, backed < 3, bytes[end] & 0xC0 == 0x80 {
                end -= 1
                backed += 1
            }
            window = bytes[..<end]
        }
        var out = ""
        var used = 0
        var cut = window.count < bytes.count
        func emit(_ token: String) -> Bool {
            let size = token.utf8.count
            if let limit, used + size > limit {
                cut = true
                return false
            }
            out += token
            used += size
            return true
        }
        segments: for segment in segments(window) {
            switch segment {
            case .text(let text):
                for scalar in (maskEmails ? EmailMasking.mask(text) : text).unicodeScalars {
                    guard emit(escaped(scalar)) else { break segments }
                }
            case .invalid(let byte):
                guard emit(hex(byte)) else { break segments }
            }
        }
        return Rendered(text: out, truncated: cut)
    }

    /// `text` (a header's name, an event type) rendered the same way.
    public static func render(_ text: String, limit: Int? = nil, maskEmails: Bool = false) -> Rendered {
        render(Array(text.utf8), limit: limit, maskEmails: maskEmails)
    }

    enum Segment: Equatable {
        case text(String)
        case invalid(UInt8)
    }

    /// Runs of valid UTF-8, and each byte that is not part of one.
    static func segments(_ bytes: ArraySlice<UInt8>) -> [Segment] {
        var result: [Segment] = []
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var position = bytes.startIndex
        var runStart = position
        func closeRun(at end: Int) {
            if runStart < end { result.append(.text(String(decoding: bytes[runStart..<end], as: UTF8.self))) }
        }
        loop: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                position += encoded.count
            case .error(let length):
                closeRun(at: position)
                for byte in bytes[position..<(position + length)] { result.append(.invalid(byte)) }
                position += length
                runStart = position
            case .emptyInput:
                break loop
            }
        }
        closeRun(at: position)
        return result
    }

    static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0x5C: return "\\\\"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        case 0x00..<0x20, 0x7F: return hex(UInt8(scalar.value))
        case 0x80..<0xA0,  // C1 controls (CSI 0x9B among them)
            0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069,  // bidirectional controls
            0x2028, 0x2029:  // line and paragraph separators
            let digits = String(scalar.value, radix: 16, uppercase: true)
            return "\\u{" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "}"
        default: return String(scalar)
        }
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "\\x" + (digits.count == 1 ? "0" : "") + digits
    }
}
