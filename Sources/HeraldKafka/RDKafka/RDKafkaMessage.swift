import CRdKafka
import HeraldCore

enum RDKafkaMessage {
    /// Copies a librdkafka message into Swift values (one allocation each for key and value).
    static func inbound(_ m: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) -> InboundMessage {
        let msg = m.pointee
        var tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(m, &tstype)
        let key = msg.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: msg.key_len)) }
        let value = msg.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: msg.len)) }
        var headers: [MessageHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            let count = rd_kafka_header_cnt(hdrs)
            headers.reserveCapacity(count)
            var name: UnsafePointer<CChar>?
            var val: UnsafeRawPointer?
            var size = 0
            for i in 0..<count where rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(
                    MessageHeader(
                        key: name.map { String(cString: $0) } ?? "",
                        value: val.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) }))
            }
        }
        return InboundMessage(
            topic: topic, partition: msg.partition, offset: msg.offset, timestamp: ts >= 0 ? ts : nil, key: key,
            value: value, headers: headers)
    }
}
