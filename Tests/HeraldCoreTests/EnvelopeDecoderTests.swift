import HeraldCore
import Testing

/// Type, id and time resolution (docs/integration.md, "Events Herald consumes").
@Suite("Envelope decoding")
struct EnvelopeDecoderTests {
    let decoder = EnvelopeDecoder(maxClockSkewName: "HERALD_MAX_CLOCK_SKEW", clock: fixedClock)

    func decode(_ message: InboundMessage, with decoder: EnvelopeDecoder? = nil) throws(Rejection) -> EventMetadata {
        try (decoder ?? self.decoder).decode(message).metadata
    }

    func rejection(_ message: InboundMessage, with decoder: EnvelopeDecoder? = nil) -> Rejection? {
        do throws(Rejection) {
            _ = try (decoder ?? self.decoder).decode(message)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Type

    struct TypeCase: Sendable, CustomTestStringConvertible {
        let headers: [MessageHeader]
        let body: String
        let expected: String
        let testDescription: String
    }

    static let typeCases: [TypeCase] = [
        TypeCase(
            headers: [MessageHeader("ce_type", "FromCeType"), MessageHeader("event_type", "FromHeader")],
            body: #"{"event_type":"FromField","type":"FromType"}"#, expected: "FromCeType",
            testDescription: "header ce_type beats everything"),
        TypeCase(
            headers: [MessageHeader("event_type", "FromHeader"), MessageHeader("ce_type", "FromCeType")],
            body: #"{"event_type":"FromField"}"#, expected: "FromCeType",
            testDescription: "header order does not matter"),
        TypeCase(
            headers: [MessageHeader("event_type", "FromHeader")],
            body: #"{"event_type":"FromField","type":"FromType"}"#, expected: "FromHeader",
            testDescription: "header event_type beats the fields"),
        TypeCase(
            headers: [], body: #"{"type":"FromType","event_type":"FromField"}"#, expected: "FromField",
            testDescription: "field event_type beats field type"),
        TypeCase(headers: [], body: #"{"type":"FromType"}"#, expected: "FromType", testDescription: "field type"),
        TypeCase(
            headers: [], body: #"{"event_type":null,"type":"FromType"}"#, expected: "FromType",
            testDescription: "null event_type counts as absent"),
        TypeCase(
            headers: [MessageHeader(key: "ce_type", value: nil), MessageHeader("event_type", "FromHeader")],
            body: #"{"type":"FromType"}"#, expected: "FromHeader",
            testDescription: "a header without a value is skipped"),
        TypeCase(
            headers: [MessageHeader("ce_type", "First"), MessageHeader("ce_type", "Last")], body: "{}",
            expected: "Last", testDescription: "a repeated header: the last one wins"),
        TypeCase(
            headers: [MessageHeader("ce_type", "FromCeType")], body: #"{"event_type":5,"type":["x"]}"#,
            expected: "FromCeType", testDescription: "fields of the wrong kind are not read when a header wins"),
    ]

    @Test("type precedence", arguments: typeCases)
    func typePrecedence(_ c: TypeCase) throws {
        let metadata = try decode(inbound(c.body, headers: c.headers))
        #expect(metadata.type.rawValue == c.expected)
    }

    @Test("the topic's default type applies only to that topic and only when no type is given")
    func defaultTypePerTopic() throws {
        let decoder = EnvelopeDecoder(defaultTypeByTopic: ["user_service_topic": "UserCreated"], clock: fixedClock)
        let body = #"{"id":"7","user_id":"u1","username":"ada"}"#
        #expect(try decode(inbound(body, topic: "user_service_topic"), with: decoder).type == "UserCreated")
        #expect(rejection(inbound(body, topic: "auth_service_topic"), with: decoder)?.errorClass == .invalidEnvelope)
        let typed = #"{"type":"UserDeleted","user_id":"u1"}"#
        #expect(try decode(inbound(typed, topic: "user_service_topic"), with: decoder).type == "UserDeleted")
        let headed = inbound(body, topic: "user_service_topic", headers: [MessageHeader("ce_type", "UserDeleted")])
        #expect(try decode(headed, with: decoder).type == "UserDeleted")
    }

    @Test("a record without a type is an invalid envelope")
    func missingType() {
        let r = rejection(inbound(#"{"user_id":"u1"}"#))
        #expect(r?.errorClass == .invalidEnvelope)
        #expect(r?.message.contains("no event type") == true)
    }

    @Test(
        "a malformed type is an invalid envelope",
        arguments: [
            inbound("{}", headers: [MessageHeader("ce_type", "")]),
            inbound("{}", headers: [MessageHeader(key: "ce_type", value: [0xFF, 0xFE])]),
            inbound("{}", headers: [MessageHeader("event_type", " Padded")]),
            inbound("{}", headers: [MessageHeader("ce_type", "Role\r\nDeleted")]),
            inbound(#"{"event_type":5}"#),
            inbound(#"{"event_type":""}"#),
            inbound(#"{"type":{"name":"RoleDeleted"}}"#),
            inbound(#"{"type":"RoleDeleted\u0000"}"#),
            inbound(#"{"event_type":"\#(String(repeating: "T", count: 129))"}"#),
        ])
    func malformedType(_ message: InboundMessage) {
        #expect(rejection(message)?.errorClass == .invalidEnvelope)
    }

    // MARK: Id

    @Test("id precedence: header ce_id, field event_id, field id")
    func idPrecedence() throws {
        let all = #"{"type":"T","event_id":"from-event-id","id":"from-id"}"#
        #expect(try decode(inbound(all, headers: [MessageHeader("ce_id", "from-header")])).id.rawValue == "from-header")
        #expect(try decode(inbound(all)).id.rawValue == "from-event-id")
        #expect(try decode(inbound(#"{"type":"T","id":"from-id"}"#)).id.rawValue == "from-id")
        #expect(try decode(inbound(#"{"type":"T","event_id":null,"id":"from-id"}"#)).id.rawValue == "from-id")
        #expect(try decode(inbound(#"{"type":"T","id":90412}"#)).id.rawValue == "90412")
        #expect(try decode(inbound(#"{"type":"T","event_id":-3}"#)).id.rawValue == "-3")
    }

    @Test("without an id, the id is derived from the record's coordinates, timestamp, key and value")
    func derivedID() throws {
        var message = inbound(#"{"type":"T"}"#, topic: "user_service_topic", partition: 3, offset: 18_446)
        message.timestamp = 1_764_000_000_123
        let id = try decode(message).id.rawValue
        #expect(id.hasPrefix("user_service_topic/3/18446@1764000000123#"))
        #expect(id.count == "user_service_topic/3/18446@1764000000123#".count + 16)
        // Stable: a redelivery of the same record gets the same id.
        #expect(try decode(message).id == decode(message).id)
        // A recreated topic (or a restarted in-memory broker) reuses offsets: a different record
        // at the same coordinates is a different event.
        var later = message
        later.timestamp = 1_764_000_999_000
        #expect(try decode(later).id != decode(message).id)
        var otherContent = message
        otherContent.value = Array(#"{"type":"T","user_id":"2"}"#.utf8)
        #expect(try decode(otherContent).id != decode(message).id)
        var otherKey = message
        otherKey.key = Array("k2".utf8)
        #expect(try decode(otherKey).id != decode(message).id)
    }

    @Test("an event time further ahead than the allowed skew is invalid content; within it, accepted")
    func futureTime() throws {
        // fixedClock is 2030-01-01T00:00:00Z.
        let soon = try decode(inbound(#"{"type":"T","occurred_at":"2030-01-01T00:04:59Z"}"#))
        #expect(soon.occurredAt == EventTime(millisecondsSinceEpoch: fixedClockTime.millisecondsSinceEpoch + 299_000))
        for body in [
            #"{"type":"T","occurred_at":"5100-01-01T00:00:00Z"}"#, #"{"type":"T","event_timestamp":99999999999}"#,
            #"{"type":"T","created_at":"2030-01-01T00:05:01Z"}"#,
        ] {
            #expect(throws: Rejection.self, "\(body)") { try decode(inbound(body)) }
            do {
                _ = try decode(inbound(body))
            } catch {
                #expect(error.errorClass == .invalidEnvelope)
                #expect(error.message.contains("ahead of Herald's clock"))
                #expect(error.message.contains("HERALD_MAX_CLOCK_SKEW"))
            }
        }
        // The record's own timestamp, when the body has none, is held to the same rule.
        var stamped = inbound(#"{"type":"T"}"#)
        stamped.timestamp = fixedClockTime.millisecondsSinceEpoch + 3_600_000
        #expect(throws: Rejection.self) { try decode(stamped) }
        let lenient = EnvelopeDecoder(maxClockSkew: .seconds(7200), clock: fixedClock)
        #expect(try lenient.decode(stamped).metadata.occurredAt.millisecondsSinceEpoch == stamped.timestamp)
    }

    @Test(
        "a malformed id is an invalid envelope",
        arguments: [
            inbound(#"{"type":"T"}"#, headers: [MessageHeader("ce_id", "")]),
            inbound(#"{"type":"T"}"#, headers: [MessageHeader(key: "ce_id", value: [0xC3])]),
            inbound(#"{"type":"T","event_id":""}"#),
            inbound(#"{"type":"T","event_id":1.5}"#),
            inbound(#"{"type":"T","event_id":true}"#),
            inbound(#"{"type":"T","id":" padded"}"#),
            inbound(#"{"type":"T","id":12345678901234567890}"#),
            inbound(#"{"type":"T","id":"\#(String(repeating: "i", count: 201))"}"#),
        ])
    func malformedID(_ message: InboundMessage) {
        #expect(rejection(message)?.errorClass == .invalidEnvelope)
    }

    // MARK: Time

    struct TimeCase: Sendable, CustomTestStringConvertible {
        let body: String
        let kafkaTimestamp: Int64?
        let expected: Int64
        var testDescription: String { body }
    }

    static let timeCases: [TimeCase] = [
        // occurred_at wins over every other source.
        TimeCase(
            body: #"{"occurred_at":"2024-05-01T12:00:00Z","event_timestamp":1,"created_at":"2000-01-01T00:00:00Z"}"#,
            kafkaTimestamp: 5, expected: 1_714_564_800_000),
        TimeCase(body: #"{"occurred_at":"2024-05-01T14:00:00+02:00"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_000),
        TimeCase(body: #"{"occurred_at":"2024-05-01T06:30:00-05:30"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_000),
        TimeCase(body: #"{"occurred_at":"2024-05-01T12:00:00.5Z"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_500),
        TimeCase(body: #"{"occurred_at":"2024-05-01T12:00:00.123456+00:00"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_123),
        TimeCase(body: #"{"occurred_at":"2024-05-01t12:00:00.9999z"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_999),
        TimeCase(body: #"{"occurred_at":"2024-05-01 12:00:00"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_000),
        TimeCase(body: #"{"occurred_at":"2024-02-29T00:00:00Z"}"#, kafkaTimestamp: nil, expected: 1_709_164_800_000),
        TimeCase(body: #"{"occurred_at":"1969-12-31T23:59:59Z"}"#, kafkaTimestamp: nil, expected: -1000),
        // event_timestamp, epoch seconds, as a number or a numeric string.
        TimeCase(body: #"{"occurred_at":null,"event_timestamp":1714564800.25}"#, kafkaTimestamp: 5, expected: 1_714_564_800_250),
        TimeCase(
            body: #"{"event_timestamp":1714564800,"created_at":"2000-01-01T00:00:00Z"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_000),
        TimeCase(body: #"{"event_timestamp":"1714564800.5"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_500),
        TimeCase(body: #"{"event_timestamp":"1714564800"}"#, kafkaTimestamp: nil, expected: 1_714_564_800_000),
        TimeCase(body: #"{"event_timestamp":1.7145648e9}"#, kafkaTimestamp: nil, expected: 1_714_564_800_000),
        TimeCase(body: #"{"event_timestamp":-1.5}"#, kafkaTimestamp: nil, expected: -1500),
        // created_at, then the record's timestamp.
        TimeCase(body: #"{"event_timestamp":null,"created_at":"2024-05-01T12:00:00Z"}"#, kafkaTimestamp: 5, expected: 1_714_564_800_000),
        TimeCase(body: #"{"created_at":null}"#, kafkaTimestamp: 1_714_564_800_042, expected: 1_714_564_800_042),
        TimeCase(body: "{}", kafkaTimestamp: 1, expected: 1),
    ]

    @Test("time precedence and formats", arguments: timeCases)
    func timePrecedence(_ c: TimeCase) throws {
        let body = "{\"type\":\"T\"," + c.body.dropFirst()
        let metadata = try decode(inbound(c.body == "{}" ? #"{"type":"T"}"# : body, timestamp: c.kafkaTimestamp))
        #expect(metadata.occurredAt.millisecondsSinceEpoch == c.expected)
    }

    @Test("without any time, the clock decides", arguments: [nil, 0, -1] as [Int64?])
    func clockFallback(_ kafkaTimestamp: Int64?) throws {
        let metadata = try decode(inbound(#"{"type":"T"}"#, timestamp: kafkaTimestamp))
        #expect(metadata.occurredAt == fixedClockTime)
    }

    @Test(
        "a malformed time is an invalid envelope, even when a later source is fine",
        arguments: [
            #"{"occurred_at":"yesterday","event_timestamp":1714564800}"#,
            #"{"occurred_at":"2024-05-01"}"#,
            #"{"occurred_at":"2023-02-29T00:00:00Z"}"#,
            #"{"occurred_at":"2024-05-01T24:00:00Z"}"#,
            #"{"occurred_at":"2024-05-01T12:00:00+0200"}"#,
            #"{"occurred_at":"2024-05-01T12:00:00.Z"}"#,
            #"{"occurred_at":"2024-05-01T12:00:00Z "}"#,
            #"{"occurred_at":1714564800}"#,
            #"{"event_timestamp":1714564800123}"#,
            #"{"event_timestamp":"1714564800123"}"#,
            #"{"event_timestamp":"soon"}"#,
            #"{"event_timestamp":"nan"}"#,
            #"{"event_timestamp":"inf"}"#,
            #"{"event_timestamp":""}"#,
            #"{"event_timestamp":true}"#,
            #"{"event_timestamp":1e400}"#,
            #"{"created_at":"01/05/2024"}"#,
            #"{"created_at":{}}"#,
        ])
    func malformedTime(_ body: String) {
        let message = inbound("{\"type\":\"T\"," + body.dropFirst(), timestamp: 1)
        let r = rejection(message)
        #expect(r?.errorClass == .invalidEnvelope)
    }

    // MARK: Body

    @Test(
        "a value that is not a JSON object is NotJSON",
        arguments: [
            nil, "", "[]", "\"RoleDeleted\"", "null", "not json", #"{"type":"T"} trailing"#, "\u{FEFF}{\"type\":\"T\"}",
        ] as [String?])
    func notJSON(_ value: String?) {
        #expect(rejection(inbound(value))?.errorClass == .notJSON)
    }

    @Test("binary values are NotJSON")
    func binary() {
        let message = InboundMessage(topic: "t", partition: 0, offset: 0, value: [0x00, 0xFF, 0x7B, 0x7D])
        #expect(rejection(message)?.errorClass == .notJSON)
    }

    @Test("metadata carries the record's position and the body is kept")
    func metadataAndBody() throws {
        let envelope = try decoder.decode(
            inbound(#"{"type":"T","role":"admin"}"#, topic: "auth_service_topic", partition: 7, offset: 99))
        #expect(envelope.metadata.topic == "auth_service_topic")
        #expect(envelope.metadata.partition == 7)
        #expect(envelope.metadata.offset == 99)
        #expect(try envelope.body.string("role") == "admin")
    }

    // MARK: RFC 3339 and EventTime

    @Test("RFC 3339 formatting is UTC with milliseconds and round-trips")
    func rfc3339Format() {
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: -1)) == "1969-12-31T23:59:59.999Z")
        #expect(RFC3339.format(mayFirstNoon) == "2024-05-01T12:00:00.000Z")
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: 951_782_400_123)) == "2000-02-29T00:00:00.123Z")
        for ms: Int64 in [0, 1, -1, 999, -1001, 1_714_564_800_250, 253_402_300_799_999, -62_135_596_800_000] {
            let time = EventTime(millisecondsSinceEpoch: ms)
            #expect(RFC3339.parse(RFC3339.format(time)) == time, "\(ms)")
        }
    }

    // Found by the time fuzz target: format(parse("9999-12-31T23:59:59…-00:20")) wrote
    // "10000-01-01T00:19:59.000Z", which is no RFC 3339; the other end,
    // "0000-01-01T00:00:00+01:00", is an instant of year -1 that formatted as "00-1-12-31…".
    @Test("a time whose UTC form falls outside the years 0000 to 9999 is not RFC 3339")
    func outsideFourDigitYears() throws {
        #expect(RFC3339.parse("9999-12-31T23:59:59-00:20") == nil)
        #expect(RFC3339.parse("9999-12-31T23:59:59.000000000000000000999-00:20") == nil)
        #expect(RFC3339.parse("0000-01-01T00:00:00+01:00") == nil)
        #expect(RFC3339.parse("0000-01-01T00:59:59.999+01:00") == nil)
        for (text, ms): (String, Int64) in [
            ("0000-01-01T00:00:00Z", RFC3339.range.lowerBound), ("0000-01-01T01:00:00+01:00", RFC3339.range.lowerBound),
            ("9999-12-31T23:59:59.999Z", RFC3339.range.upperBound), ("9999-12-31T23:59:59.999+00:01", RFC3339.range.upperBound - 60_000),
        ] {
            let time = try #require(RFC3339.parse(text), "\(text)")
            #expect(time.millisecondsSinceEpoch == ms, "\(text)")
            #expect(RFC3339.parse(RFC3339.format(time)) == time, "\(text)")
        }
        let decoder = EnvelopeDecoder(clock: fixedClock)
        #expect(throws: Rejection.self) {
            try decoder.decode(inbound(#"{"event_type":"RoleDeleted","role":"r","occurred_at":"0000-01-01T00:30:00+01:00"}"#))
        }
    }

    // Found on review, then by the time fuzz target's well-formed-date invariant: year -2
    // (event_timestamp -62200000000, which the decoder accepts) formatted as "00-2-12-17…",
    // and the mail's human-readable time read "00-2" as digits and trapped.
    @Test("years outside 0000 to 9999 are written with a sign and at least four digits")
    func expandedYears() {
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: -62_200_000_000_000)) == "-0002-12-17T14:13:20.000Z")
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: RFC3339.range.lowerBound - 1)) == "-0001-12-31T23:59:59.999Z")
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: RFC3339.range.upperBound + 1)) == "+10000-01-01T00:00:00.000Z")
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: -37_000_000_000_000)) == "0797-07-08T06:13:20.000Z")
        for ms in [RFC3339.range.lowerBound - 1, RFC3339.range.upperBound + 1] {
            #expect(RFC3339.parse(RFC3339.format(EventTime(millisecondsSinceEpoch: ms))) == nil)
        }
    }

    // Found on review (the configuration fuzz target decodes an event with the configured
    // skew, but 10 minutes did not reach the 2e12-ms-wide window below the limit; its
    // corpus now holds the value): HERALD_MAX_CLOCK_SKEW=9223372036854774s loads, and
    // `now + skew` in milliseconds then overflowed on the first event: a trap, and a crash
    // loop on every restart.
    @Test("a clock skew near Duration's millisecond limit accepts past events and still judges far-future ones")
    func hugeClockSkew() throws {
        let skew = try #require(Duration(parsing: "9223372036854774s"))
        let decoder = EnvelopeDecoder(maxClockSkew: skew, clock: fixedClock)
        let past = try decoder.decode(inbound(#"{"event_type":"RoleDeleted","role":"r","occurred_at":"2024-05-01T12:00:00Z"}"#))
        #expect(past.metadata.occurredAt == mayFirstNoon)
        _ = try decoder.decode(inbound(#"{"event_type":"RoleDeleted","role":"r"}"#, timestamp: .max))
        let strict = EnvelopeDecoder(maxClockSkew: .seconds(1), clock: { EventTime(millisecondsSinceEpoch: .min) })
        #expect(throws: Rejection.self) {
            try strict.decode(inbound(#"{"event_type":"RoleDeleted","role":"r"}"#, timestamp: .max))
        }
    }

    @Test("a leap second is read as the second before")
    func leapSecond() {
        #expect(RFC3339.parse("2016-12-31T23:59:60Z") == RFC3339.parse("2016-12-31T23:59:59Z"))
    }

    @Test("epoch seconds round down, also before 1970")
    func epochSeconds() {
        #expect(EventTime(millisecondsSinceEpoch: 1_999).epochSeconds == 1)
        #expect(EventTime(millisecondsSinceEpoch: -1).epochSeconds == -1)
        #expect(EventTime(millisecondsSinceEpoch: -1000).epochSeconds == -1)
        #expect(EventTime(millisecondsSinceEpoch: -1001).epochSeconds == -2)
    }

    // Found by the time fuzz target: `(ms - 999) / 1000` overflowed (a trap) for the
    // instants within 999 ms of Int64.min. No outside input carries such a time today (event
    // times are bounded), but `format` serves every EventTime's description.
    @Test("formatting and epoch seconds work at the ends of EventTime's range")
    func extremeInstants() {
        #expect(EventTime(millisecondsSinceEpoch: .min).epochSeconds == -9_223_372_036_854_776)
        #expect(EventTime(millisecondsSinceEpoch: .max).epochSeconds == 9_223_372_036_854_775)
        for ms: Int64 in [.min, .min + 998, .max] {
            let text = RFC3339.format(EventTime(millisecondsSinceEpoch: ms))
            #expect(text.hasSuffix("Z"), "\(ms): \(text)")
        }
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: .max)) == "+292278994-08-17T07:12:55.807Z")
        #expect(RFC3339.format(EventTime(millisecondsSinceEpoch: .min)) == "-292275055-05-16T16:47:04.192Z")
    }
}
