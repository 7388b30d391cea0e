import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `LISTEN`s on one channel with its own connection and calls `onNotify` for every batch of
/// notifications (the courier's mail channel, the outbox relay's channel; the channel is in
/// every log line's metadata). The connection lives on a dedicated thread that waits in
/// `poll(2)` on its socket (never on Swift's cooperative pool). A lost connection is
/// re-opened with backoff; `onNotify` is also called after every (re)connect, since
/// notifications sent meanwhile are lost: the caller then looks for work it may have missed.
public final class PostgresListener: Sendable {
    private let settings: PostgresConnectionSettings
    private let channel: String
    private let logger: Logger
    private let onNotify: @Sendable () -> Void
    private let stopped = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    /// Written to by `stop()` so that `poll(2)` returns at once.
    private let interruptRead: Int32
    private let interruptWrite: Int32
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameter channel: an identifier (`[A-Za-z_][A-Za-z0-9_]*`); it is double-quoted.
    public init(
        conninfo: String, password: String? = nil, channel: String, connectTimeout: Duration = .seconds(5),
        applicationName: String = "herald-outbox-listen", logger: Logger, onNotify: @escaping @Sendable () -> Void
    ) {
        self.settings = PostgresConnectionSettings(
            conninfo: conninfo, password: password, connectTimeout: connectTimeout, statementTimeout: .seconds(30),
            applicationName: applicationName)
        self.channel = channel
        self.logger = logger
        self.onNotify = onNotify
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        self.interruptRead = fds[0]
        self.interruptWrite = fds[1]
    }

    deinit {
        if interruptRead >= 0 { close(interruptRead) }
        if interruptWrite >= 0 { close(interruptWrite) }
    }

    /// Starts the listening thread (once).
    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            serve()
            finished.signal()
        }
        thread.name = "herald-pg-listen"
        thread.start()
    }

    /// Stops the thread and closes its connection; returns when it has.
    public func stop() async {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(interruptWrite, &byte, 1)
        guard started.load(ordering: .acquiring) else { return }
        let finished = self.finished
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                finished.wait()
                continuation.resume()
            }
        }
    }

    // MARK: - The thread

    private func serve() {
        var connection: PostgresConnection?
        var failures = 0
        let metadata: Logger.Metadata = [PostgresLogKey.endpoint: "\(settings.endpoint)", "channel": "\(channel)"]
        while !stopped.load(ordering: .acquiring) {
            guard let open = connection else {
                do {
                    let opened = try PostgresConnection.open(settings, logger: logger)
                    try opened.listen(channel)
                    connection = opened
                    if failures > 0 { logger.notice("listening for notifications again", metadata: metadata) }
                    failures = 0
                    onNotify()
                } catch {
                    failures += 1
                    logger.log(
                        level: failures == 1 ? .warning : .debug, "cannot LISTEN for notifications; polling meanwhile",
                        metadata: metadata.merging([PostgresLogKey.error: "\(error)"]) { $1 })
                    // Back off without blocking `stop()`: wait on the interrupt pipe.
                    let delay = min(30.0, 0.2 * Double(1 << min(failures, 8)))
                    var descriptor = pollfd(fd: interruptRead, events: Int16(POLLIN), revents: 0)
                    _ = poll(&descriptor, 1, Int32(delay * 1000))
                }
                continue
            }
            do {
                let notifications = try open.waitForNotifications(timeout: .seconds(5), interrupt: interruptRead)
                if !notifications.isEmpty { onNotify() }
            } catch {
                logger.warning(
                    "the LISTEN connection broke; reconnecting",
                    metadata: metadata.merging([PostgresLogKey.error: "\(error)"]) { $1 })
                connection = nil
                onNotify()
            }
        }
        connection = nil
    }
}
