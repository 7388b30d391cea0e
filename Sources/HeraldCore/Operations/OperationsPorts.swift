import Synchronization

/// One assigned partition's position as operators see it: the group's committed offset, the
/// partition's watermarks, and the lag in records and in seconds.
///
/// Lag in seconds is the age of the oldest record the group has not committed: now minus the
/// timestamp of the record at the committed offset (the low watermark when nothing is
/// committed), 0 when the group is at the high watermark. It is read from Kafka, not guessed
/// from a rate, so it keeps growing while a partition is stuck retrying and stays 0 while
/// nothing is produced.
public struct PartitionLag: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// nil when the group has committed nothing for the partition.
    public var committed: Int64?
    public var low: Int64
    public var high: Int64
    /// When the record at `committed` was produced (Kafka timestamp, ms since the epoch);
    /// nil when there is no lag or the record could not be read.
    public var oldestUnconsumedTimestamp: Int64?
    /// When this was sampled (ms since the epoch).
    public var sampledAt: Int64

    public init(
        topic: String, partition: Int32, committed: Int64?, low: Int64, high: Int64, oldestUnconsumedTimestamp: Int64?,
        sampledAt: Int64
    ) {
        self.topic = topic
        self.partition = partition
        self.committed = committed
        self.low = low
        self.high = high
        self.oldestUnconsumedTimestamp = oldestUnconsumedTimestamp
        self.sampledAt = sampledAt
    }

    /// Where the group resumes: the committed offset, or the low watermark (Herald's
    /// `auto.offset.reset` is earliest) when nothing is committed or it fell out of retention.
    public var resumeOffset: Int64 { max(committed ?? low, low) }

    /// Records produced and not yet committed by the group.
    public var lagMessages: Int64 { max(0, high - resumeOffset) }

    /// The age of the oldest uncommitted record, in seconds; 0 without lag.
    public var lagSeconds: Double {
        guard lagMessages > 0, let ts = oldestUnconsumedTimestamp else { return 0 }
        return Double(max(0, sampledAt - ts)) / 1000
    }
}

/// What the Kafka consumer reports for metrics and readiness; every method has a no-op default.
public protocol ConsumerObserver: Sendable {
    /// A rebalance assigned or revoked `partitions` partitions (possibly 0).
    func rebalanced(_ kind: RebalanceKind, partitions: Int)
    /// How many partitions are paused (waiting on a retry) right now.
    func pausedPartitions(_ count: Int)
    /// A fresh sample of every assigned partition; partitions missing from it are no longer assigned.
    func lagSampled(_ partitions: [PartitionLag])
    /// Where the memory budget stands (`HERALD_MEMORY_BUDGET`): the bytes of the records the
    /// consumer holds, what its records part allows, the partitions paused because their
    /// share is full, and how many memory pauses there have been since start. Reported at
    /// most every 100 ms while the poll loop turns.
    func memorySampled(_ sample: MemorySample)
}

/// The consumer's memory against its budget, at one moment.
public struct MemorySample: Sendable, Equatable {
    /// Bytes of the records held (buffered and in the batches being processed).
    public var recordBytes: Int
    /// What the budget's records part allows.
    public var recordLimit: Int
    /// Partitions paused right now because their share is full.
    public var pausedPartitions: Int
    /// Memory pauses since start.
    public var pauses: Int

    public init(recordBytes: Int, recordLimit: Int, pausedPartitions: Int, pauses: Int) {
        self.recordBytes = recordBytes
        self.recordLimit = recordLimit
        self.pausedPartitions = pausedPartitions
        self.pauses = pauses
    }
}

public enum RebalanceKind: String, Sendable, CaseIterable {
    case assigned, revoked, failed
}

extension ConsumerObserver {
    public func rebalanced(_ kind: RebalanceKind, partitions: Int) {}
    public func pausedPartitions(_ count: Int) {}
    public func lagSampled(_ partitions: [PartitionLag]) {}
    public func memorySampled(_ sample: MemorySample) {}
}

public struct NoConsumerObserver: ConsumerObserver {
    public init() {}
}

/// The external services Herald depends on, as metric label values.
public enum Dependency: String, Sendable, CaseIterable {
    case redis, postgres
    /// The OAuth2 token endpoint the SMTP mailer gets its XOAUTH2 tokens from
    /// (`HERALD_SMTP_OAUTH2_TOKEN_URL`).
    case smtpOAuth2 = "smtp_oauth2"
}

/// Connection events of the Redis and PostgreSQL clients, and the SMTP mailer's token
/// requests; every method has a no-op default.
public protocol ConnectionObserver: Sendable {
    /// A new connection was opened; `replacing` when it replaces one that broke or was closed.
    func connected(_ dependency: Dependency, replacing: Bool)
    /// A connection attempt or a call on an open connection failed.
    func failed(_ dependency: Dependency)
}

extension ConnectionObserver {
    public func connected(_ dependency: Dependency, replacing: Bool) {}
    public func failed(_ dependency: Dependency) {}
}

public struct NoConnectionObserver: ConnectionObserver {
    public init() {}
}

/// Counts connections a client dropped (broken, or closed by the server while idle) and not
/// yet replaced, so that the next successful open is reported as a reconnect.
public final class DroppedConnections: Sendable {
    private let count = Mutex(0)

    public init() {}

    public func add() {
        count.withLock { $0 += 1 }
    }

    /// True (and one fewer pending) when a dropped connection is waiting to be replaced.
    public func takeOne() -> Bool {
        count.withLock { n in
            guard n > 0 else { return false }
            n -= 1
            return true
        }
    }
}
