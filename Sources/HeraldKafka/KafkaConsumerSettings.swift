/// How Herald's consumer joins its group and paces its work.
public struct KafkaConsumerSettings: Sendable {
    public var bootstrapServers: String
    public var groupID: String
    public var clientID: String
    public var topics: [String]
    /// Raw librdkafka properties; Herald's delivery guarantees are applied on top.
    public var properties: [String: String]
    public var secretProperties: Set<String>
    /// Records buffered across all partitions before the poll loop stops taking more.
    public var maxBuffered: Int
    /// Records buffered in one partition before it is paused; resumed below half of it.
    public var maxBufferedPerPartition: Int
    /// Records handed to the processor at once.
    public var maxBatch: Int
    /// How often stored offsets are committed (`auto.commit.interval.ms`).
    public var commitInterval: Duration
    /// How long revoked partitions and shutdown wait for in-flight batches.
    public var drainTimeout: Duration

    public init(
        bootstrapServers: String, groupID: String, clientID: String = "herald", topics: [String],
        properties: [String: String] = [:], secretProperties: Set<String> = [], maxBuffered: Int = 10_000,
        maxBufferedPerPartition: Int = 10_000,
        maxBatch: Int = 500, commitInterval: Duration = .seconds(1), drainTimeout: Duration = .seconds(10)
    ) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.clientID = clientID
        self.topics = topics
        self.properties = properties
        self.secretProperties = secretProperties
        self.maxBuffered = maxBuffered
        self.maxBufferedPerPartition = maxBufferedPerPartition
        self.maxBatch = maxBatch
        self.commitInterval = commitInterval
        self.drainTimeout = drainTimeout
    }

    /// Properties a user may not override: they are what makes delivery at-least-once.
    static let guaranteed: [String: String] = [
        "enable.auto.offset.store": "false",
        "enable.auto.commit": "true",
    ]

    func librdkafkaProperties() throws(KafkaError) -> [(String, String)] {
        for (key, value) in Self.guaranteed {
            if let given = properties[key], given != value {
                throw KafkaError.configuration(
                    "librdkafka property \(key) must be \(value): Herald stores an offset only after the record's outcome is final")
            }
        }
        var props: [(String, String)] = [
            ("client.id", clientID),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            // Bound librdkafka's prefetch (default: a 64 MiB queue, 50 MiB fetches); Herald
            // buffers on top of it. Measured in BENCHMARKS.md: lower costs throughput.
            ("queued.max.messages.kbytes", "8192"),
            ("fetch.max.bytes", "8388608"),
            ("max.partition.fetch.bytes", "524288"),
        ]
        props += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        props += [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", groupID),
            ("auto.commit.interval.ms", String(max(1, Int(commitInterval.seconds * 1000)))),
        ]
        props += Self.guaranteed.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return props
    }
}
