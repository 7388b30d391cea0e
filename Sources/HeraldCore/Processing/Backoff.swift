/// Exponential backoff with jitter: attempt n waits between half and all of
/// `min(cap, initial * multiplier^(n-1))`. Never zero, so a failing dependency is never
/// hammered in a tight loop.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var multiplier: Double
    public var cap: Duration

    public init(initial: Duration = .milliseconds(100), multiplier: Double = 2, cap: Duration = .seconds(30)) {
        self.initial = initial
        self.multiplier = multiplier
        self.cap = cap
    }

    /// The un-jittered delay before retry number `attempt` (1-based).
    public func ceiling(attempt: Int) -> Duration {
        let initialSeconds = initial.seconds
        let capSeconds = cap.seconds
        let exponent = Double(max(0, attempt - 1))
        let raw = initialSeconds * _pow(multiplier, exponent)
        return .seconds(min(capSeconds, raw.isFinite ? raw : capSeconds))
    }

    /// The delay before retry number `attempt`, with `unit` in [0, 1) drawn at random.
    public func delay(attempt: Int, unit: Double) -> Duration {
        let ceiling = ceiling(attempt: attempt).seconds
        return .seconds(ceiling * (0.5 + 0.5 * min(max(unit, 0), 1)))
    }

    public func delay(attempt: Int) -> Duration {
        delay(attempt: attempt, unit: Double.random(in: 0..<1))
    }
}

private func _pow(_ base: Double, _ exponent: Double) -> Double {
    // Repeated multiplication, capped: avoids Foundation for one function.
    var result = 1.0
    var n = Int(exponent)
    while n > 0 && result < 1e12 {
        result *= base
        n -= 1
    }
    return result
}
