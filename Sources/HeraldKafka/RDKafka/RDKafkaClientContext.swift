import CRdKafka
import Logging

/// The Swift side of a librdkafka handle, reached from C callbacks through the handle's
/// opaque pointer. Holds only immutable, thread-safe state: callbacks run on librdkafka's
/// own threads.
final class RDKafkaClientContext: Sendable {
    let logger: Logger
    /// Called for rebalance events of a consumer (on the thread that polls it).
    let rebalance: (@Sendable (rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?
    /// Called for delivery reports of a producer.
    let delivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)?

    init(
        logger: Logger,
        rebalance: (@Sendable (rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)? = nil,
        delivery: (@Sendable (UnsafePointer<rd_kafka_message_t>) -> Void)? = nil
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

/// Builds an `rd_kafka_conf_t` from properties, with Herald's callbacks installed.
enum RDKafkaConfiguration {
    /// - Parameter secretKeys: properties whose values must never appear in an error.
    static func make(
        _ properties: [(String, String)], secretKeys: Set<String>, context: RDKafkaClientContext
    ) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError.make(.clientFailure, "rd_kafka_conf_new failed") }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let detail = cString(errstr)
                // An unknown name may be a misspelt secret (`sasl.pasword`): its value is not shown either.
                let shown = secretKeys.contains(key) || result == RD_KAFKA_CONF_UNKNOWN ? "" : " (value \(value))"
                throw KafkaError.configuration("librdkafka property \(key)\(shown): \(detail)")
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let context = RDKafkaClientContext.from(rd_kafka_opaque(rk)) else { return }
            let text = message.map { String(cString: $0) } ?? ""
            let fac = facility.map { String(cString: $0) } ?? ""
            context.logger.log(
                level: RDKafkaClientContext.level(level), "\(text)",
                metadata: ["librdkafka_facility": "\(fac)"], source: "librdkafka")
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let context = RDKafkaClientContext.from(opaque) else { return }
            let text = reason.map { String(cString: $0) } ?? ""
            let code = rd_kafka_resp_err_t(rawValue: err)
            context.logger.log(
                level: code == RD_KAFKA_RESP_ERR__FATAL ? .critical : .warning, "kafka client error: \(text)",
                metadata: ["kafka_error": "\(String(cString: rd_kafka_err2name(code)))"], source: "librdkafka")
        }
        if context.rebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf) { _, err, partitions, opaque in
                guard let context = RDKafkaClientContext.from(opaque), let partitions else { return }
                context.rebalance?(err, partitions)
            }
        }
        if context.delivery != nil {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let context = RDKafkaClientContext.from(opaque), let message else { return }
                context.delivery?(message)
            }
        }
        return conf
    }

    /// Creates the handle; takes ownership of `conf` on success and on failure.
    static func handle(_ type: rd_kafka_type_t, conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError.configuration(cString(errstr))
        }
        return rk
    }
}

/// A `rd_kafka_topic_partition_list_t` built from Swift values.
struct RDKafkaPartitionList: ~Copyable {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ entries: [(topic: String, partition: Int32, offset: Int64)]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(1, entries.count)))
        for e in entries {
            let tp = rd_kafka_topic_partition_list_add(pointer, e.topic, e.partition)
            tp?.pointee.offset = e.offset
        }
    }

    deinit {
        rd_kafka_topic_partition_list_destroy(pointer)
    }

    static func entries(
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) -> [(topic: String, partition: Int32, offset: Int64, error: rd_kafka_resp_err_t)] {
        let count = Int(list.pointee.cnt)
        var result: [(topic: String, partition: Int32, offset: Int64, error: rd_kafka_resp_err_t)] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            let e = list.pointee.elems[i]
            result.append((String(cString: e.topic), e.partition, e.offset, e.err))
        }
        return result
    }
}

/// A NUL-terminated C buffer as a String.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
