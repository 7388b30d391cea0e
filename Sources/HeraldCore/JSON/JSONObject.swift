/// A validated top-level JSON object, kept as the original bytes plus an index of its
/// members. Only the values a handler asks for are turned into Swift strings, so decoding
/// an envelope allocates little.
public struct JSONObject: Sendable {
    public enum Kind: UInt8, Sendable {
        case string, number, object, array, bool, null
    }

    struct Member: Sendable {
        var keyStart: Int32
        var keyEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
        var kind: Kind
        var keyHasEscapes: Bool
    }

    let bytes: [UInt8]
    let members: [Member]

    /// Parses `bytes`, which must hold exactly one JSON object (RFC 8259) in UTF-8.
    public init(parsing bytes: [UInt8]) throws(JSONError) {
        var parser = JSONParser(bytes: bytes)
        self.members = try parser.parseTopLevelObject()
        self.bytes = bytes
    }

    public var count: Int { members.count }

    /// The member's kind, or nil when absent. When a key repeats, the last one wins (as in
    /// most JSON libraries).
    public func kind(of key: String) -> Kind? {
        member(key)?.kind
    }

    public func contains(_ key: String) -> Bool { member(key) != nil }

    /// The string value of `key`; nil when absent or JSON null; an error when another kind.
    public func string(_ key: String) throws(JSONError) -> String? {
        guard let m = member(key) else { return nil }
        switch m.kind {
        case .null: return nil
        case .string: return try decodeString(from: Int(m.valueStart), to: Int(m.valueEnd))
        default: throw JSONError.wrongKind(key: key, expected: "string", found: m.kind)
        }
    }

    /// An identifier that producers send either as a string or as an integer.
    public func identifier(_ key: String) throws(JSONError) -> String? {
        guard let m = member(key) else { return nil }
        switch m.kind {
        case .null: return nil
        case .string: return try decodeString(from: Int(m.valueStart), to: Int(m.valueEnd))
        case .number:
            let text = String(decoding: bytes[Int(m.valueStart)..<Int(m.valueEnd)], as: UTF8.self)
            guard Int64(text) != nil else {
                throw JSONError.wrongKind(key: key, expected: "string or integer", found: .number)
            }
            return text
        default: throw JSONError.wrongKind(key: key, expected: "string or integer", found: m.kind)
        }
    }

    /// A JSON number as a Double; nil when absent or null.
    public func number(_ key: String) throws(JSONError) -> Double? {
        guard let m = member(key) else { return nil }
        switch m.kind {
        case .null: return nil
        case .number:
            let text = String(decoding: bytes[Int(m.valueStart)..<Int(m.valueEnd)], as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw JSONError.wrongKind(key: key, expected: "finite number", found: .number)
            }
            return value
        default: throw JSONError.wrongKind(key: key, expected: "number", found: m.kind)
        }
    }

    /// The raw JSON text of a member's value.
    public func rawValue(_ key: String) -> String? {
        guard let m = member(key) else { return nil }
        return String(decoding: bytes[Int(m.valueStart)..<Int(m.valueEnd)], as: UTF8.self)
    }

    /// The keys of all members, in document order.
    public var keys: [String] {
        members.map { m in
            (try? decodeString(from: Int(m.keyStart), to: Int(m.keyEnd))) ?? ""
        }
    }

    func member(_ key: String) -> Member? {
        var key = key
        return key.withUTF8 { k -> Member? in
            var found: Member?
            for m in members {
                if m.keyHasEscapes {
                    if let decoded = try? decodeString(from: Int(m.keyStart), to: Int(m.keyEnd)),
                        decoded.utf8.elementsEqual(k)
                    {
                        found = m
                    }
                    continue
                }
                let length = Int(m.keyEnd - m.keyStart) - 2
                guard length == k.count else { continue }
                var equal = true
                var i = 0
                let base = Int(m.keyStart) + 1
                while i < length {
                    if bytes[base + i] != k[i] {
                        equal = false
                        break
                    }
                    i += 1
                }
                if equal { found = m }
            }
            return found
        }
    }

    /// Decodes the JSON string literal in `bytes[start..<end]` (quotes included).
    func decodeString(from start: Int, to end: Int) throws(JSONError) -> String {
        let inner = (start + 1)..<(end - 1)
        if !bytes[inner].contains(UInt8(ascii: "\\")) {
            return String(decoding: bytes[inner], as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(inner.count)
        var i = inner.lowerBound
        while i < inner.upperBound {
            let b = bytes[i]
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = JSONParser.hexValue(bytes, at: i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // The parser guaranteed a following \uDC00-\uDFFF escape.
                    let low = JSONParser.hexValue(bytes, at: i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let s = Unicode.Scalar(scalar) else { throw JSONError.invalid("lone surrogate in string", at: i) }
                out.append(contentsOf: Array(String(Character(s)).utf8))
            default:
                throw JSONError.invalid("bad escape", at: i)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public enum JSONError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalid(String, at: Int)
    case notAnObject
    case wrongKind(key: String, expected: String, found: JSONObject.Kind)

    public var description: String {
        switch self {
        case .invalid(let what, let offset): "invalid JSON at byte \(offset): \(what)"
        case .notAnObject: "JSON value is not an object"
        case .wrongKind(let key, let expected, let found): "field \(key): expected \(expected), found \(found)"
        }
    }
}
