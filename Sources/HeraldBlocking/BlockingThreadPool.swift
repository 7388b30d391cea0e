import Synchronization

/// A fixed number of slots, each a `BlockingThread` created on first use. A caller borrows one
/// slot at a time; when all are busy it waits in line (cancellable), and the slot that comes
/// free goes to the caller that waited longest. The last slot returned is handed out first,
/// so a warm connection is reused.
public final class BlockingThreadPool<Connection>: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Int, any Error>
    }

    private struct State {
        var threads: [BlockingThread<Connection>?]
        /// Free slots; the last one is handed out first so that warm connections are reused.
        var idle: [Int]
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
        /// Every thread started, also those `close()` already stopped: until they exit.
        var started: [BlockingThread<Connection>] = []
    }

    private enum EnqueueOutcome {
        case granted(Int)
        case failed(any Error)
        case queued
    }

    private enum ReleaseOutcome {
        case handOver(Waiter)
        case stop(BlockingThread<Connection>?)
        case idle
    }

    private let state: Mutex<State>
    private let name: String
    private let closedError: @Sendable () -> any Error

    /// - Parameter closedError: the error for callers after `close()`.
    public init(size: Int, name: String, closedError: @escaping @Sendable () -> any Error) {
        let size = max(1, size)
        self.name = name
        self.closedError = closedError
        self.state = Mutex(State(threads: Array(repeating: nil, count: size), idle: Array((0..<size).reversed())))
    }

    deinit {
        close()
    }

    /// Borrows a slot for the duration of `body`.
    public func withThread<T: Sendable>(_ body: (BlockingThread<Connection>) async throws -> T) async throws -> T {
        let (slot, thread) = try await acquire()
        defer { release(slot) }
        return try await body(thread)
    }

    /// Threads started and not exited yet (a stopped thread exits once its last job ended and
    /// its connection was dropped).
    public var runningThreads: Int {
        state.withLock { state in
            state.started.removeAll { $0.hasExited }
            return state.started.count
        }
    }

    /// Stops idle threads now and busy ones when they are returned; fails every waiter, and
    /// every later caller, with `closedError`.
    public func close() {
        let (threads, waiters) = state.withLock { state -> ([BlockingThread<Connection>], [Waiter]) in
            state.closed = true
            let idle = state.idle.compactMap { slot in
                defer { state.threads[slot] = nil }
                return state.threads[slot]
            }
            state.idle.removeAll()
            defer { state.waiters.removeAll() }
            return (idle, state.waiters)
        }
        threads.forEach { $0.stop() }
        waiters.forEach { $0.continuation.resume(throwing: closedError()) }
    }

    // MARK: - Private

    private func acquire() async throws -> (Int, BlockingThread<Connection>) {
        let id = state.withLock { state in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        let slot = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                enqueue(Waiter(id: id, continuation: continuation))
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
        return (slot, thread(for: slot))
    }

    /// Grants a free slot at once, or queues the waiter.
    private func enqueue(_ waiter: Waiter) {
        let outcome = state.withLock { state -> EnqueueOutcome in
            if state.closed { return .failed(closedError()) }
            if Task.isCancelled { return .failed(CancellationError()) }
            if let slot = state.idle.popLast() { return .granted(slot) }
            state.waiters.append(waiter)
            return .queued
        }
        switch outcome {
        case .granted(let slot): waiter.continuation.resume(returning: slot)
        case .failed(let error): waiter.continuation.resume(throwing: error)
        case .queued: break
        }
    }

    /// The slot's thread, started on first use.
    private func thread(for slot: Int) -> BlockingThread<Connection> {
        state.withLock { state in
            if let thread = state.threads[slot] { return thread }
            let thread = BlockingThread<Connection>(name: "\(name)-\(slot)")
            state.threads[slot] = thread
            state.started.append(thread)
            return thread
        }
    }

    /// Hands the slot to the first waiter, or makes it idle; after `close()`, stops its
    /// thread.
    private func release(_ slot: Int) {
        let outcome = state.withLock { state -> ReleaseOutcome in
            if state.closed {
                defer { state.threads[slot] = nil }
                return .stop(state.threads[slot])
            }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst()) }
            state.idle.append(slot)
            return .idle
        }
        switch outcome {
        case .handOver(let waiter): waiter.continuation.resume(returning: slot)
        case .stop(let thread): thread?.stop()
        case .idle: break
        }
    }
}
