import HeraldCore

/// Times: RFC 3339 text (`occurred_at`, `created_at`, stored mail variables), epoch seconds
/// (`event_timestamp`, as a string or a number) and `RFC3339.format` of any instant (DLQ
/// headers, `ce_time`, JSON output, mail).
///
/// Input: the text, then optionally after a 0xFF byte up to 8 bytes of an instant in
/// milliseconds (little-endian).
///
/// Invariants: `RFC3339.parse` agrees with an independent computation of the instant from
/// the text's fields (days counted another way); what it parses formats to 24 characters
/// that parse back to the same instant; the envelope decoder accepts `occurred_at` exactly
/// when `RFC3339.parse` does, and reads `event_timestamp` as the seconds rounded down to the
/// millisecond; `format` of any instant does not crash, and what it writes parses back to
/// that instant or not at all, and is a well-formed date and time (`isDateTime`) even
/// outside RFC 3339's years; `epochSeconds` rounds down.
enum TimeFuzzer {
    static let decoder = EnvelopeDecoder(maxClockSkew: .seconds(300), clock: { EnvelopeFuzzer.now })

    static func run(_ input: [UInt8]) throws(FuzzFailure) -> String {
        let fields = FuzzFields(input)
        let text = fields.string(0) ?? ""
        let parsed = RFC3339.parse(text)
        if let parsed {
            let expected = reference(text)
            try check(
                expected == parsed.millisecondsSinceEpoch,
                "RFC3339.parse(\(Invariants.debug(text))) = \(parsed.millisecondsSinceEpoch), expected \(expected.map(String.init) ?? "nil")"
            )
            let formatted = RFC3339.format(parsed)
            try check(formatted.utf8.count == 24, "format(parse(\(Invariants.debug(text)))) = \(formatted)")
            try check(
                RFC3339.parse(formatted) == parsed,
                "format(parse(\(Invariants.debug(text)))) = \(formatted) does not parse back to \(parsed.millisecondsSinceEpoch)")
        }
        try envelopeTimes(text, parsed: parsed)

        if let raw = fields.bytes(1) {
            let ms = raw.prefix(8).enumerated().reduce(Int64(0)) { $0 | Int64($1.element) << (8 * $1.offset) }
            try instant(EventTime(millisecondsSinceEpoch: ms))
        }
        // A second instant from the text when it is an integer (the mutator changes digits).
        if let ms = Int64(text) { try instant(EventTime(millisecondsSinceEpoch: ms)) }
        return parsed == nil ? "not RFC 3339" : "RFC 3339"
    }

    /// `format` and `epochSeconds` of an arbitrary instant.
    static func instant(_ time: EventTime) throws(FuzzFailure) {
        let ms = time.millisecondsSinceEpoch
        let formatted = RFC3339.format(time)
        try check(isDateTime(formatted), "RFC3339.format(\(ms)) = \(formatted) is no date and time")
        if let back = RFC3339.parse(formatted) {
            try check(back == time, "RFC3339.format(\(ms)) = \(formatted) parses as \(back.millisecondsSinceEpoch)")
        }
        let seconds = time.epochSeconds
        let (low, lowOverflow) = seconds.multipliedReportingOverflow(by: 1000)
        try check(lowOverflow || (low <= ms && ms - low < 1000), "epochSeconds of \(ms) is \(seconds)")
        _ = time.description
        // An event's time is bounded (RFC 3339 years, epoch seconds below 1e11, PostgreSQL's
        // timestamp range): the mail queue's age check sees no more than that.
        if ms.magnitude < 10_000_000_000_000_000 {
            _ = MailMaxAges.defaults.expiry(.passwordReset, requestedAt: time, now: EnvelopeFuzzer.now)
        }
    }

    /// `[+-]YYYY…-MM-DDTHH:MM:SS.mmmZ`: a year of at least four digits (with a sign only when
    /// outside 0000–9999, as ISO 8601's expanded years), then fields in their ranges. What
    /// `format` writes for any instant, even those RFC 3339 cannot hold (logs, DLQ headers).
    static func isDateTime(_ text: String) -> Bool {
        var b = Array(text.utf8)[...]
        let signed = b.first == UInt8(ascii: "+") || b.first == UInt8(ascii: "-")
        if signed { b = b.dropFirst() }
        let yearDigits = b.prefix { $0 >= 0x30 && $0 <= 0x39 }.count
        guard yearDigits >= 4, signed || yearDigits == 4, b.count == yearDigits + 20 else { return false }
        let rest = Array(b.dropFirst(yearDigits))
        func number(_ at: Int) -> Int? {
            guard rest[at] >= 0x30 && rest[at] <= 0x39 && rest[at + 1] >= 0x30 && rest[at + 1] <= 0x39 else { return nil }
            return Int(rest[at] - 0x30) * 10 + Int(rest[at + 1] - 0x30)
        }
        guard
            rest[0] == UInt8(ascii: "-") && rest[3] == UInt8(ascii: "-") && rest[6] == UInt8(ascii: "T")
                && rest[9] == UInt8(ascii: ":") && rest[12] == UInt8(ascii: ":") && rest[15] == UInt8(ascii: ".")
                && rest[19] == UInt8(ascii: "Z"),
            let month = number(1), let day = number(4), let hour = number(7), let minute = number(10), let second = number(13),
            number(16) != nil, rest[18] >= 0x30 && rest[18] <= 0x39
        else { return false }
        return (1...12).contains(month) && (1...31).contains(day) && hour < 24 && minute < 60 && second < 60
    }

    /// The same text as `occurred_at` and as `event_timestamp` (string, and number when it
    /// is a JSON number) in an event the decoder reads.
    static func envelopeTimes(_ text: String, parsed: EventTime?) throws(FuzzFailure) {
        let limit = EnvelopeFuzzer.now.millisecondsSinceEpoch + 300_000
        let asRFC3339 = decode(#"{"event_type":"RoleDeleted","role":"r","occurred_at":\#(jsonString(text))}"#)
        switch (parsed, asRFC3339) {
        case (nil, .success(let time)):
            throw FuzzFailure("occurred_at \(Invariants.debug(text)) accepted as \(time.millisecondsSinceEpoch), RFC3339.parse refuses it")
        case (let parsed?, .failure):
            try check(parsed.millisecondsSinceEpoch > limit, "occurred_at \(Invariants.debug(text)) refused, RFC3339.parse reads it")
        case (let parsed?, .success(let time)):
            try check(parsed == time, "occurred_at \(Invariants.debug(text)) decoded to another instant")
        case (nil, .failure):
            break
        }

        var documents = [#"{"event_type":"RoleDeleted","role":"r","event_timestamp":\#(jsonString(text))}"#]
        if let object = try? JSONObject(parsing: Array(#"{"n":\#(text)}"#.utf8)), object.count == 1, object.kind(of: "n") == .number {
            documents.append(#"{"event_type":"RoleDeleted","role":"r","event_timestamp":\#(text)}"#)
        }
        for document in documents {
            guard case .success(let time) = decode(document) else { continue }
            guard let seconds = Double(text) ?? Double(text.trimmingJSONWhitespace()) else {
                throw FuzzFailure("event_timestamp \(Invariants.debug(text)) accepted as \(time.millisecondsSinceEpoch), not a number")
            }
            let expected = (seconds * 1000).rounded(.down)
            try check(
                Double(time.millisecondsSinceEpoch) == expected,
                "event_timestamp \(Invariants.debug(text)) decoded to \(time.millisecondsSinceEpoch), expected \(expected)")
            try check(time.millisecondsSinceEpoch <= limit, "event_timestamp \(Invariants.debug(text)) beyond the allowed skew")
        }
    }

    static func decode(_ document: String) -> Result<EventTime, Rejection> {
        let message = InboundMessage(topic: "auth_service_topic", partition: 0, offset: 0, value: Array(document.utf8))
        do {
            return .success(try decoder.decode(message).metadata.occurredAt)
        } catch {
            return .failure(error)
        }
    }

    /// The instant of an RFC 3339 text that `RFC3339.parse` accepted, computed from its
    /// fields by counting days differently (years, leap days and months rather than eras):
    /// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction][Z|z|±HH:MM]`, fraction truncated to
    /// milliseconds, second 60 read as 59, no offset read as UTC.
    static func reference(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var i = 19
        var millis: Int64 = 0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int64(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offset: Int64 = 0
        if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) {
            guard let oh = number(i + 1, 2), let om = number(i + 4, 2) else { return nil }
            offset = (b[i] == UInt8(ascii: "-") ? -1 : 1) * (oh * 3600 + om * 60)
        }
        func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
        func floorDiv(_ a: Int64, _ n: Int64) -> Int64 { a >= 0 ? a / n : -((-a + n - 1) / n) }
        // Leap years in [1, y]: y/4 - y/100 + y/400 (floored, also for y <= 0).
        func leaps(upTo y: Int64) -> Int64 { floorDiv(y, 4) - floorDiv(y, 100) + floorDiv(y, 400) }
        let cumulative: [Int64] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
        var days = 365 * (year - 1970) + leaps(upTo: year - 1) - leaps(upTo: 1969)
        days += cumulative[Int(month) - 1] + (month > 2 && isLeap(year) ? 1 : 0) + day - 1
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        return seconds * 1000 + millis
    }
}

extension String {
    /// Without the JSON whitespace (space, tab, CR, LF) around it.
    fileprivate func trimmingJSONWhitespace() -> String {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        let bytes = Array(utf8)
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}
