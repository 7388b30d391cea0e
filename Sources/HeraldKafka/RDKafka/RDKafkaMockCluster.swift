import CRdKafka

/// librdkafka's mock cluster (`rdkafka_mock.h`): Kafka-protocol brokers inside this process,
/// on 127.0.0.1 ports the OS picks, keeping data in memory. It needs a client handle of its
/// own for its bookkeeping; it serves any client. Destroyed with the value.
final class RDKafkaMockCluster: Sendable {
    private let owner: RDKafkaClient
    nonisolated(unsafe) private let cluster: OpaquePointer
    /// `host:port,...` to give clients as `bootstrap.servers`.
    let bootstrapServers: String

    init(brokers: Int, context: RDKafkaClientContext) throws(KafkaError) {
        owner = try RDKafkaClient(
            .producer, properties: [("client.id", "herald-embedded-broker")], secretKeys: [], context: context)
        guard let cluster = rd_kafka_mock_cluster_new(owner.handle, Int32(brokers)) else {
            throw KafkaError.make(.clientFailure, "cannot start the embedded broker")
        }
        self.cluster = cluster
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        owner.destroy()
    }

    /// Creates a topic (replication factor 1); one that exists already is no error.
    func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
            throw KafkaError.rdKafka(err, message: "cannot create topic \(name)")
        }
    }

    /// Delays every response of broker `id` (1-based) by `milliseconds`.
    func setRoundTripTime(broker id: Int32, milliseconds: Int) {
        rd_kafka_mock_broker_set_rtt(cluster, id, Int32(milliseconds))
    }

    /// Answers the next `count` produce requests (from any client) with `error`.
    func failProduceRequests(_ count: Int, with error: EmbeddedBroker.InjectedError) {
        var errors = [rd_kafka_resp_err_t](repeating: error.rdKafkaCode, count: count)
        // ApiKey 0 is Produce.
        rd_kafka_mock_push_request_errors_array(cluster, 0, errors.count, &errors)
    }

    /// Takes broker `id` (1-based) down or up.
    func setBroker(_ id: Int32, up: Bool) {
        if up {
            rd_kafka_mock_broker_set_up(cluster, id)
        } else {
            rd_kafka_mock_broker_set_down(cluster, id)
        }
    }
}

extension EmbeddedBroker.InjectedError {
    fileprivate var rdKafkaCode: rd_kafka_resp_err_t {
        switch self {
        case .outOfOrderSequence: RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
        case .topicAuthorizationFailed: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        }
    }
}
