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
        var memoryPauses: (@Sendable () -> Int)?
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

    /// Where the consumer's count of memory pauses is read, for the JSON line.
    func countMemoryPauses(_ count: @escaping @Sendable () -> Int) {
        state.withLock { $0.memoryPauses = count }
    }

    func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int) {
        let finished = state.withLock { s -> (Duration, (@Sendable () -> Void)?, Int)? in
            if s.first == nil { s.first = ContinuousClock.now }
            s.count += count
            guard s.count >= target, !s.finished else { return nil }
            s.finished = true
            return (ContinuousClock.now - s.first!, s.done, s.memoryPauses?() ?? -1)
        }
        guard let (elapsed, done, memoryPauses) = finished else { return }
        let seconds = elapsed.seconds
        let line = """
            {"events":\(target),"seconds":\(seconds),"events_per_second":\(Int(Double(target) / seconds)),"peak_rss_kib":\(Self.peakRSSKiB()),"memory_pauses":\(memoryPauses)}

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
