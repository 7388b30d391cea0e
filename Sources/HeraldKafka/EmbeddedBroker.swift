import Logging

/// A Kafka-protocol broker inside this process: librdkafka's mock cluster
/// (`RDKafkaMockCluster`). It listens on 127.0.0.1 on ports the OS picks, keeps data in memory
/// (only the newest ~5 MB per partition) and supports consumer groups, offset commits and
/// idempotent producers: enough for development, tests and benchmarks, never production.
public final class EmbeddedBroker: Sendable {
    private let cluster: RDKafkaMockCluster
    /// `host:port,...` to give clients as `bootstrap.servers`.
    public var bootstrapServers: String { cluster.bootstrapServers }

    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        // The bookkeeping handle has no bootstrap.servers, and librdkafka says so at notice
        // level on every start ("client will not be able to connect"): true, and no concern.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        cluster = try RDKafkaMockCluster(brokers: brokers, context: RDKafkaClientContext(logger: quiet))
    }

    /// Creates a topic (a no-op error for one that exists is ignored).
    public func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        try cluster.createTopic(name, partitions: partitions)
    }

    /// Delays every response of broker `id` (1-based) by `milliseconds`: beyond the clients'
    /// timeouts, the broker is unreachable for them while its listener stays open.
    public func setRoundTripTime(_ id: Int32 = 1, milliseconds: Int) {
        cluster.setRoundTripTime(broker: id, milliseconds: milliseconds)
    }

    /// Errors the embedded broker can be told to answer with (fault injection for tests and
    /// `herald broker`).
    public enum InjectedError: String, Sendable, CaseIterable {
        /// The idempotent producer's sequence is out of step with the broker's: librdkafka
        /// raises a fatal error, the producer can never send again.
        case outOfOrderSequence = "out-of-order-sequence"
        /// The topic is not authorized for this client.
        case topicAuthorizationFailed = "topic-authorization-failed"
    }

    /// Answers the next `count` produce requests (from any client) with `error`.
    public func failProduceRequests(_ count: Int, with error: InjectedError) {
        cluster.failProduceRequests(count, with: error)
    }

    /// Takes broker `id` (1-based) down or up: clients see connection failures meanwhile.
    /// Coming up binds the old port again, and librdkafka aborts the process when something
    /// else took that port meanwhile: in tests that share the machine, prefer
    /// `setRoundTripTime`.
    public func setBroker(_ id: Int32 = 1, up: Bool) {
        cluster.setBroker(id, up: up)
    }
}
