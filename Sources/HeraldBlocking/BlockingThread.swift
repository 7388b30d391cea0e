import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A dedicated OS thread that owns at most one connection of a C client library (hiredis,
/// libpq, a libcurl SMTP session) and runs the blocking calls on it, so they never occupy a
/// thread of Swift's cooperative pool. Jobs run one at a time, in order. The connection never
/// leaves the thread, so it need not be `Sendable`.
///
/// The thread blocks `SIGPIPE`: a C library that writes with write(2) to a connection the
/// server has reset would otherwise raise it and, by default, kill the process. With the
/// signal blocked the write fails with `EPIPE` and the connection is discarded.
public final class BlockingThread<Connection>: Sendable {
    /// A unit of work; it may open, use, replace or drop the thread's connection.
    public typealias Job = @Sendable (inout Connection?) -> Void

    private let mailbox = Mailbox()
    private let exitFlag = ExitFlag()

    /// Starts the thread.
    public init(name: String) {
        let mailbox = self.mailbox
        let exitFlag = self.exitFlag
        let thread = Thread {
            Self.blockSIGPIPE()
            Self.serve(mailbox)
            exitFlag.set()
        }
        thread.name = name
        thread.start()
    }

    deinit {
        mailbox.post(.stop)
    }

    /// Runs `body` on the thread with its connection and returns the result; `closed` is the
    /// error when the thread was already stopped.
    public func run<T: Sendable, Failure: Error>(
        _ body: @escaping @Sendable (inout Connection?) throws(Failure) -> T,
        closed: @escaping @Sendable () -> Failure
    ) async throws(Failure) -> T {
        let result: Result<T, Failure> = await withCheckedContinuation { continuation in
            let posted = mailbox.post(
                .job { connection in
                    continuation.resume(returning: Result { () throws(Failure) -> T in try body(&connection) })
                })
            if !posted {
                continuation.resume(returning: .failure(closed()))
            }
        }
        return try result.get()
    }

    /// Lets the thread finish its queued jobs, close its connection and exit.
    public func stop() {
        mailbox.post(.stop)
    }

    /// True once the thread has exited (after `stop()`: its queued jobs done, its connection
    /// dropped, so closed on the thread).
    public var hasExited: Bool { exitFlag.isSet }

    // MARK: - The thread

    private static func serve(_ mailbox: Mailbox) {
        var connection: Connection?
        while true {
            switch mailbox.next() {
            case .job(let job):
                job(&connection)
            case .stop:
                connection = nil
                return
            }
        }
    }

    private static func blockSIGPIPE() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }
}

extension BlockingThread {
    /// Set by the thread as it exits.
    fileprivate final class ExitFlag: Sendable {
        private let value = Atomic<Bool>(false)

        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    fileprivate enum Message: Sendable {
        case job(Job)
        case stop
    }

    /// The queue between async callers and the thread.
    fileprivate final class Mailbox: Sendable {
        private struct State {
            var messages: [Message] = []
            var head = 0
            var stopped = false
        }

        private let state = Mutex(State())
        private let wakeup = DispatchSemaphore(value: 0)

        /// Queues `message`; false when the thread was already told to stop.
        @discardableResult
        func post(_ message: Message) -> Bool {
            let accepted = state.withLock { state in
                if state.stopped { return false }
                if case .stop = message { state.stopped = true }
                state.messages.append(message)
                return true
            }
            if accepted { wakeup.signal() }
            return accepted
        }

        /// Blocks the thread until a message arrives.
        func next() -> Message {
            wakeup.wait()
            return state.withLock { state in
                let message = state.messages[state.head]
                state.head += 1
                if state.head == state.messages.count {
                    state.messages.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return message
            }
        }
    }
}
