import CRdKafka

#if canImport(Glibc)
    import Glibc
#endif

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
        Self.disableNagle(ports: Self.ports(of: bootstrapServers))
    }

    /// The ports in `host:port,...`.
    private static func ports(of servers: String) -> Set<UInt16> {
        Set(servers.split(separator: ",").compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } })
    }

    /// Sets `TCP_NODELAY` on this process's listening sockets on `ports` (the mock brokers'),
    /// which the connections they accept inherit. The mock cluster leaves Nagle's algorithm on:
    /// when a client has several requests in flight (an idempotent producer sends one
    /// ProduceRequest per partition, up to five at once), the response to the last one waits
    /// for the ACK of the one before, which the client delays by up to 40 ms (Linux's delayed
    /// ACK), so a burst of records took ~50 ms to be acknowledged. A real broker sets
    /// `TCP_NODELAY` on every connection.
    private static func disableNagle(ports: Set<UInt16>) {
        #if canImport(Glibc)
            guard let directory = opendir("/proc/self/fd") else { return }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let fd = Int32(name) else { continue }
                var address = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let named = withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
                }
                guard named == 0, address.sin_family == sa_family_t(AF_INET), ports.contains(UInt16(bigEndian: address.sin_port))
                else { continue }
                var listening: Int32 = 0
                var size = socklen_t(MemoryLayout<Int32>.size)
                guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1 else { continue }
                var on: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            }
        #endif
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
            Self.disableNagle(ports: Self.ports(of: bootstrapServers))
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
