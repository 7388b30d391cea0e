import CRdKafka
import Logging

/// Builds an `rd_kafka_conf_t` from properties, with Herald's callbacks installed: log lines
/// and client errors go to the context's logger (source `librdkafka`), rebalances and
/// delivery reports to the context's closures.
enum RDKafkaConfiguration {
    /// - Parameter secretKeys: properties whose values must never appear in an error.
    /// - Returns: the configuration, which `rd_kafka_new` takes over.
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
                context.rebalance?(RDKafkaRebalance(err, partitions))
            }
        }
        if context.delivery != nil {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let context = RDKafkaClientContext.from(opaque), let message else { return }
                let err = message.pointee.err
                context.delivery?(message.pointee._private, err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.rdKafka(err))
            }
        }
        return conf
    }
}

/// A NUL-terminated C buffer as a String.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
