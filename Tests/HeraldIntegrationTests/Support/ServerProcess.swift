import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The process of a test server (redis-server, smtp_server.py, token_server.py) this process
/// started: its pid while it runs, stopped gently or killed, and reaped once.
final class ServerProcess: Sendable {
    private let pid = Mutex<pid_t?>(nil)

    /// The running server's pid, if any.
    var current: pid_t? { pid.withLock { $0 } }

    func started(_ running: pid_t) {
        pid.withLock { $0 = running }
    }

    /// True (and forgets the pid) when `running` has exited.
    func reap(_ running: pid_t) -> Bool {
        var status: Int32 = 0
        let result = waitpid(running, &status, WNOHANG)
        guard result == running || (result == -1 && errno == ECHILD) else { return false }
        pid.withLock { if $0 == running { $0 = nil } }
        return true
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s).
    func stop() async throws {
        guard let running = current else { return }
        kill(running, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if reap(running) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        killNow()
    }

    /// SIGKILL and reap, at once. Idempotent.
    func killNow() {
        let running = pid.withLock { pid in
            defer { pid = nil }
            return pid
        }
        if let running {
            kill(running, SIGKILL)
            _ = waitpid(running, nil, 0)
        }
    }

    /// Waits until `readyFile` exists; throws `failure(exited)` when the server exits first
    /// (`exited` true) or 120 s pass (`exited` false).
    func waitForFile(_ readyFile: String, failure: (_ exited: Bool) -> any Error) async throws {
        guard let running = current else { throw failure(true) }
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if reap(running) { throw failure(true) }
            if access(readyFile, F_OK) == 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw failure(false)
    }
}
