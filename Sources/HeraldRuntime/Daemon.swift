import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import HeraldOperations
import HeraldPostgres
import HeraldRedis
import HeraldSettings
import Logging
import ServiceLifecycle

/// The composition root of `herald run`: builds every running service from the settings, in
/// one place, and runs them as one service group. The list below is what runs.
///
/// Start-up order: the settings every service needs are checked (brokers, database, mail and
/// templates), then the metrics registry, the embedded broker when asked for, PostgreSQL
/// (waited for, migrated when allowed: the one slow step, which a signal interrupts), Redis,
/// the producer, the consumer and the rest. Shutdown runs in reverse: the consumer stops
/// first, then the lag monitor, the outbox relay, the courier and its sampler, then the
/// producer flushes, then Redis, the inbox pruner and PostgreSQL go, and the embedded broker.
/// The HTTP server starts first and stops last: /metrics and /healthz answer during shutdown.
public enum Daemon {
    /// Extension points for another front end of the same wiring (`herald-bench`).
    public struct Hooks: Sendable {
        /// The effect applier to use instead of the standard one (Redis, then the inbox).
        public var applier: (@Sendable (StandardAppliers) -> any EffectApplier)?
        /// The processing observer to use instead of the metrics.
        public var processingObserver: (@Sendable (HeraldMetrics) -> any ProcessingObserver)?
        /// Called with the consumer once it is built.
        public var consumerBuilt: (@Sendable (KafkaEventConsumer) -> Void)?

        public init() {}
    }

    /// The appliers `herald run` can put behind the batch processor.
    public struct StandardAppliers: Sendable {
        /// Redis effects, then the inbox transaction: every event's effects exactly once.
        public let inbox: InboxEffectApplier
        /// Redis effects only.
        public let revocations: RevocationEffectApplier
    }

    /// Runs Herald until a signal (or a failure) stops it. Returns early, having started
    /// nothing, when a signal interrupts the start-up.
    /// - Throws: `ConfigurationError` for a missing or bad setting (before anything starts),
    ///   `DatabaseSchemaBehind`, or what failed to start.
    public static func run(_ settings: HeraldSettings, stop: StopSignals, hooks: Hooks = Hooks()) async throws {
        let logger = Logger(label: "herald")
        // Required settings, mail settings and templates are checked before anything starts.
        let brokerChoice = try settings.kafka.requireBrokers()
        if settings.outbox.enabled {
            try settings.outbox.checkBroker(embedded: brokerChoice == .embedded, enabledBy: "HERALD_OUTBOX_ENABLED=true")
            _ = try settings.outbox.requireConnection()
        }
        // Mail events are relayed by an outbox relay too, under the same broker rule.
        let mailEvents = settings.mail.events
        if mailEvents.enabled {
            try settings.outbox.checkBroker(embedded: brokerChoice == .embedded, enabledBy: "HERALD_MAIL_EVENTS_ENABLED=true")
        }
        let databaseConnection = try settings.database.requireConnection()
        let mail = settings.mail.enabled ? try MailWiring(settings.mail) : nil
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let metrics = OperationsWiring.bootstrapMetrics()

        // The embedded broker only when asked for (HERALD_KAFKA_BROKERS=embedded).
        let brokers: String
        var embedded: EmbeddedBrokerService?
        switch brokerChoice {
        case .servers(let servers):
            brokers = servers
        case .embedded:
            let service = try startEmbeddedBroker(
                settings.kafka, topics: mailEvents.enabled ? [mailEvents.topic] : [], logger: logger)
            brokers = service.broker.bootstrapServers
            embedded = service
            services.append(.init(service: service))
        }
        // Also when start-up is interrupted or fails: no address of a broker that is gone.
        defer { embedded?.finish() }

        // The one slow start-up step (PostgreSQL may be down, migrations may run): a signal
        // interrupts it, and Herald returns having started nothing else.
        let database = settings.database
        let open = { @Sendable in
            try await Database.open(database, logger: logger, migrateIfBehind: database.autoMigrate, observer: metrics)
        }
        guard let postgres = try await stop.interruptible(open) else {
            logger.notice("herald stopped during start-up", metadata: ["signal": "\(stop.signal.map { "\($0)" } ?? "")"])
            return
        }
        let inbox = PostgresEventInbox(
            client: postgres, schema: database.schema, mailPolicy: settings.mail.policy, mailObserver: metrics,
            mailEvents: mailEvents.enabled, logger: Logger(label: "herald.inbox"))

        let redis = RedisClient(settings: settings.redis, observer: metrics, logger: Logger(label: "herald.redis"))
        let store = RedisRevocationStore(client: redis, settings: settings.redis, logger: Logger(label: "herald.redis"))
        logger.info("redis", metadata: ["endpoint": "\(settings.redis.endpoint)"])

        // The dead-letter producer's queue is part of the memory budget (the user's properties win).
        let producer = try KafkaProducer(
            bootstrapServers: brokers,
            properties: settings.kafka.consumer.memoryBudget.producerProperties.merging(settings.kafka.properties) { _, user in user },
            secretProperties: settings.kafka.secretProperties,
            clientID: settings.kafka.clientID, flushTimeout: settings.kafka.shutdownTimeout, logger: Logger(label: "herald.kafka.producer"))

        let dispatcher = EventDispatcher(
            decoder: settings.events.decoder,
            handlers: StandardHandlers.handlers(mail: mail == nil ? nil : MailHandler(disabled: settings.mail.disabledKinds)),
            ignoredTypes: StandardHandlers.acknowledgedWithoutEffect(ignored: settings.events.ignoredTypes, mailEnabled: mail != nil))
        let revocations = RevocationEffectApplier(store: store)
        let appliers = StandardAppliers(
            // Group commit: partition batches that arrive while inbox transactions run are
            // recorded together; at most half the pool at once (the courier needs the rest).
            inbox: InboxEffectApplier(
                inbox: InboxGroupCommit(inbox, maxInFlight: max(1, databaseConnection.poolSize / 2)), revocations: revocations,
                consumerGroup: settings.kafka.groupID),
            revocations: revocations)
        let processor = BatchProcessor(
            dispatcher: dispatcher, applier: hooks.applier?(appliers) ?? appliers.inbox,
            deadLetters: KafkaDeadLetterPublisher(
                producer: producer, suffix: settings.kafka.deadLetterSuffix, logger: Logger(label: "herald.dlq")),
            backoff: settings.retry, consumerGroup: settings.kafka.groupID,
            observer: hooks.processingObserver?(metrics) ?? metrics, logger: Logger(label: "herald.events"))
        let consumer = try KafkaEventConsumer(
            settings: settings.kafka.consumer(bootstrapServers: brokers), processor: processor, observer: metrics,
            logger: Logger(label: "herald.kafka.consumer"))
        hooks.consumerBuilt?(consumer)
        // Lag is read by a separate client that never joins the group (the same figures as `herald lag`).
        let lagMonitor = KafkaLagMonitor(
            consumer: consumer,
            inspector: try KafkaInspector(
                bootstrapServers: brokers, groupID: settings.kafka.groupID,
                properties: settings.kafka.properties.merging(KafkaInspector.lagProperties) { _, ours in ours },
                secretProperties: settings.kafka.secretProperties, timeout: .seconds(5), logger: Logger(label: "herald.kafka.lag")),
            interval: settings.operations.sampleInterval, observer: metrics, logger: Logger(label: "herald.kafka.lag"))

        // What runs, in start order (shutdown in reverse).
        services.insert(
            .init(
                service: OperationsWiring.server(
                    settings.operations, groupID: settings.kafka.groupID, metrics: metrics, consumer: consumer, monitor: lagMonitor,
                    redis: redis, database: postgres)), at: 0)
        services.append(.init(service: CloseOnShutdownService(name: "postgres") { postgres.close() }))
        let pruner = InboxPruner(inbox: inbox, retention: database.inboxRetention, logger: logger)
        services.append(.init(service: LoopService { await pruner.run() }))
        services.append(.init(service: CloseOnShutdownService(name: "redis") { redis.close() }))
        // Stops after the producer closed; ends Herald (exit 1) if the producer fails for good.
        services.append(
            .init(
                service: ProducerWatchdog(producer: producer, logger: logger), successTerminationBehavior: .ignore,
                failureTerminationBehavior: .gracefullyShutdownGroup))
        services.append(.init(service: CloseOnShutdownService(name: "producer") { await producer.close() }))
        if let mail {
            logger.info("mail", metadata: ["smtp": "\(mail.smtp)", "from": "\(mail.sender.from)"])
            services.append(
                .init(
                    service: mail.courierService(
                        database: postgres, connection: databaseConnection, schema: database.schema, redis: redis,
                        channel: inbox.mailChannel, observer: CourierMetrics(metrics: metrics), connections: metrics)))
            let sampler = MailQueueSampler(
                queue: PostgresMailQueue(client: postgres, schema: database.schema), observer: metrics,
                interval: settings.operations.sampleInterval, logger: Logger(label: "herald.courier"))
            services.append(.init(service: LoopService { await sampler.run() }))
        } else {
            logger.notice("mail is off (HERALD_MAIL_ENABLED=false): no mail is queued or sent")
        }
        // The transactional outbox relay (HERALD_OUTBOX_ENABLED): stops before the producer closes.
        if settings.outbox.enabled {
            services.append(.init(service: try OutboxWiring.service(settings.outbox, producer: producer, observer: metrics)))
        }
        // Herald's own outbox of mail outcomes (HERALD_MAIL_EVENTS_ENABLED), relayed the same
        // way from Herald's database; its metrics are the outbox relay's, labelled relay="mail_events".
        if mailEvents.enabled {
            let relay = mailEvents.relay(outbox: settings.outbox, database: databaseConnection, schema: database.schema)
            logger.info("mail events", metadata: ["topic": "\(mailEvents.topic)", "channel": "\(relay.channel)"])
            services.append(
                .init(
                    service: try OutboxWiring.service(
                        relay, producer: producer, observer: metrics.outboxObserver(relay: "mail_events"), name: "mail-events")))
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

    /// The embedded broker with the consumed topics and their dead-letter topics, and
    /// `topics` Herald publishes to, its address written to the bootstrap file.
    public static func startEmbeddedBroker(_ kafka: KafkaSettings, topics: [String] = [], logger: Logger) throws
        -> EmbeddedBrokerService
    {
        let broker = try EmbeddedBroker(logger: Logger(label: "herald.embedded-broker"))
        for topic in [kafka.userTopic, kafka.authTopic] {
            try broker.createTopic(topic, partitions: kafka.embeddedPartitions)
            try broker.createTopic(kafka.deadLetterTopic(for: topic), partitions: kafka.embeddedPartitions)
        }
        for topic in topics { try broker.createTopic(topic, partitions: kafka.embeddedPartitions) }
        try BootstrapFile.write(broker.bootstrapServers, to: kafka.bootstrapFile)
        logger.notice(
            "embedded broker started (librdkafka mock cluster: in memory, for development only)",
            metadata: ["bootstrap": "\(broker.bootstrapServers)", "bootstrap_file": "\(kafka.bootstrapFile)"])
        return EmbeddedBrokerService(broker: broker, bootstrapFile: kafka.bootstrapFile)
    }
}

extension KafkaInspector {
    /// The inspector reads one record per lagging partition for its timestamp: keep fetches
    /// small (`herald run`'s lag monitor and `herald lag`).
    public static let lagProperties = [
        "max.partition.fetch.bytes": "65536", "fetch.max.bytes": "1048576", "queued.min.messages": "1",
    ]
}
