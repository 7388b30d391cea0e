import CRdKafka

extension KafkaError {
    /// An error librdkafka reported as a `rd_kafka_resp_err_t`. With `fatal`, the code is
    /// `.fatal` whatever the underlying error (which `rdKafkaCode` keeps).
    static func rdKafka(
        _ err: rd_kafka_resp_err_t, message: String? = nil, fatal: Bool = false, file: String = #fileID, line: UInt = #line
    ) -> KafkaError {
        KafkaError(
            fatal ? .fatal : code(of: err), message: message ?? String(cString: rd_kafka_err2str(err)), rdKafkaCode: err.rawValue,
            rdKafkaName: String(cString: rd_kafka_err2name(err)), file: file, line: line)
    }

    /// An error from librdkafka's raw code, as `rdKafka(_:)` (tests name codes by number).
    static func rdKafka(
        rawCode: Int32, message: String? = nil, fatal: Bool = false, file: String = #fileID, line: UInt = #line
    ) -> KafkaError {
        rdKafka(rd_kafka_resp_err_t(rawValue: rawCode), message: message, fatal: fatal, file: file, line: line)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    static func rdKafka(consuming error: OpaquePointer, file: String = #fileID, line: UInt = #line) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        return rdKafka(
            rd_kafka_error_code(error), message: String(cString: rd_kafka_error_string(error)),
            fatal: rd_kafka_error_is_fatal(error) != 0, file: file, line: line)
    }

    /// The domain code of a librdkafka error. Only the codes that no amount of retrying fixes
    /// are permanent; everything else (broker down, timeouts, leader changes, authorization
    /// that an operator may still grant) is transient.
    private static func code(of err: rd_kafka_resp_err_t) -> Code {
        switch err {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: .messageTooLarge
        case RD_KAFKA_RESP_ERR_INVALID_RECORD, RD_KAFKA_RESP_ERR_INVALID_MSG: .invalidMessage
        case RD_KAFKA_RESP_ERR__INVALID_ARG: .invalidRequest
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION: .invalidTopic
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            .unknownTopic
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED: .topicAuthorizationFailed
        case RD_KAFKA_RESP_ERR__QUEUE_FULL: .queueFull
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
            .timedOut
        case RD_KAFKA_RESP_ERR__NO_OFFSET: .noOffset
        case RD_KAFKA_RESP_ERR__PARTITION_EOF: .partitionEOF
        case RD_KAFKA_RESP_ERR__FATAL: .fatal
        default: .unavailable
        }
    }
}
