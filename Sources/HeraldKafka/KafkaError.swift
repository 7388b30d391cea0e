import CRdKafka
import HeraldCore

/// An error from librdkafka or from Herald's use of it. Callers never import C to match one:
/// `isTransient` says whether the same operation may succeed later.
public struct KafkaError: ClassifiedError, CustomStringConvertible, Sendable {
    /// librdkafka's `rd_kafka_resp_err_t`, or 0 for errors that come from Herald itself.
    public let code: Int32
    /// librdkafka's name for the code (`_MSG_TIMED_OUT`, `MSG_SIZE_TOO_LARGE`…).
    public let name: String
    public let message: String
    public let isTransient: Bool
    public let isFatal: Bool

    public var description: String { name.isEmpty ? message : "\(name): \(message)" }

    /// True when librdkafka refused a property or a combination of them: a configuration
    /// error, which retrying never fixes. Its message never holds a secret property's value.
    public var isConfiguration: Bool { code == 0 && name == "Configuration" }

    /// True when the record is larger than the broker or client accepts.
    public var isMessageTooLarge: Bool {
        code == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue || code == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue
    }

    init(code err: rd_kafka_resp_err_t, message: String? = nil, fatal: Bool = false) {
        self.code = err.rawValue
        self.name = String(cString: rd_kafka_err2name(err))
        self.message = message ?? String(cString: rd_kafka_err2str(err))
        self.isFatal = fatal
        self.isTransient = !fatal && !Self.permanentCodes.contains(err.rawValue)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer) {
        let code = rd_kafka_error_code(error)
        self.code = code.rawValue
        self.name = String(cString: rd_kafka_error_name(error))
        self.message = String(cString: rd_kafka_error_string(error))
        self.isFatal = rd_kafka_error_is_fatal(error) != 0
        self.isTransient = !isFatal && !Self.permanentCodes.contains(code.rawValue)
        rd_kafka_error_destroy(error)
    }

    static func configuration(_ message: String) -> KafkaError {
        KafkaError(name: "Configuration", message: message, isTransient: false)
    }

    static func client(_ message: String, transient: Bool = true) -> KafkaError {
        KafkaError(name: "Client", message: message, isTransient: transient)
    }

    private init(name: String, message: String, isTransient: Bool) {
        self.code = 0
        self.name = name
        self.message = message
        self.isTransient = isTransient
        self.isFatal = false
    }

    /// Codes that no amount of retrying fixes. Everything else (broker down, timeouts,
    /// leader changes, authorization that an operator may still grant) is retried.
    private static let permanentCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_MSG.rawValue,
        RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION.rawValue,
    ]
}
