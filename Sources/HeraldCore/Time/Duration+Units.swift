/// Herald's one home for `Duration` arithmetic and text: the units the settings are written
/// in (`250ms`, `5s`, `2m`, `1h`, `8d`), and the conversions the C clients and the messages
/// need. Nothing else in the code takes `components` apart.
extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// Whole milliseconds, the part of a millisecond dropped (toward zero).
    public var wholeMilliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }

    /// Whole microseconds, the part of a microsecond dropped (toward zero).
    public var wholeMicroseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000 + atto / 1_000_000_000_000
    }

    /// Whole seconds, a part of a second counting as one more (`1.2s` → 2).
    public var secondsRoundedUp: Int64 {
        let (s, atto) = components
        return s + (atto > 0 ? 1 : 0)
    }

    /// Parses a duration with a unit, as the settings take them: `250ms`, `5s`, `1.5s`, `2m`,
    /// `1h`, `8d`. nil for anything else (no unit, a space, a sign, `nan`, beyond `Int64`
    /// milliseconds). Zero parses; whether it is allowed is the caller's rule.
    public init?(parsing text: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        guard let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }) else { return nil }
        let number = text.dropLast(suffix.count)
        guard let v = Double(number), v.isFinite, v >= 0 else { return nil }
        let milliseconds = (v * scale * 1000).rounded()
        // Int64(_:) traps beyond Int64.max: `1e300s` must be nil, not a crash.
        guard milliseconds < Double(Int64.max) else { return nil }
        self = .milliseconds(Int64(milliseconds))
    }

    /// The duration in the units `init(parsing:)` reads, largest first, zero parts left out:
    /// `1h`, `1d 2h`, `30m 5s`, `1500ms` → `1s 500ms`.
    public var unitsDescription: String {
        var rest = wholeMilliseconds
        if rest <= 0 { return rest == 0 ? "0s" : "-" + Duration.milliseconds(-rest).unitsDescription }
        var parts: [String] = []
        for (unit, ms) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where rest >= ms {
            parts.append("\(rest / ms)\(unit)")
            rest %= ms
        }
        return parts.joined(separator: " ")
    }
}
