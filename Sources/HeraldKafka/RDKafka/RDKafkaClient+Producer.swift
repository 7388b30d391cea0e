import CRdKafka
import HeraldCore

/// A producer's calls. `produce` is made from any thread; the others by the producer's poll
/// thread, which owns the client.
extension RDKafkaClient {
    /// Enqueues one record (`rd_kafka_produceva`, copying key, value and headers), to its
    /// partition when it names one, else where the partitioner puts its key, with its
    /// timestamp when it has one, else now. Its delivery report carries `opaque` back to the
    /// context's `delivery` closure.
    /// - Returns: nil when enqueued; the reason otherwise (`.queueFull` when librdkafka's local
    ///   queue is full, `.clientClosed` once the client is destroyed).
    func produce(_ record: OutboundRecord, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        let outcome = withOpenHandle { handle in
            record.topic.withCString { topic in
                withOptionalBytes(record.key) { key in
                    withOptionalBytes(record.value) { value in
                        Self.produce(
                            handle, topic: topic, partition: record.partition, timestamp: record.timestamp, key: key, value: value,
                            headers: record.headers, opaque: opaque)
                    }
                }
            }
        }
        return outcome ?? KafkaError.clientClosed("producer is closed")
    }

    private static func produce(
        _ handle: OpaquePointer, topic: UnsafePointer<CChar>, partition: Int32?, timestamp: Int64?, key: UnsafeRawBufferPointer,
        value: UnsafeRawBufferPointer,
        headers recordHeaders: [MessageHeader], opaque: UnsafeMutableRawPointer
    ) -> KafkaError? {
        let headers = rd_kafka_headers_new(recordHeaders.count)!
        for header in recordHeaders {
            if let v = header.value {
                v.withUnsafeBytes { raw in
                    _ = rd_kafka_header_add(headers, header.key, -1, raw.baseAddress, raw.count)
                }
            } else {
                _ = rd_kafka_header_add(headers, header.key, -1, nil, 0)
            }
        }
        var vus = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 6)
        vus[0].vtype = RD_KAFKA_VTYPE_TOPIC
        vus[0].u.cstr = topic
        vus[1].vtype = RD_KAFKA_VTYPE_KEY
        vus[1].u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
        vus[1].u.mem.size = key.count
        vus[2].vtype = RD_KAFKA_VTYPE_VALUE
        vus[2].u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
        vus[2].u.mem.size = value.count
        vus[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        vus[3].u.i = RD_KAFKA_MSG_F_COPY
        vus[4].vtype = RD_KAFKA_VTYPE_OPAQUE
        vus[4].u.ptr = opaque
        vus[5].vtype = RD_KAFKA_VTYPE_HEADERS
        vus[5].u.headers = headers
        if let partition {
            var vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_PARTITION
            vu.u.i32 = partition
            vus.append(vu)
        }
        if let timestamp {
            var vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_TIMESTAMP
            vu.u.i64 = timestamp
            vus.append(vu)
        }
        guard let error = rd_kafka_produceva(handle, vus, vus.count) else {
            return nil  // librdkafka owns the headers now
        }
        rd_kafka_headers_destroy(headers)
        return KafkaError.rdKafka(consuming: error)
    }

    /// Serves delivery reports (`rd_kafka_poll`, which blocks up to `timeoutMs`).
    func poll(timeoutMs: Int32) {
        rd_kafka_poll(handle, timeoutMs)
    }

    /// Waits until every record is delivered or `timeoutMs` passed (`rd_kafka_flush` blocks).
    /// - Returns: false when records are still outstanding.
    func flush(timeoutMs: Int32) -> Bool {
        rd_kafka_flush(handle, timeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Records enqueued and not yet delivered or failed.
    var outstandingRecords: Int { Int(rd_kafka_outq_len(handle)) }

    /// Fails every record still queued or in flight (their delivery reports say so), and serves
    /// those reports.
    func purgeOutstandingRecords() {
        rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        rd_kafka_poll(handle, 0)
    }

    /// Makes librdkafka raise a fatal error, as a broken idempotence guarantee would (tests).
    func raiseTestFatalError(_ reason: String) {
        _ = rd_kafka_test_fatal_error(handle, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason)
    }
}

@inline(__always)
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let bytes {
        return bytes.withUnsafeBytes(body)
    }
    return body(UnsafeRawBufferPointer(start: nil, count: 0))
}
