import Foundation
import HeraldCore
import HeraldKafka
import Logging
import Synchronization
import Testing

/// Loggers for tests: quiet unless HERALD_TEST_LOG_LEVEL is set.
enum TestLogging {
    static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        if let level = ProcessInfo.processInfo.environment["HERALD_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) {
            logger.logLevel = level
        } else {
            logger = Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
        }
        return logger
    }
}

/// An in-process embedded broker with the catalogue's topics, and a producer for it.
final class TestCluster: Sendable {
    let broker: EmbeddedBroker
    let producer: KafkaProducer
    let partitions: Int
    static let userTopic = "user_service_topic"
    static let authTopic = "auth_service_topic"

    init(partitions: Int = 3) throws {
        broker = try EmbeddedBroker(logger: TestLogging.logger("test.broker"))
        self.partitions = partitions
        for topic in [Self.userTopic, Self.authTopic] {
            try broker.createTopic(topic, partitions: partitions)
            try broker.createTopic(topic + ".dlq", partitions: partitions)
        }
        producer = try KafkaProducer(bootstrapServers: broker.bootstrapServers, logger: TestLogging.logger("test.producer"))
    }

    var bootstrap: String { broker.bootstrapServers }

    func inspector(group: String = "herald-test-inspector") throws -> KafkaInspector {
        try KafkaInspector(bootstrapServers: bootstrap, groupID: group, logger: TestLogging.logger("test.inspector"))
    }

    func send(_ records: [OutboundRecord]) async throws {
        try await producer.send(records)
    }

    /// A JSON event record on the auth topic, keyed by `key`.
    static func event(
        _ fields: [String: Any], topic: String = authTopic, key: String, headers: [MessageHeader] = []
    ) -> OutboundRecord {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return OutboundRecord(topic: topic, key: Array(key.utf8), value: Array(data), headers: headers)
    }

    static func roleEvent(_ role: String, id: String, at seconds: Int, type: String = "RolePermissionsChanged") -> OutboundRecord {
        event(["event_type": type, "event_id": id, "role": role, "event_timestamp": seconds], key: role)
    }

    /// Waits for `condition`, polling; fails the test after `timeout` (a liveness bound, not a speed check).
    static func eventually(
        _ what: String, timeout: Duration = .seconds(180), every interval: Duration = .milliseconds(50),
        _ condition: () async throws -> Bool, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // A condition that throws has not come true yet: on a busy machine a server the
        // condition reads (herald's /metrics, say) may not be listening yet. The last error
        // is reported if time runs out.
        var lastError: (any Error)?
        while clock.now < deadline {
            do {
                if try await condition() { return }
                lastError = nil
            } catch {
                lastError = error
            }
            try await Task.sleep(for: interval)
        }
        Issue.record(
            "timed out waiting for \(what)\(lastError.map { "; the last check failed: \($0)" } ?? "")", sourceLocation: sourceLocation)
        throw CancellationError()
    }
}

/// An effect applier that records what it applied and can be told to fail.
final class RecordingApplier: EffectApplier {
    struct TransientFailure: ClassifiedError, CustomStringConvertible {
        var isTransient: Bool { true }
        var description: String { "dependency unavailable (test)" }
    }

    private struct State {
        var applied: [EventMetadata] = []
        var failuresLeft = 0
        var calls = 0
    }
    private let state = Mutex(State())

    func failNext(_ count: Int) {
        state.withLock { $0.failuresLeft = count }
    }

    func apply(_ events: [AcceptedEvent]) async throws -> Set<EventID> {
        try state.withLock { s in
            s.calls += 1
            if s.failuresLeft > 0 {
                s.failuresLeft -= 1
                throw TransientFailure()
            }
            s.applied.append(contentsOf: events.map(\.metadata))
        }
        return []
    }

    var applied: [EventMetadata] { state.withLock { $0.applied } }
    var calls: Int { state.withLock { $0.calls } }
}

/// A consumer wired like `herald run`, with injectable applier.
struct TestConsumer {
    let consumer: KafkaEventConsumer
    let task: Task<Void, Error>

    init(
        cluster: TestCluster, group: String, applier: any EffectApplier, ignored: Set<EventType> = [],
        backoff: Backoff = Backoff(initial: .milliseconds(20), cap: .milliseconds(200)),
        memoryBudget: MemoryBudget = MemoryBudget(bytes: MemoryBudget.default),
        drainTimeout: Duration = .seconds(5), properties: [String: String] = [:],
        handlers: [any EventHandler] = [RevocationHandler()], logger: Logger = TestLogging.logger("test.consumer")
    ) throws {
        let dispatcher = EventDispatcher(handlers: handlers, ignoredTypes: ignored)
        let processor = BatchProcessor(
            dispatcher: dispatcher, applier: applier,
            deadLetters: KafkaDeadLetterPublisher(producer: cluster.producer, logger: TestLogging.logger("test.dlq")),
            backoff: backoff, consumerGroup: group, logger: TestLogging.logger("test.events"))
        var props = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "topic.metadata.refresh.interval.ms": "1000"]
        props.merge(properties) { $1 }
        consumer = try KafkaEventConsumer(
            settings: KafkaConsumerSettings(
                bootstrapServers: cluster.bootstrap, groupID: group, topics: [TestCluster.userTopic, TestCluster.authTopic],
                properties: props, memoryBudget: memoryBudget, maxBatch: 100,
                commitInterval: .milliseconds(200), drainTimeout: drainTimeout),
            processor: processor, logger: logger)
        let c = consumer
        task = Task { try await c.run() }
    }

    func stop() async throws {
        consumer.triggerShutdown()
        try await task.value
    }
}
