import Synchronization

/// Wakes one waiting loop promptly: a LISTEN connection rings the courier's when an inbox
/// transaction (of any instance) queued mail, and the outbox relay's on every NOTIFY; each
/// loop waits on its doorbell between polls. A ring while nobody waits is remembered (once),
/// so a wake-up is never lost between a poll and the next wait.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the waiter, or the next `wait` when nobody waits now.
    public func ring() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung (now or since the last `wait`), after `timeout`, or soon after the
    /// task is cancelled. One waiter at a time.
    public func wait(timeout: Duration) async {
        let generation = state.withLock { s -> UInt64? in
            if s.rung {
                s.rung = false
                return nil
            }
            s.generation &+= 1
            return s.generation
        }
        guard let generation else { return }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.expire(generation)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { s -> Bool in
                    // Rung, or timed out, before the continuation was installed.
                    if s.rung || s.generation != generation {
                        s.rung = false
                        return true
                    }
                    s.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            expire(generation)
        }
    }

    private func expire(_ generation: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.generation == generation else { return nil }
            s.generation &+= 1
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }
}
