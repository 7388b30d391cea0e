import HeraldCore

/// An error from librdkafka or from Herald's use of it. Callers never import C to match one:
/// `code` says what went wrong, `isTransient` whether the same operation may succeed later,
/// `isFatal` whether the client can never work again. librdkafka's own code and name, when
/// the error came from librdkafka, are kept in `rdKafkaCode` and `rdKafkaName`.
///
/// `description` is safe to log and to store (an outbox row's `error_message` holds it): it
/// never contains a secret property's value. `debugDescription` adds where it was raised.
public struct KafkaError: ClassifiedError, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What went wrong, in a form callers can match on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Sendable {
            case configuration
            case clientFailure = "client failure"
            case clientClosed = "client closed"
            case fatal
            case messageTooLarge = "message too large"
            case invalidMessage = "invalid message"
            case invalidRequest = "invalid request"
            case invalidTopic = "invalid topic"
            case unknownTopic = "unknown topic"
            case topicAuthorizationFailed = "topic authorization failed"
            case queueFull = "queue full"
            case timedOut = "timed out"
            case noOffset = "no offset"
            case partitionEOF = "partition end"
            case unavailable
        }

        fileprivate let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// librdkafka refused a property or a combination of them, or could not create a
        /// client with them. Retrying never fixes it. The message never holds a secret
        /// property's value. Permanent.
        public static let configuration = Code(.configuration)
        /// librdkafka could not create an object Herald needs (a configuration object, the
        /// embedded broker). Permanent.
        public static let clientFailure = Code(.clientFailure)
        /// The producer or inspector was closed (Herald is shutting down). Transient: the work
        /// is redone by the next run.
        public static let clientClosed = Code(.clientClosed)
        /// librdkafka's fatal error: the client broke a guarantee (an idempotent producer's
        /// sequence) and can never be used again; it must be replaced. `rdKafkaCode` holds the
        /// underlying error. Permanent.
        public static let fatal = Code(.fatal)
        /// The record is larger than the broker or the client accepts (`MSG_SIZE_TOO_LARGE`,
        /// `RECORD_LIST_TOO_LARGE`). Permanent for that record.
        public static let messageTooLarge = Code(.messageTooLarge)
        /// The broker refused the record as invalid (`INVALID_MSG`, `INVALID_RECORD`).
        /// Permanent for that record.
        public static let invalidMessage = Code(.invalidMessage)
        /// librdkafka refused an argument (`_INVALID_ARG`). Permanent.
        public static let invalidRequest = Code(.invalidRequest)
        /// The topic cannot exist (`TOPIC_EXCEPTION`: an invalid name). Permanent.
        public static let invalidTopic = Code(.invalidTopic)
        /// The topic or partition is not known (yet) to the cluster (`_UNKNOWN_TOPIC`,
        /// `UNKNOWN_TOPIC_OR_PART`, `_UNKNOWN_PARTITION`), or has no metadata. Transient: it
        /// may be created.
        public static let unknownTopic = Code(.unknownTopic)
        /// The client may not use the topic (`TOPIC_AUTHORIZATION_FAILED`). Transient: an
        /// operator may still grant it.
        public static let topicAuthorizationFailed = Code(.topicAuthorizationFailed)
        /// librdkafka's local queue is full (`_QUEUE_FULL`). Transient: it drains.
        public static let queueFull = Code(.queueFull)
        /// No answer in time (`_MSG_TIMED_OUT`, `_TIMED_OUT`, `REQUEST_TIMED_OUT`, or a read
        /// that did not finish). Transient.
        public static let timedOut = Code(.timedOut)
        /// A commit found no stored offset newer than the committed ones (`_NO_OFFSET`):
        /// nothing to do, hardly an error. Transient.
        public static let noOffset = Code(.noOffset)
        /// A consumer reached the end of a partition (`_PARTITION_EOF`): an event, not a
        /// failure. Transient.
        public static let partitionEOF = Code(.partitionEOF)
        /// Any other librdkafka error: a broker down or unreachable, a leader change, a
        /// coordinator moving, authentication. Transient.
        public static let unavailable = Code(.unavailable)

        public var description: String { backing.rawValue }

        /// Whether an operation that failed with this code may succeed later.
        public var isTransient: Bool {
            switch backing {
            case .configuration, .clientFailure, .fatal, .messageTooLarge, .invalidMessage, .invalidRequest, .invalidTopic: false
            case .clientClosed, .unknownTopic, .topicAuthorizationFailed, .queueFull, .timedOut, .noOffset, .partitionEOF,
                .unavailable:
                true
            }
        }
    }

    public let code: Code
    /// librdkafka's `rd_kafka_resp_err_t` when the error came from librdkafka (for a fatal
    /// error, the underlying one); nil for errors Herald raises itself.
    public let rdKafkaCode: Int32?
    /// librdkafka's name for `rdKafkaCode` (`MSG_SIZE_TOO_LARGE`, `_MSG_TIMED_OUT`…).
    public let rdKafkaName: String?
    /// librdkafka's explanation, or Herald's. Never a secret property's value.
    public let message: String
    public let file: String
    public let line: UInt

    public var isTransient: Bool { code.isTransient }

    /// True for librdkafka's fatal errors: the client must be replaced.
    public var isFatal: Bool { code == .fatal }

    /// `NAME: explanation` for librdkafka's errors (`MSG_SIZE_TOO_LARGE: Broker: Message size
    /// too large`), `Kafka code: explanation` for Herald's own.
    public var description: String {
        if let rdKafkaName { return "\(rdKafkaName): \(message)" }
        return "Kafka \(code): \(message)"
    }

    public var debugDescription: String { "\(description) [\(code)] at \(file):\(line)" }

    init(_ code: Code, message: String, rdKafkaCode: Int32? = nil, rdKafkaName: String? = nil, file: String, line: UInt) {
        self.code = code
        self.message = message
        self.rdKafkaCode = rdKafkaCode
        self.rdKafkaName = rdKafkaName
        self.file = file
        self.line = line
    }
}

// MARK: - Factories for Herald's own errors (librdkafka's are in RDKafka/KafkaError+RDKafka.swift)

extension KafkaError {
    static func make(_ code: Code, _ message: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(code, message: message, file: file, line: line)
    }

    /// A property librdkafka refused, or one Herald refuses (see `OffsetCommitPolicy`).
    static func configuration(_ message: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(.configuration, message: message, file: file, line: line)
    }

    static func clientClosed(_ message: String, file: String = #fileID, line: UInt = #line) -> KafkaError {
        KafkaError(.clientClosed, message: message, file: file, line: line)
    }
}
