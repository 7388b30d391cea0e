import HeraldCore
import Testing

@Suite("Email masking in logs")
struct EmailMaskingTests {
    static let cases: [(String, String)] = [
        ("ada.lovelace@example.com", "a***@example.com"),
        ("sent to ada@example.com.", "sent to a***@example.com."),
        ("o'brien+alerts@mail.example.co.uk", "o***@mail.example.co.uk"),
        ("email=ada@example.com", "email=a***@example.com"),
        ("Ada <ada@example.com>", "Ada <a***@example.com>"),
        // Non-ASCII local parts and internationalized domains (RFC 6531), composed or not.
        ("jörg@exämple.de", "j***@exämple.de"),
        ("jo\u{308}rg@exa\u{308}mple.de", "j***@exa\u{308}mple.de"),
        ("用户@例子.广告", "用***@例子.广告"),
        ("用户@例子。广告", "用***@例子。广告"),
        ("अजय@डाटामेल.भारत", "अ***@डाटामेल.भारत"),
        ("θέμις@παράδειγμα.ελ", "θ***@παράδειγμα.ελ"),
        ("ödön@xn--exmple-cua.de", "ö***@xn--exmple-cua.de"),
        ("two: jörg@exämple.de, 用户@例子.广告", "two: j***@exämple.de, 用***@例子.广告"),
        // Not addresses: unchanged.
        ("no address here", "no address here"),
        ("meet @ noon", "meet @ noon"),
        ("root@localhost", "root@localhost"),
    ]

    @Test("the local part is masked, the domain kept", arguments: cases)
    func masks(_ input: String, _ expected: String) {
        #expect(EmailMasking.mask(input) == expected)
    }

    @Test("nothing of a non-ASCII local part survives but its first character")
    func nothingLeaks() {
        for (address, secret) in [("jörg.müller@exämple.de", "örg.müller"), ("用户名字@例子.广告", "户名字"), ("zoë@example.com", "oë")] {
            let masked = EmailMasking.mask("to \(address) now")
            #expect(!masked.contains(secret), "\(masked)")
            #expect(masked.contains("***@"), "\(masked)")
        }
    }
}
