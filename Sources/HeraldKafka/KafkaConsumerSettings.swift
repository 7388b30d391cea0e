/// How Herald's consumer joins its group and paces its work.
public struct KafkaConsumerSettings: Sendable {
    public var bootstrapServers: String
    public var groupID: String
    public var clientID: String
    public var topics: [String]
    /// Raw librdkafka properties; Herald's delivery guarantees (`OffsetCommitPolicy`) are
    /// applied on top, and properties that contradict them are refused.
    public var properties: [String: String]
    public var secretProperties: Set<String>
    /// The bytes the consumer's records may take, buffered, in flight and prefetched, shared by
    /// the assigned partitions (`MemoryBudget`).
    public var memoryBudget: MemoryBudget
    /// Records handed to the processor at once.
    public var maxBatch: Int
    /// How often stored offsets are committed (by the consumer's poll thread: see
    /// `OffsetCommitPolicy`).
    public var commitInterval: Duration
    /// How long revoked partitions and shutdown wait for in-flight batches.
    public var drainTimeout: Duration

    public init(
        bootstrapServers: String, groupID: String, clientID: String = "herald", topics: [String],
        properties: [String: String] = [:], secretProperties: Set<String> = [],
        memoryBudget: MemoryBudget = MemoryBudget(bytes: MemoryBudget.default),
        maxBatch: Int = 500, commitInterval: Duration = .seconds(1), drainTimeout: Duration = .seconds(10)
    ) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.clientID = clientID
        self.topics = topics
        self.properties = properties
        self.secretProperties = secretProperties
        self.memoryBudget = memoryBudget
        self.maxBatch = maxBatch
        self.commitInterval = commitInterval
        self.drainTimeout = drainTimeout
    }

    /// When and how offsets are stored and committed.
    var commitPolicy: OffsetCommitPolicy { OffsetCommitPolicy(interval: commitInterval) }

    /// The consumer's librdkafka properties: Herald's defaults, then the user's, then what the
    /// group and the commit policy require.
    /// - Throws: `KafkaError` (`.configuration`) when the user's properties contradict the
    ///   commit policy.
    func librdkafkaProperties() throws(KafkaError) -> [(String, String)] {
        try OffsetCommitPolicy.check(properties)
        var props: [(String, String)] = [
            ("client.id", clientID),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
        ]
        // librdkafka's prefetch, sized from the memory budget (the user's properties may override).
        props += memoryBudget.consumerProperties
        props += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        props += [
            ("bootstrap.servers", bootstrapServers),
            ("group.id", groupID),
        ]
        props += commitPolicy.librdkafkaProperties
        return props
    }
}
