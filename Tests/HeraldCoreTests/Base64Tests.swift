import HeraldCore
import Testing

@Suite("Base64")
struct Base64Tests {
    // RFC 4648, section 10.
    @Test(
        "the RFC 4648 test vectors, padded and unpadded",
        arguments: [
            ("", "", ""), ("f", "Zg==", "Zg"), ("fo", "Zm8=", "Zm8"), ("foo", "Zm9v", "Zm9v"), ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"), ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ])
    func vectors(_ input: String, _ padded: String, _ unpadded: String) {
        #expect(Base64.encode(Array(input.utf8)) == padded)
        #expect(Base64.encode(Array(input.utf8), padded: false) == unpadded)
    }

    @Test("the URL alphabet uses - and _ where the standard one uses + and /")
    func urlAlphabet() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF]
        #expect(Base64.encode(bytes) == "+/+/")
        #expect(Base64.encode(bytes, alphabet: .url) == "-_-_")
        // A link token: 32 bytes are 43 characters without padding.
        #expect(Base64.encode([UInt8](repeating: 0xFF, count: 32), alphabet: .url, padded: false).count == 43)
    }
}
