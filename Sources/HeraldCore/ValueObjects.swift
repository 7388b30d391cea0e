/// Value objects validate themselves at construction: invalid data never reaches a handler.

/// Why a value was rejected. The message names the field and never repeats a long value.
public struct ValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// Shared checks for identifiers that end up in Redis keys, SQL parameters and logs.
enum IdentifierRules {
    /// C0, DEL and C1 controls (Unicode category Cc), checked on the UTF-8 bytes: the common
    /// all-ASCII case never touches Unicode property tables.
    static func containsControlCharacter(_ value: String) -> Bool {
        var asciiOnly = true
        for b in value.utf8 {
            if b < 0x20 || b == 0x7F { return true }
            if b >= 0x80 { asciiOnly = false }
        }
        if asciiOnly { return false }
        return value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// One pass over the UTF-8 bytes; Unicode property tables are consulted only for
    /// non-ASCII text (this runs for several fields of every event).
    static func validate(_ value: String, field: String, maxLength: Int) throws(ValidationError) {
        let utf8 = value.utf8
        guard let first = utf8.first, let last = utf8.last else {
            throw ValidationError(field: field, reason: "must not be empty")
        }
        if utf8.count > maxLength {
            throw ValidationError(field: field, reason: "longer than \(maxLength) bytes")
        }
        var asciiOnly = true
        for b in utf8 {
            if b < 0x20 || b == 0x7F { throw ValidationError(field: field, reason: "contains a control character") }
            if b >= 0x80 { asciiOnly = false }
        }
        if asciiOnly {
            if first == 0x20 || last == 0x20 {
                throw ValidationError(field: field, reason: "has leading or trailing whitespace")
            }
            return
        }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError(field: field, reason: "contains a control character")
        }
        if value.unicodeScalars.first!.properties.isWhitespace || value.unicodeScalars.last!.properties.isWhitespace {
            throw ValidationError(field: field, reason: "has leading or trailing whitespace")
        }
    }
}

/// The name of a role whose tokens must be re-checked (`invalid_role: {role}`).
public struct RoleName: Hashable, Sendable, CustomStringConvertible {
    public static let maxLength = 255
    public let rawValue: String

    public init(_ rawValue: String) throws(ValidationError) {
        try IdentifierRules.validate(rawValue, field: "role", maxLength: Self.maxLength)
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// A user's identifier as the auth service publishes it (a UUID string in the platform's
/// services; any printable identifier accepted).
public struct UserID: Hashable, Sendable, CustomStringConvertible {
    public static let maxLength = 128
    public let rawValue: String

    public init(_ rawValue: String, field: String = "user_id") throws(ValidationError) {
        try IdentifierRules.validate(rawValue, field: field, maxLength: Self.maxLength)
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// The identity of one event, used for de-duplication and in dead-letter provenance.
public struct EventID: Hashable, Sendable, CustomStringConvertible {
    public static let maxLength = 200
    public let rawValue: String

    public init(_ rawValue: String) throws(ValidationError) {
        try IdentifierRules.validate(rawValue, field: "event id", maxLength: Self.maxLength)
        self.rawValue = rawValue
    }

    /// The id of an event whose producer gave none: `{topic}/{partition}/{offset}@{timestamp}#{hash}`,
    /// where the timestamp is the record's (milliseconds since the epoch, 0 when it has none)
    /// and the hash is 64-bit FNV-1a over its key and value, in hex.
    ///
    /// Stable across redeliveries of the record, and different for a record that merely
    /// lands on the same coordinates: offsets start again at 0 when a topic is deleted and
    /// recreated, or an in-memory broker restarts, and the coordinates alone would make new
    /// events look like the old ones the inbox already holds.
    public init(derivedFrom message: InboundMessage) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        for byte in message.key ?? [] { mix(byte) }
        mix(0xFF)  // never a UTF-8 byte: separates key from value
        for byte in message.value ?? [] { mix(byte) }
        let hex = String(hash, radix: 16)
        self.rawValue =
            "\(message.topic)/\(message.partition)/\(message.offset)@\(message.timestamp ?? 0)#"
            + String(repeating: "0", count: 16 - hex.count) + hex
    }

    public var description: String { rawValue }
}

/// An event type name such as `RoleDeleted`.
public struct EventType: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maxLength = 128
    public let rawValue: String

    public init(_ rawValue: String) throws(ValidationError) {
        try IdentifierRules.validate(rawValue, field: "event type", maxLength: Self.maxLength)
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public var description: String { rawValue }
}

/// A login name, shown in greetings.
public struct Username: Hashable, Sendable, CustomStringConvertible {
    public static let maxLength = 150
    public let rawValue: String

    public init(_ rawValue: String) throws(ValidationError) {
        try IdentifierRules.validate(rawValue, field: "username", maxLength: Self.maxLength)
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// A mailbox address. Deliberately strict: one `@`, a non-empty local part of printable
/// ASCII without spaces or the characters that would let it escape a mail header, and a
/// domain of dot-separated labels. Internationalised addresses (SMTPUTF8) are accepted
/// when their characters are letters, digits or combining marks.
///
/// Checked on Unicode scalars, not on `Character`s: a Character is a grapheme cluster, and
/// a letter that prepends itself to the next character (U+0D4E MALAYALAM LETTER DOT REPH,
/// other Indic prepended letters) forms one Character with a following `@`, `,`, `:`, `<`
/// or space, so a check of Characters once let a second `@`, a comma or a colon reach the
/// To header and the SMTP envelope.
public struct EmailAddress: Hashable, Sendable, CustomStringConvertible {
    public static let maxLength = 254
    public let rawValue: String

    public init(_ rawValue: String, field: String = "email") throws(ValidationError) {
        guard !rawValue.isEmpty else { throw ValidationError(field: field, reason: "must not be empty") }
        guard rawValue.utf8.count <= Self.maxLength else {
            throw ValidationError(field: field, reason: "longer than \(Self.maxLength) bytes")
        }
        let invalid = ValidationError(field: field, reason: "is not an email address")
        let scalars = Array(rawValue.unicodeScalars)
        guard let at = scalars.firstIndex(of: "@"), scalars.lastIndex(of: "@") == at else { throw invalid }
        let local = scalars[..<at]
        let domain = scalars[(at + 1)...]
        guard !local.isEmpty, !domain.isEmpty, Self.utf8Count(local) <= 64 else { throw invalid }
        for scalar in local {
            if scalar.isASCII {
                guard scalar.value > 0x20 && scalar.value < 0x7F, !Self.forbiddenInLocal.contains(scalar) else { throw invalid }
            } else if !Self.isWordScalar(scalar) {
                throw invalid
            }
        }
        if local.first == "." || local.last == "." || zip(local, local.dropFirst()).contains(where: { $0 == "." && $1 == "." }) {
            throw invalid
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { throw invalid }
        for label in labels {
            guard !label.isEmpty, Self.utf8Count(label) <= 63, label.first != "-", label.last != "-",
                label.allSatisfy({
                    $0 == "-" || ($0.isASCII ? $0.properties.isAlphabetic || ("0"..."9").contains($0) : Self.isWordScalar($0))
                })
            else { throw invalid }
        }
        self.rawValue = rawValue
    }

    /// RFC 5322 specials and space: never in a local part Herald writes into a header.
    static let forbiddenInLocal: Set<Unicode.Scalar> = [" ", "\"", "(", ")", ",", ":", ";", "<", ">", "[", "\\", "]"]

    /// A non-ASCII scalar of a word: a letter, a digit or other number, a combining mark, or
    /// the zero-width (non-)joiner some scripts write words with. Never a space, a control,
    /// a symbol or punctuation.
    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: break
        }
        return scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == "\u{200C}" || scalar == "\u{200D}"
    }

    static func utf8Count(_ scalars: ArraySlice<Unicode.Scalar>) -> Int {
        scalars.reduce(0) { $0 + UTF8.width($1) }
    }

    public var description: String { rawValue }
}

/// A BCP 47 language tag such as `en`, `pt-BR`.
public struct LanguageTag: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(ValidationError) {
        let subtags = rawValue.split(separator: "-", omittingEmptySubsequences: false)
        guard rawValue.utf8.count <= 35, let first = subtags.first, (2...8).contains(first.count),
            first.allSatisfy({ $0.isASCII && $0.isLetter }),
            subtags.dropFirst().allSatisfy({ (1...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } })
        else {
            throw ValidationError(field: "locale", reason: "is not a language tag")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// A point in time, in whole milliseconds since the Unix epoch.
public struct EventTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    /// Whole seconds since the epoch, rounded down: the value written to revocation keys.
    public var epochSeconds: Int64 {
        RFC3339.floorDivision(millisecondsSinceEpoch, 1000).quotient
    }

    public static func < (lhs: EventTime, rhs: EventTime) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public var description: String { RFC3339.format(self) }
}
