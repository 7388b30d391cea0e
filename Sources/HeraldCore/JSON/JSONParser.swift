/// A strict RFC 8259 validator that records the top-level members of an object. Nested
/// values are validated but not indexed. Invalid UTF-8, control characters in strings,
/// lone surrogates, trailing garbage and nesting deeper than `maxDepth` are rejected.
struct JSONParser {
    static let maxDepth = 64

    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func parseTopLevelObject() throws(JSONError) -> [JSONObject.Member] {
        guard bytes.count < Int(Int32.max) else { throw JSONError.invalid("document too large", at: 0) }
        skipWhitespace()
        guard index < bytes.count else { throw JSONError.invalid("empty document", at: index) }
        guard bytes[index] == UInt8(ascii: "{") else {
            // Validate anyway so that the error says "not JSON" for garbage.
            _ = try parseValue(depth: 0)
            skipWhitespace()
            guard index == bytes.count else { throw JSONError.invalid("trailing characters", at: index) }
            throw JSONError.notAnObject
        }
        index += 1
        var members: [JSONObject.Member] = []
        members.reserveCapacity(8)
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw JSONError.invalid("expected a member name", at: index) }
                let keyStart = index
                let keyHasEscapes = try skipString()
                let keyEnd = index
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw JSONError.invalid("expected ':'", at: index) }
                index += 1
                skipWhitespace()
                let valueStart = index
                let kind = try parseValue(depth: 1)
                members.append(
                    .init(
                        keyStart: Int32(keyStart), keyEnd: Int32(keyEnd), valueStart: Int32(valueStart),
                        valueEnd: Int32(index), kind: kind, keyHasEscapes: keyHasEscapes))
                skipWhitespace()
                guard let c = peek() else { throw JSONError.invalid("unterminated object", at: index) }
                index += 1
                if c == UInt8(ascii: "}") { break }
                guard c == UInt8(ascii: ",") else { throw JSONError.invalid("expected ',' or '}'", at: index - 1) }
            }
        }
        skipWhitespace()
        guard index == bytes.count else { throw JSONError.invalid("trailing characters", at: index) }
        return members
    }

    @inline(__always)
    func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONError) -> JSONObject.Kind {
        guard depth <= Self.maxDepth else { throw JSONError.invalid("nested too deeply", at: index) }
        guard let c = peek() else { throw JSONError.invalid("expected a value", at: index) }
        switch c {
        case UInt8(ascii: "\""):
            _ = try skipString()
            return .string
        case UInt8(ascii: "{"):
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return .object
            }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw JSONError.invalid("expected a member name", at: index) }
                _ = try skipString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw JSONError.invalid("expected ':'", at: index) }
                index += 1
                skipWhitespace()
                _ = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard let d = peek() else { throw JSONError.invalid("unterminated object", at: index) }
                index += 1
                if d == UInt8(ascii: "}") { return .object }
                guard d == UInt8(ascii: ",") else { throw JSONError.invalid("expected ',' or '}'", at: index - 1) }
            }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return .array
            }
            while true {
                skipWhitespace()
                _ = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard let d = peek() else { throw JSONError.invalid("unterminated array", at: index) }
                index += 1
                if d == UInt8(ascii: "]") { return .array }
                guard d == UInt8(ascii: ",") else { throw JSONError.invalid("expected ',' or ']'", at: index - 1) }
            }
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber()
            return .number
        default:
            throw JSONError.invalid("unexpected character", at: index)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw JSONError.invalid("bad literal", at: index) }
        let p = literal.utf8Start
        for i in 0..<count where bytes[index + i] != p[i] {
            throw JSONError.invalid("bad literal", at: index)
        }
        index += count
    }

    mutating func skipNumber() throws(JSONError) {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw JSONError.invalid("bad number", at: start) }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let d = peek(), isDigit(d) { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let d = peek(), isDigit(d) else { throw JSONError.invalid("bad number", at: start) }
            while let d = peek(), isDigit(d) { index += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            index += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { index += 1 }
            guard let d = peek(), isDigit(d) else { throw JSONError.invalid("bad number", at: start) }
            while let d = peek(), isDigit(d) { index += 1 }
        }
    }

    @inline(__always)
    func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Skips a string literal starting at the opening quote, validating escapes and UTF-8.
    /// Returns whether it contains escapes.
    mutating func skipString() throws(JSONError) -> Bool {
        let start = index
        index += 1
        var escapes = false
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return escapes
            }
            if b == UInt8(ascii: "\\") {
                escapes = true
                guard index + 1 < bytes.count else { break }
                let e = bytes[index + 1]
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard index + 6 <= bytes.count, Self.isHex4(bytes, at: index + 2) else {
                        throw JSONError.invalid("bad \\u escape", at: index)
                    }
                    let v = Self.hexValue(bytes, at: index + 2)
                    index += 6
                    if (0xD800...0xDBFF).contains(v) {
                        guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u"), Self.isHex4(bytes, at: index + 2),
                            (0xDC00...0xDFFF).contains(Self.hexValue(bytes, at: index + 2))
                        else {
                            throw JSONError.invalid("lone surrogate in string", at: index)
                        }
                        index += 6
                    } else if (0xDC00...0xDFFF).contains(v) {
                        throw JSONError.invalid("lone surrogate in string", at: index - 6)
                    }
                default:
                    throw JSONError.invalid("bad escape", at: index)
                }
                continue
            }
            if b < 0x20 { throw JSONError.invalid("control character in string", at: index) }
            if b < 0x80 {
                index += 1
                continue
            }
            try skipUTF8Sequence()
        }
        throw JSONError.invalid("unterminated string", at: start)
    }

    /// Validates one multi-byte UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF).
    mutating func skipUTF8Sequence() throws(JSONError) {
        let b0 = bytes[index]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: throw JSONError.invalid("invalid UTF-8", at: index)
        }
        guard index + length <= bytes.count else { throw JSONError.invalid("invalid UTF-8", at: index) }
        let b1 = bytes[index + 1]
        guard b1 >= lower && b1 <= upper else { throw JSONError.invalid("invalid UTF-8", at: index) }
        for k in 2..<max(2, length) {
            let b = bytes[index + k]
            guard b >= 0x80 && b <= 0xBF else { throw JSONError.invalid("invalid UTF-8", at: index) }
        }
        index += length
    }

    static func isHex4(_ bytes: [UInt8], at i: Int) -> Bool {
        for k in 0..<4 {
            switch bytes[i + k] {
            case 0x30...0x39, 0x41...0x46, 0x61...0x66: continue
            default: return false
            }
        }
        return true
    }

    static func hexValue(_ bytes: [UInt8], at i: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 {
            let b = bytes[i + k]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            default: d = UInt32(b - 0x61 + 10)
            }
            v = v << 4 | d
        }
        return v
    }
}
