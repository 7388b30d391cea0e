import HeraldCore
import Logging

/// Reads dead-letter topics for `herald dlq`, beside a running Herald and without disturbing
/// it: partitions are assigned directly (no group is joined, so Herald's group never
/// rebalances), from the low watermark to the high watermark captured by `snapshot`, so a
/// read ends although letters keep arriving (a replayed record that fails again is not read
/// back in the same run), and nothing is ever committed (`enable.auto.commit=false`, no
/// commit call; the group id `herald-dlq-reader` is only a name librdkafka requires).
public final class KafkaDeadLetterReader: Sendable {
    /// The group id the reader's client carries; it never joins or commits to it.
    public static let groupID = "herald-dlq-reader"

    /// A dead-letter topic's partitions and watermarks when the command started.
    public struct TopicSnapshot: Sendable {
        public let topic: String
        /// false when the cluster does not know the topic (no letter was ever written to it
        /// on a cluster that creates topics on first use).
        public let exists: Bool
        /// Per partition: low and high watermark.
        public let partitions: [Int32: Watermarks]

        public init(topic: String, exists: Bool, partitions: [Int32: Watermarks]) {
            self.topic = topic
            self.exists = exists
            self.partitions = partitions
        }

        /// Records in the topic (high − low, summed).
        public var records: Int64 { partitions.values.reduce(0) { $0 + max(0, $1.high - $1.low) } }
    }

    public struct Watermarks: Sendable, Equatable {
        public let low: Int64
        public let high: Int64

        public init(low: Int64, high: Int64) {
            self.low = low
            self.high = high
        }
    }

    private let inspector: KafkaInspector

    /// - Parameters:
    ///   - properties: the raw librdkafka properties Herald's other clients use (security);
    ///     the reader's own (no auto commit, partition ends reported) are applied on top.
    ///   - timeout: how long a metadata request may take, and how long a read may go without
    ///     a record while records remain.
    public init(
        bootstrapServers: String, properties: [String: String] = [:], secretProperties: Set<String> = [],
        timeout: Duration = .seconds(10), logger: Logger
    ) throws(KafkaError) {
        inspector = try KafkaInspector(
            bootstrapServers: bootstrapServers, groupID: Self.groupID,
            properties: properties.merging(KafkaInspector.scanProperties) { _, ours in ours }, secretProperties: secretProperties,
            timeout: timeout, logger: logger)
    }

    /// The watermarks of every partition of `topics`, all taken before any is read.
    public func snapshot(_ topics: [String]) async throws -> [TopicSnapshot] {
        var result: [TopicSnapshot] = []
        for topic in topics {
            do {
                let marks = try await inspector.watermarks(topic)
                result.append(
                    TopicSnapshot(topic: topic, exists: true, partitions: marks.mapValues { Watermarks(low: $0.low, high: $0.high) }))
            } catch let error as KafkaError where error.code == .unknownTopic {
                result.append(TopicSnapshot(topic: topic, exists: false, partitions: [:]))
            }
        }
        return result
    }

    /// Reads the records of `snapshot` that `filter` can match (only its partition and
    /// offset narrow the read; the caller applies the rest with `filter.matches`), in batches,
    /// each partition in offset order.
    public func read(
        _ snapshot: TopicSnapshot, filter: DeadLetterFilter, _ body: ([DeadLetterRecord]) async throws -> Void
    ) async throws {
        let ranges = snapshot.partitions.compactMap { partition, marks in
            filter.range(partition: partition, low: marks.low, high: marks.high).map {
                PartitionRange(KafkaPartition(topic: snapshot.topic, partition: partition), $0)
            }
        }
        try await inspector.scan(ranges) { messages in
            try await body(messages.map(DeadLetterRecord.init))
        }
    }

    /// Checks that a broker answers within `timeout`.
    public func checkReachable(timeout: Duration) async throws {
        try await inspector.checkReachable(timeout: timeout)
    }

    public func close() async {
        await inspector.close()
    }
}
