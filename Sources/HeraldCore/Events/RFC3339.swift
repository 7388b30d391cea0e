/// RFC 3339 timestamps (`2024-05-01T12:00:00.123Z`, `…+02:00`), parsed without Foundation's
/// formatters so that decoding an event stays cheap. A date without an offset is taken as UTC
/// (Python's `datetime.isoformat()` of a naive value produces those). Only instants whose UTC
/// form has a four-digit year are read, so that what `parse` reads, `format` writes back.
public enum RFC3339 {
    public static func parse(_ text: String) -> EventTime? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> EventTime? {
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for _ in 0..<n {
                let c = b[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
                i += 1
            }
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2)
        else { return nil }
        guard i < b.count, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == 0x20 else { return nil }
        i += 1
        guard let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A), let second = digits(2)
        else { return nil }
        var millis = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 100
            var any = false
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                millis += Int(b[i] - 0x30) * scale
                scale /= 10
                any = true
                i += 1
            }
            guard any else { return nil }
        }
        var offsetSeconds = 0
        if i < b.count {
            switch b[i] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                i += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let oh = digits(2), expect(0x3A), let om = digits(2), oh < 24, om < 60 else { return nil }
                offsetSeconds = sign * (oh * 3600 + om * 60)
            default:
                return nil
            }
        }
        guard i == b.count else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month), hour < 24,
            minute < 60, second <= 60
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetSeconds)
        let ms = seconds * 1000 + Int64(millis)
        // A local time near either end of year 0000 or 9999 can be outside them in UTC
        // (`9999-12-31T23:59:59-00:20`, `0000-01-01T00:00:00+01:00`): `format` could not write
        // it back in four digits.
        guard range.contains(ms) else { return nil }
        return EventTime(millisecondsSinceEpoch: ms)
    }

    /// The instants RFC 3339 can write in UTC: 0000-01-01T00:00:00.000Z through
    /// 9999-12-31T23:59:59.999Z, in milliseconds since the epoch.
    public static let range: ClosedRange<Int64> = -62_167_219_200_000...253_402_300_799_999

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC; outside the years 0000–9999 (`range`), an ISO 8601
    /// expanded year with a sign, which is no RFC 3339 (log lines and error messages only:
    /// Herald refuses such times where RFC 3339 is promised).
    public static func format(_ time: EventTime) -> String {
        // Floor divisions written so that no instant overflows (`(ms - 999) / 1000` did near
        // Int64.min).
        let (totalSeconds, millis) = floorDivision(time.millisecondsSinceEpoch, 1000)
        let (days, seconds) = floorDivision(totalSeconds, 86_400)
        let (y, m, d) = civilFromDays(Int(days))
        let h = Int(seconds / 3600), mi = Int(seconds % 3600 / 60), s = Int(seconds % 60)
        func pad(_ v: Int, _ width: Int) -> String {
            let t = String(v)
            return String(repeating: "0", count: max(0, width - t.count)) + t
        }
        // A year RFC 3339 cannot hold is written as ISO 8601's expanded years: a sign and at
        // least four digits (`-0002-…`, `+10000-…`), which `parse` refuses; `pad` alone wrote
        // year -2 as `00-2`.
        let year = (0...9999).contains(y) ? pad(y, 4) : (y < 0 ? "-" : "+") + pad(abs(y), 4)
        return "\(year)-\(pad(m, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)).\(pad(Int(millis), 3))Z"
    }

    /// `value` divided by `divisor` (positive) rounded down, and the remainder in
    /// `0..<divisor`, for every `value`.
    static func floorDivision(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
