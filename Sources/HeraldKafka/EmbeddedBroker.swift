import CRdKafka
import HeraldCore
import Logging

/// A Kafka-protocol broker inside this process: librdkafka's mock cluster
/// (`rdkafka_mock.h`). It listens on 127.0.0.1 on ports the OS picks, keeps data in memory
/// (only the newest ~5 MB per partition) and supports consumer groups, offset commits and
/// idempotent producers: enough for development, tests and benchmarks, never production.
public final class EmbeddedBroker: Sendable {
    nonisolated(unsafe) private let owner: OpaquePointer
    nonisolated(unsafe) private let cluster: OpaquePointer
    private let context: RDKafkaClientContext
    /// `host:port,...` to give clients as `bootstrap.servers`.
    public let bootstrapServers: String

    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        // The bookkeeping handle has no bootstrap.servers, and librdkafka says so at notice
        // level on every start ("client will not be able to connect"): true, and no concern.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        let context = RDKafkaClientContext(logger: quiet)
        self.context = context
        // The mock cluster needs a client handle for its bookkeeping; it serves any client.
        let conf = try RDKafkaConfiguration.make([("client.id", "herald-embedded-broker")], secretKeys: [], context: context)
        self.owner = try RDKafkaConfiguration.handle(RD_KAFKA_PRODUCER, conf: conf)
        guard let cluster = rd_kafka_mock_cluster_new(owner, Int32(brokers)) else {
            rd_kafka_destroy(owner)
            throw KafkaError.make(.clientFailure, "cannot start the embedded broker")
        }
        self.cluster = cluster
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }

    /// Creates a topic (a no-op error for one that exists is ignored).
    public func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
            throw KafkaError.rdKafka(err, message: "cannot create topic \(name)")
        }
    }

    /// Delays every response of broker `id` (1-based) by `milliseconds`: beyond the clients'
    /// timeouts, the broker is unreachable for them while its listener stays open.
    public func setRoundTripTime(_ id: Int32 = 1, milliseconds: Int) {
        rd_kafka_mock_broker_set_rtt(cluster, id, Int32(milliseconds))
    }

    /// Errors the embedded broker can be told to answer with (fault injection for tests and
    /// `herald broker`).
    public enum InjectedError: String, Sendable, CaseIterable {
        /// The idempotent producer's sequence is out of step with the broker's: librdkafka
        /// raises a fatal error, the producer can never send again.
        case outOfOrderSequence = "out-of-order-sequence"
        /// The topic is not authorized for this client.
        case topicAuthorizationFailed = "topic-authorization-failed"

        var code: rd_kafka_resp_err_t {
            switch self {
            case .outOfOrderSequence: RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
            case .topicAuthorizationFailed: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
            }
        }
    }

    /// Answers the next `count` produce requests (from any client) with `error`.
    public func failProduceRequests(_ count: Int, with error: InjectedError) {
        var errors = [rd_kafka_resp_err_t](repeating: error.code, count: count)
        // ApiKey 0 is Produce.
        rd_kafka_mock_push_request_errors_array(cluster, 0, errors.count, &errors)
    }

    /// Takes broker `id` (1-based) down or up: clients see connection failures meanwhile.
    /// Coming up binds the old port again, and librdkafka aborts the process when something
    /// else took that port meanwhile: in tests that share the machine, prefer
    /// `setRoundTripTime`.
    public func setBroker(_ id: Int32 = 1, up: Bool) {
        if up {
            rd_kafka_mock_broker_set_up(cluster, id)
        } else {
            rd_kafka_mock_broker_set_down(cluster, id)
        }
    }
}
