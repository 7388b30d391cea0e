import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import HeraldPostgres
import Logging
import ServiceLifecycle

// The Service wrappers, together: each runs one long-lived component until the service
// group's graceful shutdown, then stops it. What runs, and in which order, is `Daemon`'s list.

/// Runs the consumer; a graceful shutdown asks it to drain and commit.
public struct ConsumerService: Service {
    let consumer: KafkaEventConsumer

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await consumer.run()
        } onGracefulShutdown: {
            consumer.triggerShutdown()
        }
    }
}

/// Watches the producer that publishes dead letters and outbox rows. librdkafka's fatal
/// errors (an idempotence guarantee broken) mean it can never send again: rather than keep a
/// dead producer, which would stall every partition with a dead letter to publish, Herald
/// shuts down gracefully and exits non-zero so that its supervisor starts a fresh one.
public struct ProducerWatchdog: Service {
    let producer: KafkaProducer
    let logger: Logger

    public init(producer: KafkaProducer, logger: Logger) {
        self.producer = producer
        self.logger = logger
    }

    struct ProducerFailed: Error, CustomStringConvertible {
        let error: KafkaError
        var description: String { "the Kafka producer failed for good (\(error)); exiting so that a supervisor restarts Herald" }
    }

    public func run() async throws {
        // Returns nil once the producer closed without a fatal error (at shutdown).
        if let error = await producer.waitForFatalError() {
            logger.critical("the Kafka producer failed for good; shutting down to be restarted", metadata: ["error": "\(error)"])
            throw ProducerFailed(error: error)
        }
        // A service that returns before its turn in a graceful shutdown cancels the group:
        // wait for the turn, which comes right after the producer closed.
        try? await gracefulShutdown()
    }
}

/// Waits for shutdown, then closes a resource (after the services started later stopped).
public struct CloseOnShutdownService: Service {
    let name: String
    let close: @Sendable () async -> Void

    public init(name: String, close: @escaping @Sendable () async -> Void) {
        self.name = name
        self.close = close
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// Runs a loop that ends when its task is cancelled (the housekeeping jobs: inbox pruning,
/// the mail queue sampler), cancelled by the graceful shutdown.
struct LoopService: Service {
    let loop: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
    }
}

/// Keeps the embedded broker alive until shutdown, then removes its bootstrap file, so that
/// `herald publish` and `herald lag` do not go looking for a broker that is gone.
public struct EmbeddedBrokerService: Service {
    let broker: EmbeddedBroker
    let bootstrapFile: String

    public init(broker: EmbeddedBroker, bootstrapFile: String) {
        self.broker = broker
        self.bootstrapFile = bootstrapFile
    }

    public func run() async throws {
        try? await gracefulShutdown()
        finish()
    }

    /// Removes the bootstrap file if it still holds this broker's address (another instance
    /// may have written its own since), and keeps the broker until the process exits:
    /// destroying the in-memory cluster only waits for its thread, in librdkafka 2.0 up to a
    /// second in half the runs (measured: rd_kafka_mock_cluster_destroy), for nothing.
    public func finish() {
        let written = (try? String(contentsOfFile: bootstrapFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if written == broker.bootstrapServers { try? FileManager.default.removeItem(atPath: bootstrapFile) }
        _ = Unmanaged.passRetained(broker)
    }
}

public enum BootstrapFile {
    public static func write(_ bootstrap: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((bootstrap + "\n").utf8).write(to: url, options: .atomic)
    }
}

/// Runs the lag monitor until shutdown, then closes its client.
struct LagMonitorService: Service {
    let monitor: KafkaLagMonitor

    func run() async throws {
        await cancelWhenGracefulShutdown { await monitor.run() }
        await monitor.close()
    }
}

/// Runs the courier, woken through `listener` by the NOTIFY of any instance's inbox (this
/// one's included) when it queued mail; a graceful shutdown starts no new send and lets the
/// sends in flight finish (at most HERALD_SMTP_WORKERS), then closes the listening
/// connection and the mailer's connections.
public struct CourierService: Service {
    let courier: Courier
    let transport: any MailTransport
    let listener: PostgresListener?

    public func run() async throws {
        listener?.start()
        await withGracefulShutdownHandler {
            await courier.run()
        } onGracefulShutdown: {
            courier.triggerShutdown()
        }
        await listener?.stop()
        await transport.close()
    }
}

/// Relays the outbox until graceful shutdown: wakes on NOTIFY (a dedicated LISTEN
/// connection) or every poll interval, and deletes processed rows past their retention
/// (`OutboxRetention`, hourly). On shutdown the batch in flight finishes (published and
/// marked) before it stops.
public struct OutboxRelayService: Service {
    let relay: OutboxRelay
    let retention: OutboxRetention
    let client: PostgresClient
    let listener: PostgresListener?
    let wakeup: Doorbell
    let pollInterval: Duration
    let startMetadata: Logger.Metadata

    public func run() async throws {
        let logger = Logger(label: "herald.outbox")
        listener?.start()
        logger.info("outbox relay started", metadata: startMetadata)
        let (relay, retention, wakeup, pollInterval) = (self.relay, self.retention, self.wakeup, self.pollInterval)
        try? await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await relay.run(wakeup: wakeup, pollInterval: pollInterval) }
                group.addTask { await retention.run() }
                try await group.next()
                group.cancelAll()
            }
        }
        await listener?.stop()
        client.close()
        logger.info("outbox relay stopped")
    }
}
