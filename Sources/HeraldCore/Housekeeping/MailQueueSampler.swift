import Logging

/// What the mail queue holds, for operators: counts by status and the oldest queued mail.
public protocol MailQueueStatistics: Sendable {
    func countByStatus() async throws -> [NotificationStatus: Int]
    /// The age of the oldest `queued` mail; nil when none is queued.
    func oldestQueuedAge() async throws -> Duration?
}

/// Receives the mail queue's samples (the metrics `herald_mail_queue_depth` and
/// `herald_mail_queue_oldest_age_seconds`).
public protocol MailQueueSampleObserver: Sendable {
    func mailQueue(depth: [NotificationStatus: Int], oldestQueuedAge: Duration?)
}

/// Samples the mail queue's depth by status and the age of its oldest queued mail every
/// `interval` (`HERALD_LAG_INTERVAL`). While the database fails, one warning for the whole
/// streak, not one per sample; the observer keeps the last good figures.
public struct MailQueueSampler: Sendable {
    public let queue: any MailQueueStatistics
    public let observer: any MailQueueSampleObserver
    public let interval: Duration
    let logger: Logger

    public init(queue: any MailQueueStatistics, observer: any MailQueueSampleObserver, interval: Duration, logger: Logger) {
        self.queue = queue
        self.observer = observer
        self.interval = interval
        self.logger = logger
    }

    /// Samples until the task is cancelled.
    public func run() async {
        var failing = false
        await repeating(every: interval) {
            let ok = await sampleOnce(warn: !failing)
            failing = !ok
        }
    }

    /// One sample; false when it failed (logged when `warn`).
    @discardableResult
    public func sampleOnce(warn: Bool = true) async -> Bool {
        do {
            let depth = try await queue.countByStatus()
            let age = try await queue.oldestQueuedAge()
            observer.mailQueue(depth: depth, oldestQueuedAge: age)
            return true
        } catch {
            if warn && !Task.isCancelled { logger.warning("cannot sample the mail queue", metadata: ["error": "\(error)"]) }
            return false
        }
    }
}
