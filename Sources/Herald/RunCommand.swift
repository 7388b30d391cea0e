import ArgumentParser
import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import HeraldPostgres
import HeraldRedis
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: consume events and apply their effects until SIGTERM or SIGINT.",
        discussion: """
            Joins consumer group HERALD_KAFKA_GROUP on the user and auth topics, applies role \
            invalidations and user revocations to Redis (HERALD_REDIS_URL), keeps recipients and \
            queues transactional mail in PostgreSQL (HERALD_DATABASE_URL), sends that mail \
            (HERALD_SMTP_URL), and sends records that can never be processed to <topic>.dlq. HERALD_KAFKA_BROKERS is \
            required; HERALD_KAFKA_BROKERS=embedded starts an in-memory development broker (librdkafka's mock \
            cluster) and writes its address to HERALD_EMBEDDED_BOOTSTRAP_FILE (default var/kafka-bootstrap; removed \
            at exit). A signal during start-up (waiting for PostgreSQL, migrating) stops it there, exit 0. \
            On SIGTERM/SIGINT it stops fetching, lets in-flight work finish (up to \
            HERALD_SHUTDOWN_TIMEOUT), commits offsets, leaves the group, flushes and exits 0.
            """)

    @Option(name: .customLong("bench-stop-after"), help: .hidden)
    var benchStopAfter: Int?

    @Flag(name: .customLong("bench-discard-effects"), help: .hidden)
    var benchDiscardEffects = false

    @Flag(name: .customLong("bench-without-inbox"), help: .hidden)
    var benchWithoutInbox = false

    func run() async throws {
        // First of all: from here on SIGTERM and SIGINT stop Herald cleanly, also while it starts.
        let stop = await StopSignals.install()
        let config = Environment.configuration()
        HeraldLogging.bootstrap(format: config.logFormat, level: config.logLevel, maskEmails: config.operations.maskEmails)
        let logger = Logger(label: "herald")
        // Required settings, mail settings and templates are checked before anything starts.
        let databaseURL: String
        let brokerChoice: HeraldConfiguration.Kafka.BrokerChoice
        do {
            brokerChoice = try config.kafka.requireBrokers()
            if config.outbox.enabled {
                try config.outbox.checkBroker(embedded: brokerChoice == .embedded, enabledBy: "HERALD_OUTBOX_ENABLED=true")
            }
            databaseURL = try config.database.requireURL()
        } catch {
            Environment.fail(error)
        }
        let mail = config.mail.enabled ? MailSetup.load(config) : nil
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let metrics = OperationsWiring.bootstrapMetrics()

        // The embedded broker only when asked for (HERALD_KAFKA_BROKERS=embedded).
        let brokers: String
        var embedded: EmbeddedBrokerService?
        switch brokerChoice {
        case .servers(let servers):
            brokers = servers
        case .embedded:
            let broker = try EmbeddedBroker(logger: Logger(label: "herald.embedded-broker"))
            for topic in [config.kafka.userTopic, config.kafka.authTopic] {
                try broker.createTopic(topic, partitions: config.kafka.embeddedPartitions)
                try broker.createTopic(config.kafka.deadLetterTopic(for: topic), partitions: config.kafka.embeddedPartitions)
            }
            try BootstrapFile.write(broker.bootstrapServers, to: config.kafka.bootstrapFile)
            logger.notice(
                "embedded broker started (librdkafka mock cluster: in memory, for development only)",
                metadata: ["bootstrap": "\(broker.bootstrapServers)", "bootstrap_file": "\(config.kafka.bootstrapFile)"])
            brokers = broker.bootstrapServers
            embedded = EmbeddedBrokerService(broker: broker, bootstrapFile: config.kafka.bootstrapFile)
            services.append(.init(service: embedded!))
        }
        // Also when start-up is interrupted or fails: no address of a broker that is gone.
        defer { embedded?.finish() }

        // The one slow start-up step (PostgreSQL may be down, migrations may run): a signal
        // interrupts it, and Herald exits 0 having started nothing else.
        let open = { @Sendable in
            try await Database.open(config, logger: logger, migrateIfBehind: config.database.autoMigrate, observer: metrics)
        }
        guard let database = try await stop.interruptible(open) else {
            logger.notice("herald stopped during start-up", metadata: ["signal": "\(stop.signal.map { "\($0)" } ?? "")"])
            return
        }
        let inbox = PostgresEventInbox(
            client: database, schema: config.database.schema, mailPolicy: config.mail.policy, mailObserver: metrics,
            logger: Logger(label: "herald.inbox"))

        let redis = RedisClient(
            endpoint: config.redis.endpoint, connectTimeout: config.redis.connectTimeout,
            commandTimeout: config.redis.commandTimeout, poolSize: config.redis.poolSize, observer: metrics,
            logger: Logger(label: "herald.redis"))
        let store = RedisRevocationStore(
            client: redis, roleInvalidationTTL: config.redis.roleInvalidationTTL,
            userRevocationTTL: config.redis.userRevocationTTL, logger: Logger(label: "herald.redis"))
        logger.info("redis", metadata: ["endpoint": "\(config.redis.endpoint)"])

        let producer = try KafkaProducer(
            bootstrapServers: brokers, properties: config.kafka.properties,
            secretProperties: config.kafka.secretProperties, clientID: config.kafka.clientID,
            flushTimeout: config.kafka.shutdownTimeout, logger: Logger(label: "herald.kafka.producer"))

        let dispatcher = EventDispatcher(
            decoder: EnvelopeDecoder(defaultTypeByTopic: config.defaultTypeByTopic, maxClockSkew: config.maxClockSkew),
            handlers: StandardHandlers.handlers(mail: mail == nil ? nil : MailHandler(disabled: config.mail.disabledKinds)),
            ignoredTypes: config.acknowledgedWithoutEffect)
        let benchmark = benchStopAfter.map { BenchmarkObserver(target: $0) }
        let applier: any EffectApplier =
            if benchDiscardEffects {
                DiscardingApplier()
            } else if benchWithoutInbox {
                RevocationEffectApplier(store: store)
            } else {
                InboxEffectApplier(
                    inbox: inbox, revocations: RevocationEffectApplier(store: store), consumerGroup: config.kafka.groupID)
            }
        let processor = BatchProcessor(
            dispatcher: dispatcher, applier: applier,
            deadLetters: KafkaDeadLetterPublisher(
                producer: producer, suffix: config.kafka.deadLetterSuffix, logger: Logger(label: "herald.dlq")),
            backoff: config.retry, consumerGroup: config.kafka.groupID,
            observer: benchmark ?? metrics as any ProcessingObserver, logger: Logger(label: "herald.events"))
        let consumer = try KafkaEventConsumer(
            settings: KafkaConsumerSettings(
                bootstrapServers: brokers, groupID: config.kafka.groupID, clientID: config.kafka.clientID,
                topics: [config.kafka.userTopic, config.kafka.authTopic], properties: config.kafka.properties,
                secretProperties: config.kafka.secretProperties,
                maxBufferedPerPartition: config.kafka.maxBufferedPerPartition,
                maxBatch: config.kafka.maxBatch,
                commitInterval: config.kafka.commitInterval, drainTimeout: config.kafka.shutdownTimeout),
            processor: processor, observer: metrics, logger: Logger(label: "herald.kafka.consumer"))
        benchmark?.onDone { consumer.triggerShutdown() }
        // Lag is read by a separate client that never joins the group (the same figures as `herald lag`).
        let lagMonitor = KafkaLagMonitor(
            consumer: consumer,
            inspector: try KafkaInspector(
                bootstrapServers: brokers, groupID: config.kafka.groupID,
                properties: config.kafka.properties.merging(LagCommand.inspectorProperties) { _, ours in ours },
                secretProperties: config.kafka.secretProperties, timeout: .seconds(5), logger: Logger(label: "herald.kafka.lag")),
            interval: config.operations.sampleInterval, observer: metrics, logger: Logger(label: "herald.kafka.lag"))

        // Shutdown runs in reverse: the consumer stops first, then the courier finishes its
        // sends in flight, then the producer flushes, then PostgreSQL, Redis and the embedded broker go.
        // The HTTP server starts first and stops last: /metrics and /healthz answer during shutdown.
        services.insert(
            .init(
                service: OperationsWiring.server(
                    config, metrics: metrics, consumer: consumer, monitor: lagMonitor, redis: redis, database: database)), at: 0)
        services.append(.init(service: CloseOnShutdownService(name: "postgres") { database.close() }))
        services.append(.init(service: InboxPruner(inbox: inbox, retention: config.database.inboxRetention, logger: logger)))
        services.append(.init(service: CloseOnShutdownService(name: "redis") { redis.close() }))
        // Stops after the producer closed; ends Herald (exit 1) if the producer fails for good.
        services.append(
            .init(
                service: ProducerWatchdog(producer: producer, logger: logger), successTerminationBehavior: .ignore,
                failureTerminationBehavior: .gracefullyShutdownGroup))
        services.append(.init(service: CloseOnShutdownService(name: "producer") { await producer.close() }))
        if let mail {
            // The courier's one wake-up path: the NOTIFY that an inbox transaction queueing mail
            // sends (this instance's as any other's), received on its own LISTEN connection.
            let mailQueued = Doorbell()
            let (courier, transport) = mail.makeCourier(
                database: database, schema: config.database.schema, redis: redis, doorbell: mailQueued,
                observer: CourierMetrics(metrics: metrics), logger: Logger(label: "herald.courier"))
            logger.info("mail", metadata: ["smtp": "\(mail.smtp)", "from": "\(mail.sender.from)"])
            let listener = PostgresListener(
                conninfo: databaseURL, password: config.database.password?.value,
                channel: inbox.mailChannel, connectTimeout: config.database.connectTimeout,
                applicationName: "herald-mail-listen", logger: Logger(label: "herald.courier.listen"),
                onNotify: { mailQueued.ring() })
            services.append(.init(service: CourierService(courier: courier, transport: transport, listener: listener)))
            services.append(
                .init(
                    service: MailQueueSampler(
                        queue: PostgresMailQueue(client: database, schema: config.database.schema), metrics: metrics,
                        interval: config.operations.sampleInterval, logger: Logger(label: "herald.courier"))))
        } else {
            logger.notice("mail is off (HERALD_MAIL_ENABLED=false): no mail is queued or sent")
        }
        // The transactional outbox relay (HERALD_OUTBOX_ENABLED): stops before the producer closes.
        if config.outbox.enabled {
            services.append(.init(service: OutboxWiring.service(config, producer: producer, observer: metrics)))
        }
        services.append(.init(service: LagMonitorService(monitor: lagMonitor)))
        services.append(
            .init(
                service: ConsumerService(consumer: consumer), successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup))

        // No signals of its own: StopSignals (installed first) triggers its graceful shutdown.
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        await stop.attach(group)
        try await group.run()
        logger.info("herald stopped")
    }
}

/// Runs the consumer; a graceful shutdown asks it to drain and commit.
struct ConsumerService: Service {
    let consumer: KafkaEventConsumer

    func run() async throws {
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
struct ProducerWatchdog: Service {
    let producer: KafkaProducer
    let logger: Logger

    struct ProducerFailed: Error, CustomStringConvertible {
        let error: KafkaError
        var description: String { "the Kafka producer failed for good (\(error)); exiting so that a supervisor restarts Herald" }
    }

    func run() async throws {
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
struct CloseOnShutdownService: Service {
    let name: String
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// Keeps the embedded broker alive until shutdown, then removes its bootstrap file, so that
/// `herald publish` and `herald lag` do not go looking for a broker that is gone.
struct EmbeddedBrokerService: Service {
    let broker: EmbeddedBroker
    let bootstrapFile: String

    func run() async throws {
        try? await gracefulShutdown()
        finish()
    }

    /// Removes the bootstrap file if it still holds this broker's address (another instance
    /// may have written its own since), and keeps the broker until the process exits:
    /// destroying the in-memory cluster only waits for its thread, in librdkafka 2.0 up to a
    /// second in half the runs (measured: rd_kafka_mock_cluster_destroy), for nothing.
    func finish() {
        let written = (try? String(contentsOfFile: bootstrapFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if written == broker.bootstrapServers { try? FileManager.default.removeItem(atPath: bootstrapFile) }
        _ = Unmanaged.passRetained(broker)
    }
}

enum BootstrapFile {
    static func write(_ bootstrap: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((bootstrap + "\n").utf8).write(to: url, options: .atomic)
    }
}
