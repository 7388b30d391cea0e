import HeraldCore
import Testing

/// `herald dlq show`'s view of a record's bytes: safe on a terminal, still saying what the
/// bytes were.
@Suite("Printable bytes")
struct PrintableBytesTests {
    static func shown(_ bytes: [UInt8], limit: Int? = nil, mask: Bool = false) -> PrintableBytes.Rendered {
        PrintableBytes.render(bytes, limit: limit, maskEmails: mask)
    }

    @Test("printable UTF-8, any script, is shown as it is")
    func plain() {
        for text in [#"{"event_type":"RoleDeleted","role":"editor"}"#, "jörg 用户 θέμις 👩‍💻", ""] {
            #expect(Self.shown(Array(text.utf8)) == PrintableBytes.Rendered(text: text, truncated: false))
        }
    }

    @Test("control characters, terminal escapes and bidirectional controls are escaped; a backslash is doubled")
    func controls() {
        let cases: [(String, String)] = [
            ("a\nb\rc\td", #"a\nb\rc\td"#),
            ("\u{1B}[31mred\u{1B}[0m", #"\x1B[31mred\x1B[0m"#),
            ("nul\u{0}del\u{7F}", #"nul\x00del\x7F"#),
            ("c1\u{9B}31m", #"c1\u{009B}31m"#),
            ("admin\u{202E}txt.exe", #"admin\u{202E}txt.exe"#),
            ("line\u{2028}sep", #"line\u{2028}sep"#),
            (#"back\slash \x41"#, #"back\\slash \\x41"#),
        ]
        for (input, expected) in cases {
            #expect(Self.shown(Array(input.utf8)).text == expected, "\(input.debugDescription)")
        }
    }

    @Test("bytes that are not UTF-8 are shown as \\xNN, the valid text around them kept")
    func invalid() {
        #expect(Self.shown([0x61, 0xFF, 0x62]).text == #"a\xFFb"#)
        #expect(Self.shown([0xC3]).text == #"\xC3"#)
        #expect(Self.shown([0xC3, 0x28]).text == #"\xC3("#)
        #expect(Self.shown([0xED, 0xA0, 0x80]).text.hasPrefix(#"\xED"#), "a surrogate is not UTF-8")
        #expect(Self.shown([0xC0, 0xAF]).text == #"\xC0\xAF"#, "an overlong form is not UTF-8")
        #expect(Self.shown(Array("é".utf8) + [0x80] + Array("ü".utf8)).text == #"é\x80ü"#)
    }

    @Test("a long value is cut at the limit, on a character or escape boundary, and says so")
    func truncated() {
        let long = Array(String(repeating: "a", count: 5000).utf8)
        let cut = Self.shown(long, limit: 100)
        #expect(cut.truncated)
        #expect(cut.text == String(repeating: "a", count: 100))
        #expect(!Self.shown(long, limit: 5000).truncated)
        #expect(!Self.shown(long).truncated)
        // An escape is never split: "\x1B" is 4 bytes, and 3 are left.
        let escapes = Self.shown(Array("ab\u{1B}c".utf8), limit: 5)
        #expect(escapes == PrintableBytes.Rendered(text: "ab", truncated: true))
        // Nor a character: "é" is 2 bytes.
        #expect(Self.shown(Array("aé".utf8), limit: 2) == PrintableBytes.Rendered(text: "a", truncated: true))
        // Far beyond the limit, a multi-byte character at the read window's edge is not shown as bytes.
        let wide = Array(String(repeating: "é", count: 4000).utf8)
        let shown = Self.shown(wide, limit: 10)
        #expect(shown == PrintableBytes.Rendered(text: String(repeating: "é", count: 5), truncated: true))
        for limit in 0..<40 {
            let rendered = Self.shown(wide, limit: limit)
            #expect(rendered.text.utf8.count <= limit)
            #expect(!rendered.text.contains(#"\x"#), "limit \(limit): \(rendered.text)")
        }
    }

    @Test("email addresses are masked as in the logs, before the value is cut")
    func masking() {
        let value = Array(#"{"email":"ada.lovelace@example.com","note":"to jörg@exämple.de"}"#.utf8)
        #expect(Self.shown(value, mask: true).text == #"{"email":"a***@example.com","note":"to j***@exämple.de"}"#)
        #expect(Self.shown(value).text.contains("ada.lovelace@example.com"), "masking is asked for")
        // An address across the cut is masked as a whole: its local part never shows.
        let prefix = String(repeating: "x", count: 95) + " "
        let straddling = Array((prefix + "ada.lovelace@example.com and more").utf8)
        for limit in 96..<130 {
            let text = Self.shown(straddling, limit: limit, mask: true).text
            #expect(!text.contains("da.lovelace"), "limit \(limit): \(text)")
        }
        // In a value far longer than the limit.
        let big = Array((String(repeating: "y", count: 2000) + " grace.hopper@example.com " + String(repeating: "z", count: 9000)).utf8)
        let text = Self.shown(big, limit: 2010, mask: true).text
        #expect(text.hasSuffix(" g***@exam"), "\(text.suffix(20))")
    }

    @Test("a String (a header name, an event type) the same way")
    func strings() {
        #expect(PrintableBytes.render("Type\u{1B}]0;x\u{7}").text == #"Type\x1B]0;x\x07"#)
        #expect(PrintableBytes.render("ops@example.com", maskEmails: true).text == "o***@example.com")
    }
}
