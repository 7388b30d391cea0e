import HeraldCore
import Testing

@Suite("Backoff")
struct BackoffTests {
    static func ms(_ d: Duration) -> Double { d.seconds * 1000 }

    @Test("the ceiling doubles from 100 ms up to a 30 s cap")
    func ceilingSchedule() {
        let backoff = Backoff()
        let expected: [Double] = [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]
        for (index, ms) in expected.enumerated() {
            #expect(abs(Self.ms(backoff.ceiling(attempt: index + 1)) - ms) < 1e-6, "attempt \(index + 1)")
        }
        #expect(Self.ms(backoff.ceiling(attempt: 10_000)) == 30_000)
        // Attempt 0 and below behave like the first.
        #expect(abs(Self.ms(backoff.ceiling(attempt: 0)) - 100) < 1e-6)
        #expect(abs(Self.ms(backoff.ceiling(attempt: -5)) - 100) < 1e-6)
    }

    @Test("jitter: unit 0 waits half the ceiling, unit 1 all of it, out-of-range units are clamped")
    func jitterBounds() {
        let backoff = Backoff()
        for attempt in 1...12 {
            let ceiling = Self.ms(backoff.ceiling(attempt: attempt))
            #expect(abs(Self.ms(backoff.delay(attempt: attempt, unit: 0)) - ceiling / 2) < 1e-6)
            #expect(abs(Self.ms(backoff.delay(attempt: attempt, unit: 0.5)) - ceiling * 0.75) < 1e-6)
            #expect(abs(Self.ms(backoff.delay(attempt: attempt, unit: 1)) - ceiling) < 1e-6)
            #expect(Self.ms(backoff.delay(attempt: attempt, unit: 0.999_999)) < ceiling)
            #expect(abs(Self.ms(backoff.delay(attempt: attempt, unit: -3)) - ceiling / 2) < 1e-6)
            #expect(abs(Self.ms(backoff.delay(attempt: attempt, unit: 7)) - ceiling) < 1e-6)
        }
    }

    @Test("random delays stay within [ceiling/2, ceiling] and are never zero")
    func randomDelays() {
        let backoff = Backoff()
        for attempt in 1...40 {
            let ceiling = backoff.ceiling(attempt: attempt)
            for _ in 0..<25 {
                let delay = backoff.delay(attempt: attempt)
                #expect(delay > .zero)
                #expect(delay.seconds >= ceiling.seconds / 2 - 1e-9 && delay <= ceiling)
            }
        }
    }

    @Test("custom schedules")
    func customSchedule() {
        let backoff = Backoff(initial: .milliseconds(250), multiplier: 3, cap: .seconds(5))
        #expect(abs(Self.ms(backoff.ceiling(attempt: 1)) - 250) < 1e-6)
        #expect(abs(Self.ms(backoff.ceiling(attempt: 2)) - 750) < 1e-6)
        #expect(abs(Self.ms(backoff.ceiling(attempt: 3)) - 2250) < 1e-6)
        #expect(Self.ms(backoff.ceiling(attempt: 4)) == 5000)
        #expect(backoff.delay(attempt: 1, unit: 0) > .zero)
    }

    @Test("Duration.seconds")
    func durationSeconds() {
        #expect(Duration.milliseconds(1500).seconds == 1.5)
        #expect(Duration.seconds(-2).seconds == -2)
        #expect(Duration.zero.seconds == 0)
    }
}
