import CRdKafka
import Logging

/// The Swift side of a librdkafka client, reached from C callbacks through the client's
/// opaque pointer. Holds only immutable, thread-safe state: log and error callbacks run on
/// librdkafka's own threads; rebalance and delivery callbacks run inside the poll call that
/// serves them, on the thread that makes it.
final class RDKafkaClientContext: Sendable {
    let logger: Logger
    /// A consumer's rebalances, inside `rd_kafka_consumer_poll` or `rd_kafka_consumer_close`.
    let rebalance: (@Sendable (RDKafkaRebalance) -> Void)?
    /// A producer's delivery reports, inside `rd_kafka_poll` or `rd_kafka_flush`: the opaque
    /// pointer given to `produce`, and the delivery error (nil when the broker acknowledged).
    let delivery: (@Sendable (UnsafeMutableRawPointer?, KafkaError?) -> Void)?

    init(
        logger: Logger, rebalance: (@Sendable (RDKafkaRebalance) -> Void)? = nil,
        delivery: (@Sendable (UnsafeMutableRawPointer?, KafkaError?) -> Void)? = nil
    ) {
        self.logger = logger
        self.rebalance = rebalance
        self.delivery = delivery
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> RDKafkaClientContext? {
        guard let opaque else { return nil }
        return Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    /// syslog levels (librdkafka's) to swift-log levels.
    static func level(_ syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }
}
