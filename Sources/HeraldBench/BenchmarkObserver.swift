import Foundation
import HeraldCore
import Synchronization

/// For `herald-bench run`: counts events, and
/// after `target` of them prints one JSON line with the rate and peak RSS, then stops Herald.
final class BenchmarkObserver: ProcessingObserver {
    private struct State {
        var count = 0
        var first: ContinuousClock.Instant?
        var done: (@Sendable () -> Void)?
        var finished = false
    }
    private let state = Mutex(State())
    private let target: Int

    init(target: Int) {
        self.target = target
    }

    func onDone(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.done = action }
    }

    func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int) {
        let finished = state.withLock { s -> (Duration, (@Sendable () -> Void)?)? in
            if s.first == nil { s.first = ContinuousClock.now }
            s.count += count
            guard s.count >= target, !s.finished else { return nil }
            s.finished = true
            return (ContinuousClock.now - s.first!, s.done)
        }
        guard let (elapsed, done) = finished else { return }
        let seconds = elapsed.seconds
        let line = """
            {"events":\(target),"seconds":\(seconds),"events_per_second":\(Int(Double(target) / seconds)),"peak_rss_kib":\(Self.peakRSSKiB())}

            """
        FileHandle.standardOutput.write(Data(line.utf8))
        done?()
    }

    /// VmHWM from /proc/self/status: the peak resident set size.
    static func peakRSSKiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return -1
    }
}

/// Applies nothing: measures consumption and dispatch without a dependency.
struct DiscardingApplier: EffectApplier {
    func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID> { [] }
}
