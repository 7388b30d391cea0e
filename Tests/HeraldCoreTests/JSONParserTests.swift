import Testing

@testable import HeraldCore

/// The strict RFC 8259 parser behind every envelope.
@Suite("JSON parser")
struct JSONParserTests {
    static func parse(_ text: String) throws(JSONError) -> JSONObject {
        try JSONObject(parsing: Array(text.utf8))
    }

    static func parse(bytes: [UInt8]) throws(JSONError) -> JSONObject {
        try JSONObject(parsing: bytes)
    }

    static func nested(_ depth: Int) -> String {
        #"{"a":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
    }

    @Test(
        "valid documents",
        arguments: [
            "{}", " \t\r\n{ }\n", #"{"a":1}"#, #"{"a":{"b":[1,2,{"c":null}]},"d":[]}"#,
            #"{"n":[0,-0,1.5,-1.25e+3,1E-5,1e10,123456789012345678901234567890]}"#,
            #"{"t":true,"f":false,"z":null}"#, #"{"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#,
            #"{"é":"ü","😀":"日本語"}"#, #"{"del":"\#u{7F}"}"#, #"{ "a" : 1 , "b" : [ ] }"#,
            nested(JSONParser.maxDepth),
        ])
    func valid(_ text: String) throws {
        _ = try Self.parse(text)
    }

    @Test(
        "invalid documents",
        arguments: [
            "", "   ", "{", "}", #"{"a":1}x"#, #"{"a":1} {}"#, #"{"a":1,}"#, #"{,}"#, #"{"a" 1}"#, "{a:1}",
            "{'a':1}", #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":-}"#, #"{"a":1e}"#, #"{"a":+1}"#,
            #"{"a":NaN}"#, #"{"a":Infinity}"#, #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#,
            #"{"a":"\u12G4"}"#, #"{"a":"\ud800"}"#, #"{"a":"\udc00"}"#, #"{"a":"\ud800\u0041"}"#,
            #"{"a":"\ud800\n"}"#, "{\"a\":\"\u{01}\"}", "{\"a\":\"line\nbreak\"}", "{\"a\":\"tab\there\"}",
            #"{"a":"unterminated"#, #"{"a":[1,2}"#, #"{"a":{"b":1]}"#, #"{"a":1 "b":2}"#, "[1,2", nested(JSONParser.maxDepth + 1),
            nested(100_000),
        ])
    func invalid(_ text: String) {
        #expect(throws: JSONError.self) { try Self.parse(text) }
    }

    @Test(
        "invalid UTF-8 is rejected",
        arguments: [
            [0xC0, 0x80],  // overlong NUL
            [0xE0, 0x80, 0xAF],  // overlong '/'
            [0xED, 0xA0, 0x80],  // an encoded surrogate
            [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
            [0xF5, 0x80, 0x80, 0x80],
            [0xFF], [0x80], [0xE2, 0x82],  // truncated
            [0xC3, 0x28],  // bad continuation
        ] as [[UInt8]])
    func invalidUTF8(_ sequence: [UInt8]) {
        let bytes = Array(#"{"a":""#.utf8) + sequence + Array(#""}"#.utf8)
        #expect(throws: JSONError.self) { try Self.parse(bytes: bytes) }
        // And as a key.
        let key = Array(#"{""#.utf8) + sequence + Array(#"":1}"#.utf8)
        #expect(throws: JSONError.self) { try Self.parse(bytes: key) }
    }

    @Test("valid UTF-8 at the edges of each range is accepted")
    func validUTF8Edges() throws {
        for scalar: UInt32 in [0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF] {
            let s = String(Unicode.Scalar(scalar)!)
            let object = try Self.parse(#"{"a":""# + s + #""}"#)
            #expect(try object.string("a") == s)
        }
    }

    @Test("a JSON value that is not an object is notAnObject, garbage is invalid")
    func notAnObject() {
        for text in ["[]", "[1,2]", #""str""#, "5", "-1.5e3", "null", "true", "  [ ]  "] {
            #expect(throws: JSONError.notAnObject, "\(text)") { try Self.parse(text) }
        }
        for text in ["[1,2", "nope", "5 6"] {
            #expect(throws: JSONError.self, "\(text)") { try Self.parse(text) }
            #expect((try? Self.parse(text)) == nil)
            do throws(JSONError) {
                _ = try Self.parse(text)
            } catch {
                #expect(error != .notAnObject, "\(text) is not valid JSON at all")
            }
        }
    }

    @Test("deep nesting is refused without exhausting the stack")
    func deepNesting() {
        #expect(throws: JSONError.invalid("nested too deeply", at: 5 + JSONParser.maxDepth)) {
            try Self.parse(Self.nested(JSONParser.maxDepth + 1))
        }
        let objects = String(repeating: #"{"a":"#, count: 50_000) + "1" + String(repeating: "}", count: 50_000)
        #expect(throws: JSONError.self) { try Self.parse(objects) }
    }

    @Test("string escapes decode, including surrogate pairs")
    func stringEscapes() throws {
        let object = try Self.parse(
            #"{"s":"a\"b\\c\/d\b\f\n\r\t","u":"\u00e9\u00E9","p":"\ud83d\ude00!","z":"\u0000","m":"é\u0041😀","e":""}"#)
        #expect(try object.string("s") == "a\"b\\c/d\u{8}\u{C}\n\r\t")
        #expect(try object.string("u") == "éé")
        #expect(try object.string("p") == "😀!")
        #expect(try object.string("z") == "\u{0}")
        #expect(try object.string("m") == "éA😀")
        #expect(try object.string("e") == "")
    }

    @Test("escaped keys are found by their decoded name")
    func escapedKeys() throws {
        let object = try Self.parse(#"{"\u0061":1,"b\"c":2,"\ud83d\ude00":3,"tab\there":4}"#)
        #expect(object.kind(of: "a") == .number)
        #expect(object.rawValue("b\"c") == "2")
        #expect(object.rawValue("😀") == "3")
        #expect(object.rawValue("tab\there") == "4")
        #expect(object.keys == ["a", "b\"c", "😀", "tab\there"])
        #expect(!object.contains("\\u0061"))
    }

    @Test("duplicate keys: the last one wins, escaped or not")
    func duplicateKeys() throws {
        #expect(try Self.parse(#"{"a":1,"a":"two"}"#).string("a") == "two")
        #expect(try Self.parse(#"{"a":1,"\u0061":2}"#).rawValue("a") == "2")
        #expect(try Self.parse(#"{"\u0061":1,"a":3}"#).rawValue("a") == "3")
        #expect(try Self.parse(#"{"a":1,"b":0,"a":null}"#).string("a") == nil)
        #expect(try Self.parse(#"{"a":1,"a":2}"#).count == 2)
    }

    @Test("members are found by exact name only")
    func exactNames() throws {
        let object = try Self.parse(#"{"user_id":"u","User_Id":"x","user_id2":"y"}"#)
        #expect(try object.string("user_id") == "u")
        #expect(try object.string("user") == nil)
        #expect(!object.contains("USER_ID"))
        #expect(object.count == 3)
    }

    @Test("kinds and typed accessors")
    func accessors() throws {
        let object = try Self.parse(
            #"{"s":"x","n":42,"neg":-7,"f":1.5,"e":1e3,"big":12345678901234567890,"o":{},"a":[],"t":true,"z":null,"inf":1e400}"#)
        #expect(object.kind(of: "s") == .string)
        #expect(object.kind(of: "n") == .number)
        #expect(object.kind(of: "o") == .object)
        #expect(object.kind(of: "a") == .array)
        #expect(object.kind(of: "t") == .bool)
        #expect(object.kind(of: "z") == .null)
        #expect(object.kind(of: "missing") == nil)

        #expect(try object.string("z") == nil)
        #expect(try object.string("missing") == nil)
        #expect(throws: JSONError.wrongKind(key: "n", expected: "string", found: .number)) { try object.string("n") }

        #expect(try object.identifier("s") == "x")
        #expect(try object.identifier("n") == "42")
        #expect(try object.identifier("neg") == "-7")
        #expect(try object.identifier("z") == nil)
        for key in ["f", "e", "big", "t", "o", "a"] {
            #expect(throws: JSONError.self, "\(key)") { try object.identifier(key) }
        }

        #expect(try object.number("f") == 1.5)
        #expect(try object.number("e") == 1000)
        #expect(try object.number("z") == nil)
        #expect(throws: JSONError.self) { try object.number("s") }
        #expect(throws: JSONError.self) { try object.number("inf") }
        #expect(object.rawValue("o") == "{}")
    }

    @Test("errors name the field and never the value")
    func errorDescriptions() {
        let wrong = JSONError.wrongKind(key: "user_id", expected: "string", found: .bool)
        #expect(wrong.description == "field user_id: expected string, found bool")
        #expect(JSONError.notAnObject.description.contains("not an object"))
        #expect(JSONError.invalid("trailing characters", at: 7).description.contains("byte 7"))
    }
}
