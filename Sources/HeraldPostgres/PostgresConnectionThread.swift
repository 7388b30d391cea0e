import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A dedicated OS thread that owns at most one `PostgresConnection` and runs the blocking
/// libpq calls on it (`PQconnectdbParams`, `PQexecParams`, `PQexec`), so they never occupy a
/// thread of Swift's cooperative pool. Jobs run one at a time, in order.
///
/// The thread blocks `SIGPIPE`. libpq already sends with `MSG_NOSIGNAL` and masks the signal
/// around TLS writes; blocking it here as well costs nothing and keeps a write to a reset
/// connection an `EPIPE` error, never a dead process.
final class PostgresConnectionThread: Sendable {
    /// A unit of work; it may open, use, replace or drop the thread's connection.
    typealias Job = @Sendable (inout PostgresConnection?) -> Void

    private let mailbox = Mailbox()

    /// Starts the thread.
    init(name: String) {
        let mailbox = self.mailbox
        let thread = Thread {
            Self.blockSIGPIPE()
            Self.serve(mailbox)
        }
        thread.name = name
        thread.start()
    }

    deinit {
        mailbox.post(.stop)
    }

    /// Runs `body` on the thread with its connection and returns the result.
    func run<T: Sendable>(
        _ body: @escaping @Sendable (inout PostgresConnection?) throws -> T
    ) async throws -> T {
        let result: Result<T, any Error> = await withCheckedContinuation { continuation in
            let posted = mailbox.post(
                .job { connection in
                    continuation.resume(returning: Result { try body(&connection) })
                })
            if !posted {
                continuation.resume(returning: .failure(PostgresError.clientClosed()))
            }
        }
        return try result.get()
    }

    /// Lets the thread finish its queued jobs, close its connection and exit.
    func stop() {
        mailbox.post(.stop)
    }

    // MARK: - The thread

    private static func serve(_ mailbox: Mailbox) {
        var connection: PostgresConnection?
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

extension PostgresConnectionThread {
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
