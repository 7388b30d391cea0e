/// A query parameter. Parameters travel separately from the SQL text (`PQexecParams`, text
/// format), so no value is ever parsed as SQL.
///
/// `.int`, `.bool` and `.intArray` are sent as `bigint`, `boolean` and `bigint[]`. `.text`
/// and `.textArray` are sent untyped, like a quoted literal: PostgreSQL takes their type from
/// the context (a `uuid`, `jsonb` or `timestamptz` column, `= ANY($1)` against such a column).
/// Where the context says nothing, cast: `unnest($1::text[])`, `$1::text`.
public enum PostgresValue: Sendable, Hashable {
    case null
    case text(String)
    case int(Int64)
    case bool(Bool)
    /// Elements may be NULL. Sent as an array literal with every element quoted.
    case textArray([String?])
    case intArray([Int64])

    /// `.text`, or `.null` for nil.
    public init(_ value: String?) {
        self = value.map(PostgresValue.text) ?? .null
    }

    /// `.int`, or `.null` for nil.
    public init(_ value: Int64?) {
        self = value.map(PostgresValue.int) ?? .null
    }

    /// `.bool`, or `.null` for nil.
    public init(_ value: Bool?) {
        self = value.map(PostgresValue.bool) ?? .null
    }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) {
        self = .text(value)
    }

    public init(integerLiteral value: Int64) {
        self = .int(value)
    }

    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }
}

// MARK: - Wire form

extension PostgresValue {
    /// The type OID sent with the parameter: 0 lets the server infer it.
    var typeOID: UInt32 {
        switch self {
        case .null, .text, .textArray: 0
        case .int: 20  // int8
        case .bool: 16  // bool
        case .intArray: 1016  // _int8
        }
    }

    /// True when the value holds a NUL byte, which a libpq text parameter cannot carry (it
    /// would end the string there and silently truncate the value).
    var containsNUL: Bool {
        switch self {
        case .null, .int, .bool, .intArray: false
        case .text(let text): text.utf8.contains(0)
        case .textArray(let elements): elements.contains { $0?.utf8.contains(0) ?? false }
        }
    }

    /// The text form PostgreSQL parses, nil for SQL NULL.
    var textForm: String? {
        switch self {
        case .null: nil
        case .text(let text): text
        case .int(let value): String(value)
        case .bool(let value): value ? "t" : "f"
        case .textArray(let elements): Self.arrayLiteral(elements)
        case .intArray(let values): "{" + values.map(String.init).joined(separator: ",") + "}"
        }
    }

    /// `{"a","b\"c",NULL}`: every element double-quoted with `\` and `"` escaped, so commas,
    /// braces, spaces, the word NULL and empty strings stay data; a nil element is `NULL`.
    static func arrayLiteral(_ elements: [String?]) -> String {
        var literal = "{"
        literal.reserveCapacity(2 + elements.reduce(0) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (index, element) in elements.enumerated() {
            if index > 0 { literal.append(",") }
            guard let element else {
                literal.append("NULL")
                continue
            }
            literal.append("\"")
            for character in element.unicodeScalars {
                if character == "\"" || character == "\\" { literal.unicodeScalars.append("\\") }
                literal.unicodeScalars.append(character)
            }
            literal.append("\"")
        }
        literal.append("}")
        return literal
    }
}
