import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// SIGTERM and SIGINT for `herald run`, handled from its first line. While Herald is still
/// starting (waiting for PostgreSQL, migrating, connecting), a signal interrupts the start-up
/// step in flight through task cancellation, and `run` returns without starting anything
/// more; once the service group exists, a signal starts its graceful shutdown. Without this,
/// a signal during start-up met the default action and killed the process (exit 143)
/// wherever it was. The service group is then built without signals of its own: only one
/// handler per signal can be installed.
public final class StopSignals: Sendable {
    private struct State {
        var signal: UnixSignal?
        var cancelStartup: (@Sendable () -> Void)?
        var group: ServiceGroup?
    }

    private let state = Mutex(State())

    private init() {}

    /// Installs the handlers (returns once they are registered) and starts watching.
    public static func install() async -> StopSignals {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let stop = StopSignals()
        Task {
            for await signal in signals { await stop.received(signal) }
        }
        return stop
    }

    /// The first signal received, if any.
    public var signal: UnixSignal? { state.withLock { $0.signal } }

    /// Runs one start-up step; a signal cancels it. Returns nil when a signal arrived before or
    /// during the step: the step has then ended (cancelled, or finished and its result dropped)
    /// and nothing is left half-done.
    public func interruptible<T: Sendable>(_ step: @escaping @Sendable () async throws -> T) async throws -> T? {
        let task = Task { try await step() }
        let requested = state.withLock { s -> Bool in
            if s.signal == nil { s.cancelStartup = { task.cancel() } }
            return s.signal != nil
        }
        if requested { task.cancel() }
        defer { state.withLock { $0.cancelStartup = nil } }
        do {
            let value = try await task.value
            return signal == nil ? value : nil
        } catch {
            if signal != nil { return nil }
            throw error
        }
    }

    /// From now on a signal shuts `group` down gracefully (at once, when one already came).
    public func attach(_ group: ServiceGroup) async {
        let requested = state.withLock { s -> Bool in
            s.group = group
            return s.signal != nil
        }
        if requested { await group.triggerGracefulShutdown() }
    }

    private func received(_ signal: UnixSignal) async {
        let (first, cancelStartup, group) = state.withLock { s in
            let first = s.signal == nil
            if first { s.signal = signal }
            return (first, s.cancelStartup, s.group)
        }
        let logger = Logger(label: "herald")
        guard first else {
            logger.notice("\(signal) received: already stopping")
            return
        }
        if let group {
            logger.notice("\(signal) received: stopping", metadata: ["signal": "\(signal)"])
            await group.triggerGracefulShutdown()
        } else {
            logger.notice("\(signal) received while starting: stopping before anything runs", metadata: ["signal": "\(signal)"])
            cancelStartup?()
        }
    }
}
