import CRdKafka
import HeraldCore

/// A message librdkafka handed out: a record, or an error event. Valid only during the call
/// that passes it (librdkafka's message is destroyed when that call returns); `inbound`
/// copies a record into Swift values.
struct RDKafkaMessage {
    private let pointer: UnsafeMutablePointer<rd_kafka_message_t>

    init(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) {
        self.pointer = pointer
    }

    /// The error this message carries instead of a record, if any.
    var error: KafkaError? {
        let err = pointer.pointee.err
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError.rdKafka(err, message: String(cString: rd_kafka_message_errstr(pointer)))
    }

    /// The topic's name, when the message has one.
    var topic: String? { pointer.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } }
    var partition: Int32 { pointer.pointee.partition }
    var offset: Int64 { pointer.pointee.offset }

    /// The record's timestamp in milliseconds since the epoch, when it has one.
    var timestamp: Int64? {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(pointer, &type)
        return ts >= 0 ? ts : nil
    }

    /// Copies the record into Swift values (one allocation each for key and value).
    func inbound(topic: String) -> InboundMessage {
        let msg = pointer.pointee
        let key = msg.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: msg.key_len)) }
        let value = msg.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: msg.len)) }
        var headers: [MessageHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(pointer, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
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
            topic: topic, partition: msg.partition, offset: msg.offset, timestamp: timestamp, key: key, value: value,
            headers: headers)
    }
}
