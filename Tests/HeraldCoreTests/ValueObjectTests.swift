import HeraldCore
import Testing

/// Value objects validate themselves: invalid data never reaches a handler.
@Suite("Value objects")
struct ValueObjectTests {
    static func text(_ count: Int, _ character: Character = "x") -> String {
        String(repeating: character, count: count)
    }

    /// Values every identifier-like object must refuse.
    static let badIdentifiers: [String] = [
        "", " leading", "trailing ", "\tadmin", "admin\n", "ad\nmin", "a\u{0}b", "\u{0}", "admin\r\nX-Injected: 1",
        "\u{7F}", "a\u{85}b", "\u{A0}nbsp", "nbsp\u{3000}", "bell\u{7}",
    ]

    /// Values every identifier-like object accepts verbatim (they are never interpolated).
    static let verbatimIdentifiers: [String] = [
        "admin", "Robert'); DROP TABLE roles;--", "1; DROP TABLE users;--", "' OR '1'='1", "ロール",
        "with inner spaces", "%s%n", "${jndi:ldap://x}", "<script>", "a\u{200B}b",
    ]

    // MARK: RoleName, UserID, EventType, EventID, Username

    @Test("identifiers accept printable values verbatim", arguments: verbatimIdentifiers)
    func identifiersAcceptVerbatim(_ value: String) throws {
        #expect(try RoleName(value).rawValue == value)
        #expect(try UserID(value).rawValue == value)
        #expect(try EventType(value).rawValue == value)
        #expect(try EventID(value).rawValue == value)
        #expect(try Username(value).rawValue == value)
    }

    @Test("identifiers refuse empty values, controls and surrounding whitespace", arguments: badIdentifiers)
    func identifiersRefuse(_ value: String) {
        #expect(throws: ValidationError.self) { try RoleName(value) }
        #expect(throws: ValidationError.self) { try UserID(value) }
        #expect(throws: ValidationError.self) { try EventType(value) }
        #expect(throws: ValidationError.self) { try EventID(value) }
        #expect(throws: ValidationError.self) { try Username(value) }
    }

    struct Limit: Sendable, CustomTestStringConvertible {
        let name: String
        let max: Int
        let make: @Sendable (String) throws -> Void
        var testDescription: String { "\(name) (\(max) bytes)" }
    }

    static let limits: [Limit] = [
        Limit(name: "RoleName", max: 255) { _ = try RoleName($0) },
        Limit(name: "UserID", max: 128) { _ = try UserID($0) },
        Limit(name: "EventType", max: 128) { _ = try EventType($0) },
        Limit(name: "EventID", max: 200) { _ = try EventID($0) },
        Limit(name: "Username", max: 150) { _ = try Username($0) },
        // A 64-byte local part and labels of at most 63 bytes: only the total can be too long.
        Limit(name: "EmailAddress", max: 254) {
            _ = try EmailAddress(text(64) + "@" + text(63) + "." + text(63) + "." + text($0.count - 65 - 128))
        },
    ]

    @Test("lengths are limited in UTF-8 bytes", arguments: limits)
    func lengthLimits(_ limit: Limit) {
        #expect(throws: Never.self) { try limit.make(Self.text(limit.max)) }
        #expect(throws: ValidationError.self) { try limit.make(Self.text(limit.max + 1)) }
        if limit.name != "EmailAddress" {
            // Two bytes per character: half the characters fit.
            #expect(throws: Never.self) { try limit.make(Self.text(limit.max / 2, "é")) }
            #expect(throws: ValidationError.self) { try limit.make(Self.text(limit.max / 2 + 1, "é")) }
        }
    }

    @Test("errors name the field and never repeat the value")
    func errorMessages() {
        let long = "secret-" + Self.text(300)
        #expect(throws: ValidationError(field: "role", reason: "longer than 255 bytes")) { try RoleName(long) }
        #expect(throws: ValidationError(field: "user_id", reason: "must not be empty")) { try UserID("") }
        #expect(throws: ValidationError(field: "owner_id", reason: "contains a control character")) {
            try UserID("a\u{0}", field: "owner_id")
        }
        #expect(throws: ValidationError(field: "username", reason: "has leading or trailing whitespace")) {
            try Username(" ada")
        }
        do throws(ValidationError) {
            _ = try EmailAddress("secret-value@@example.com", field: "new_email")
            Issue.record("accepted")
        } catch {
            #expect(error.field == "new_email")
            #expect(!error.description.contains("secret-value"))
        }
    }

    @Test("a derived event id needs no validation")
    func derivedEventID() {
        let message = InboundMessage(topic: "auth_service_topic", partition: 11, offset: 9_000_000_000, value: nil)
        #expect(EventID(derivedFrom: message).description.hasPrefix("auth_service_topic/11/9000000000@0#"))
    }

    // MARK: EmailAddress

    @Test(
        "email addresses Herald mails",
        arguments: [
            "ada@example.com", "ada.lovelace+herald@mail.example.co.uk", "o'brien@example.ie",
            "first_last-1!#$%&*/=?^`{|}~@example.com", "ADA@EXAMPLE.COM", "user@xn--bcher-kva.example",
            "ünïcødé@bücher.de", "joão@exemplo.com.br", "用户@例子.广告", "a@1.2", "jose\u{301}@example.com",
            "ada\u{D4E}@example.com", "सत्य@उदाहरण.भारत",
            text(64) + "@example.com", "a@" + text(63) + ".com",
        ])
    func emailAccepts(_ value: String) throws {
        #expect(try EmailAddress(value).rawValue == value)
    }

    @Test(
        "email addresses Herald refuses",
        arguments: [
            "", "not-an-email", "a@b.com\r\nBcc: x", "a@b.com\nBcc: x", "a@b.com\rBcc: x", "ada\r\n@example.com",
            "ada\u{0}@example.com", "ada@example.com\u{0}", "ada@localhost", "a..b@example.com", ".ada@example.com",
            "ada.@example.com", "a b@example.com", "\"ada\"@example.com", "ada(comment)@example.com",
            "Ada <ada@example.com>", "<ada@example.com>", "ada@-example.com", "ada@example-.com", "ada@exa_mple.com",
            "ada@@example.com", "a@b@example.com", "@example.com", "ada@", "ada@example..com", "ada@.example.com",
            "ada@example.com.", "ada@[127.0.0.1]", "ada@example.com,bob@example.com", "ada;bob@example.com",
            "ada\u{A0}@example.com", "€@example.com", "ada@exa€mple.com", "ada@example.com ",
            text(65) + "@example.com", "ada@" + text(64) + ".com",
            "ada@" + Array(repeating: text(63), count: 4).joined(separator: "."),
            // Found by the mail fuzz target: U+0D4E (a prepended letter) makes one Character
            // of itself and the next one, so a Character-level check let `:`, `,`, a second `@`,
            // a space or `<` through to the To header and the SMTP envelope.
            "user+tag@s\u{D4E}:b.example.com", "x\u{D4E}@attacker.example@victim.com",
            "victim@ex.com\u{D4E},attacker\u{D4E}@evil.com", "a@b\u{D4E} c.com", "ada\u{D4E}<x@example.com",
            "ada@example.com\u{D4E}>", "ada\u{600}@example.com",
        ])
    func emailRefuses(_ value: String) {
        #expect(throws: ValidationError.self) { try EmailAddress(value) }
    }

    // MARK: LanguageTag

    @Test(
        "language tags",
        arguments: ["en", "EN", "pt-BR", "zh-Hant-TW", "de-CH-1996", "sr-Latn-RS", "es-419", "abcdefgh", "ab-" + text(8)])
    func languageAccepts(_ value: String) throws {
        #expect(try LanguageTag(value).rawValue == value)
    }

    @Test(
        "not language tags",
        arguments: [
            "", "e", "english language", "en_US", "en-", "-en", "abcdefghi", "en-abcdefghi", "en-GB\n", "en--GB",
            "é", "1en", "en-GB\u{0}", "ab-" + Array(repeating: "cdefgh", count: 5).joined(separator: "-"),
        ])
    func languageRefuses(_ value: String) {
        #expect(throws: ValidationError(field: "locale", reason: "is not a language tag")) { try LanguageTag(value) }
    }
}
