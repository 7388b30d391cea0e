import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Dedicated OS threads that share one queue of jobs; each thread owns at most one
/// `Resource` (an SMTP session with its libcurl handle) that its jobs open, use and keep.
/// The blocking calls of the jobs (`curl_easy_perform`, file writes) never occupy a thread of
/// Swift's cooperative pool. A free thread takes the next job, so one slow server reply does
/// not hold back the mail behind it.
///
/// The threads block `SIGPIPE`: a write to a connection the server has reset fails with
/// `EPIPE` instead of killing the process.
final class WorkerThreads<Resource>: Sendable {
    typealias Job = @Sendable (inout Resource?) -> Void

    private let queue: JobQueue

    init(count: Int, name: String) {
        let queue = JobQueue(threads: count)
        self.queue = queue
        for index in 0..<count {
            let thread = Thread {
                Self.blockSIGPIPE()
                var resource: Resource?
                while let job = queue.next() {
                    job(&resource)
                }
                // Closes the session (libcurl sends QUIT) on this thread.
                resource = nil
                queue.exited()
            }
            thread.name = count == 1 ? name : "\(name)-\(index)"
            thread.start()
        }
    }

    deinit {
        queue.stop()
    }

    /// Runs `body` on a free thread with its resource; `closed` is returned when the threads
    /// were stopped before the job could be queued.
    func run<T: Sendable>(
        closed: @autoclosure () -> T, _ body: @escaping @Sendable (inout Resource?) -> T
    ) async -> T {
        let closedValue = closed()
        return await withCheckedContinuation { continuation in
            let posted = queue.post { resource in continuation.resume(returning: body(&resource)) }
            if !posted { continuation.resume(returning: closedValue) }
        }
    }

    /// The threads finish the queued jobs, drop their resources and exit.
    func stop() {
        queue.stop()
    }

    /// Threads that have not exited yet.
    var runningThreads: Int { queue.running }

    private static func blockSIGPIPE() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// The queue between async callers and the threads. Every queued job and every thread's
    /// stop signals the semaphore once, so each thread's last `next()` returns nil.
    private final class JobQueue: Sendable {
        private struct State {
            var jobs: [Job] = []
            var head = 0
            var stopped = false
            var running: Int
        }

        private let state: Mutex<State>
        private let wakeup = DispatchSemaphore(value: 0)
        private let threads: Int

        init(threads: Int) {
            self.threads = threads
            self.state = Mutex(State(running: threads))
        }

        var running: Int { state.withLock { $0.running } }

        func exited() {
            state.withLock { $0.running -= 1 }
        }

        func post(_ job: @escaping Job) -> Bool {
            let accepted = state.withLock { state in
                if state.stopped { return false }
                state.jobs.append(job)
                return true
            }
            if accepted { wakeup.signal() }
            return accepted
        }

        func stop() {
            let threads = state.withLock { state in
                if state.stopped { return 0 }
                state.stopped = true
                return self.threads
            }
            for _ in 0..<threads { wakeup.signal() }
        }

        /// Blocks until a job or the stop arrives; nil means exit.
        func next() -> Job? {
            wakeup.wait()
            return state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head == state.jobs.count {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return job
            }
        }
    }
}
