import Testing

@testable import HeraldKafka

/// How librdkafka's error codes are classified, without a broker. Codes are named by number
/// (the tests do not import C); each test also checks librdkafka's name for the number.
@Suite("KafkaError classification")
struct KafkaErrorTests {
    /// librdkafka's codes by name, as numbers (rdkafka.h).
    static let codes: [(name: String, raw: Int32, code: KafkaError.Code)] = [
        ("MSG_SIZE_TOO_LARGE", 10, .messageTooLarge),
        ("RECORD_LIST_TOO_LARGE", 18, .messageTooLarge),
        ("INVALID_MSG", 2, .invalidMessage),
        ("INVALID_RECORD", 87, .invalidMessage),
        ("_INVALID_ARG", -186, .invalidRequest),
        ("TOPIC_EXCEPTION", 17, .invalidTopic),
        ("_UNKNOWN_TOPIC", -188, .unknownTopic),
        ("UNKNOWN_TOPIC_OR_PART", 3, .unknownTopic),
        ("_UNKNOWN_PARTITION", -190, .unknownTopic),
        ("TOPIC_AUTHORIZATION_FAILED", 29, .topicAuthorizationFailed),
        ("_QUEUE_FULL", -184, .queueFull),
        ("_MSG_TIMED_OUT", -192, .timedOut),
        ("_TIMED_OUT", -185, .timedOut),
        ("REQUEST_TIMED_OUT", 7, .timedOut),
        ("_NO_OFFSET", -168, .noOffset),
        ("_PARTITION_EOF", -191, .partitionEOF),
        ("_FATAL", -150, .fatal),
        ("_TRANSPORT", -195, .unavailable),
        ("_ALL_BROKERS_DOWN", -187, .unavailable),
        ("NOT_COORDINATOR", 16, .unavailable),
        ("OUT_OF_ORDER_SEQUENCE_NUMBER", 45, .unavailable),
        ("GROUP_AUTHORIZATION_FAILED", 30, .unavailable),
    ]

    @Test("each librdkafka code maps to its domain code and keeps its number and name")
    func mapping() {
        for entry in Self.codes {
            let error = KafkaError.rdKafka(rawCode: entry.raw)
            #expect(error.rdKafkaName == entry.name, "code \(entry.raw)")
            #expect(error.rdKafkaCode == entry.raw)
            #expect(error.code == entry.code, "\(entry.name)")
        }
    }

    @Test("only what no retry fixes is permanent: too large, invalid, invalid topic, configuration, fatal")
    func transience() {
        let permanent: [KafkaError.Code] = [
            .configuration, .clientFailure, .fatal, .messageTooLarge, .invalidMessage, .invalidRequest, .invalidTopic,
        ]
        let transient: [KafkaError.Code] = [
            .clientClosed, .unknownTopic, .topicAuthorizationFailed, .queueFull, .timedOut, .noOffset, .partitionEOF, .unavailable,
        ]
        for code in permanent { #expect(!code.isTransient, "\(code)") }
        for code in transient { #expect(code.isTransient, "\(code)") }
        for entry in Self.codes {
            #expect(KafkaError.rdKafka(rawCode: entry.raw).isTransient == entry.code.isTransient, "\(entry.name)")
        }
    }

    @Test("a fatal error is .fatal whatever the underlying code, which it keeps")
    func fatal() {
        let error = KafkaError.rdKafka(rawCode: 45, fatal: true)
        #expect(error.code == .fatal)
        #expect(error.isFatal)
        #expect(!error.isTransient)
        #expect(error.rdKafkaName == "OUT_OF_ORDER_SEQUENCE_NUMBER")
        #expect(!KafkaError.rdKafka(rawCode: 45).isFatal)
    }

    @Test("the description: librdkafka's name and message, or the code for Herald's own errors; where it was raised in debugDescription")
    func descriptions() {
        let tooLarge = KafkaError.rdKafka(rawCode: 10, message: "Broker: Message size too large")
        #expect(tooLarge.description == "MSG_SIZE_TOO_LARGE: Broker: Message size too large")
        let closed = KafkaError.clientClosed("producer is closed")
        #expect(closed.description == "Kafka client closed: producer is closed")
        #expect(closed.rdKafkaCode == nil && closed.rdKafkaName == nil)
        #expect(closed.file.hasSuffix("KafkaErrorTests.swift"))
        #expect(closed.debugDescription.contains("KafkaErrorTests.swift:\(closed.line)"))
        let line: UInt = #line + 1
        let configuration = KafkaError.configuration("librdkafka property sasl.pasword: No such configuration property")
        #expect(configuration.code == .configuration && !configuration.isTransient)
        #expect(configuration.line == line)
    }

    @Test("an outbox row fails alone for what concerns its record or topic; anything else fails the batch")
    func rowProblems() {
        #expect(KafkaError.rdKafka(rawCode: 10).isRowProblem)  // too large
        #expect(KafkaError.rdKafka(rawCode: 87).isRowProblem)  // invalid record
        #expect(KafkaError.rdKafka(rawCode: 17).isRowProblem)  // invalid topic
        #expect(KafkaError.rdKafka(rawCode: 3).isRowProblem)  // unknown topic
        #expect(KafkaError.rdKafka(rawCode: 29).isRowProblem)  // topic not authorized
        #expect(!KafkaError.rdKafka(rawCode: -192).isRowProblem)  // timed out
        #expect(!KafkaError.rdKafka(rawCode: -195).isRowProblem)  // transport
        #expect(!KafkaError.rdKafka(rawCode: 45, fatal: true).isRowProblem)  // the producer's, not the row's
        #expect(!KafkaError.clientClosed("producer is closed").isRowProblem)
    }
}
