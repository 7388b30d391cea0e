import HeraldCore
import Synchronization

/// One memory budget for the consumer side of the process, in bytes (`HERALD_MEMORY_BUDGET`),
/// shared by however many partitions are assigned. It is split once, at start-up:
/// - **records** (five eighths): the records Herald holds, buffered and in the batches being
///   processed, counted as `InboundMessage.memoryFootprint`. Each assigned partition may hold
///   its share (records ÷ assigned partitions, recomputed on every rebalance); the poll thread
///   pauses a partition that reaches its share, or every partition once the whole records part
///   is in use, and resumes it when it has drained to half (`PartitionPauses`).
/// - **prefetch** (a quarter): librdkafka's fetch responses and partition queues
///   (`fetch.max.bytes`, `max.partition.fetch.bytes`, `queued.max.messages.kbytes`). The poll
///   thread reads every partition's queue as fast as it fills, and pausing drops what
///   librdkafka prefetched for a partition, so its queues stay short.
/// - **dead letters** (an eighth): the dead-letter producer's queue (`queue.buffering.max.kbytes`).
///
/// A record larger than a partition's share is still taken, alone: the partition is then
/// paused until it is processed. A partition goes over its share by at most what one fetch
/// brought it.
public struct MemoryBudget: Sendable, Equatable {
    /// The smallest budget `HERALD_MEMORY_BUDGET` accepts.
    public static let minimum = 8 << 20
    public static let `default` = 32 << 20

    public let bytes: Int

    public init(bytes: Int) {
        // Tests use budgets far below `minimum`, to make partitions pause.
        precondition(bytes >= 64 << 10, "a memory budget below 64 KiB")
        self.bytes = bytes
    }

    /// What the records Herald holds may use, across all partitions.
    public var records: Int { bytes / 8 * 5 }

    /// What one partition's records may use while `assigned` partitions are assigned.
    func share(assigned: Int) -> Int { records / max(1, assigned) }

    /// librdkafka's prefetch, sized from the budget: small fetches, often. A fetched record
    /// takes librdkafka three to four times its bytes (its op and message structures) until
    /// the poll thread copies it out, which it does as soon as it arrives.
    var consumerProperties: [(String, String)] {
        [
            // One fetch response (a record larger than this still comes, alone); librdkafka
            // wants at least `message.max.bytes` (1,000,000 by default).
            ("fetch.max.bytes", String(max(bytes / 32, 1 << 20))),
            ("max.partition.fetch.bytes", String(min(max(bytes / 512, 16 << 10), 1 << 20))),
            // A safety net only: the poll thread empties the queues as they fill.
            ("queued.max.messages.kbytes", String(max(64, bytes / 512 / 1024))),
            ("queued.min.messages", "100000"),
            // librdkafka 2.0 does not fetch a partition whose queue went over those limits
            // again until its broker thread wakes up, which a fetch response does and which
            // otherwise takes up to a second. An empty fetch is answered after this long, so
            // such a partition waits at most 10 ms (at up to 100 empty fetches per second per
            // broker while idle); it also bounds the delivery latency of a new event.
            ("fetch.wait.max.ms", "10"),
        ]
    }

    /// The dead-letter producer's queue, sized from the budget.
    public var producerProperties: [String: String] {
        ["queue.buffering.max.kbytes": String(max(1024, bytes / 8 / 1024))]
    }
}

/// The bytes the records held by every partition worker take, shared by the workers (which
/// add and release) and the poll thread (which reads).
final class MemoryInUse: Sendable {
    private let bytes = Atomic<Int>(0)

    func add(_ n: Int) { bytes.add(n, ordering: .relaxed) }
    func release(_ n: Int) { bytes.subtract(n, ordering: .relaxed) }
    var current: Int { bytes.load(ordering: .relaxed) }
}

extension InboundMessage {
    /// What a record takes in Herald's memory, approximately: its bytes, plus the arrays and
    /// strings that hold them (measured: about 200 bytes for a record with a key, a value and
    /// no headers).
    var memoryFootprint: Int {
        var n = 200 + (key?.count ?? 0) + (value?.count ?? 0)
        for header in headers { n += 64 + header.key.utf8.count + (header.value?.count ?? 0) }
        return n
    }
}
