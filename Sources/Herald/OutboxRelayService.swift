import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import Logging
import ServiceLifecycle

/// Builds the outbox relay's pieces from the configuration; shared by `herald run` and
/// `herald outbox`.
enum OutboxWiring {
    /// The settings naming the outbox's database.
    static let databaseVariables = ["HERALD_OUTBOX_DATABASE_URL", "HERALD_DATABASE_URL"]

    /// A client for the outbox database (HERALD_OUTBOX_DATABASE_URL, else HERALD_DATABASE_URL);
    /// exits 78 naming the setting when neither is set.
    static func client(_ config: HeraldConfiguration, poolSize: Int, applicationName: String) -> PostgresClient {
        let (url, password) = connection(config)
        return PostgresClient(
            conninfo: url, poolSize: poolSize, connectTimeout: config.database.connectTimeout,
            statementTimeout: config.database.statementTimeout, applicationName: applicationName, password: password,
            logger: Logger(label: "herald.outbox.postgres"))
    }

    /// The outbox database's URL and password override: HERALD_OUTBOX_DATABASE_URL and
    /// HERALD_OUTBOX_DATABASE_PASSWORD, else HERALD_DATABASE_URL and HERALD_DATABASE_PASSWORD.
    static func connection(_ config: HeraldConfiguration) -> (url: String, password: String?) {
        do {
            let url = try config.outbox.requireURL(fallback: config.database.url)
            let password = config.outbox.databaseURL == nil ? config.database.password : config.outbox.databasePassword
            return (url, password?.value)
        } catch {
            Environment.fail(error)
        }
    }

    static func store(_ config: HeraldConfiguration, client: PostgresClient) -> PostgresOutboxStore {
        PostgresOutboxStore(client: client, layout: config.outbox.layout, logger: Logger(label: "herald.outbox"))
    }

    static func settings(_ config: HeraldConfiguration) -> OutboxRelaySettings {
        OutboxRelaySettings(
            batchSize: config.outbox.batchSize, maxAttempts: config.outbox.maxAttempts, maxMessageBytes: config.outbox.maxMessageBytes,
            topics: config.outbox.topics, backoff: config.retry)
    }

    /// The relay service for `herald run` and `herald outbox relay`, with its own database
    /// connections (two pooled, plus the LISTEN connection).
    static func service(
        _ config: HeraldConfiguration, producer: KafkaProducer, observer: any OutboxObserver = NoOutboxObserver()
    ) -> OutboxRelayService {
        let client = client(config, poolSize: 2, applicationName: "herald-outbox")
        let store = store(config, client: client)
        let relay = OutboxRelay(
            store: store, publisher: KafkaOutboxPublisher(producer: producer), settings: settings(config), observer: observer,
            logger: Logger(label: "herald.outbox"))
        let (url, password) = connection(config)
        return OutboxRelayService(
            relay: relay, store: store, client: client, configuration: config.outbox, listenURL: url, listenPassword: password)
    }
}

/// Relays the outbox until graceful shutdown: wakes on NOTIFY (a dedicated LISTEN
/// connection) or every poll interval, and deletes processed rows past their retention
/// hourly. On shutdown the batch in flight finishes (published and marked) before it stops.
struct OutboxRelayService: Service {
    let relay: OutboxRelay
    let store: PostgresOutboxStore
    let client: PostgresClient
    let configuration: OutboxConfiguration
    let listenURL: String
    let listenPassword: String?

    func run() async throws {
        let logger = Logger(label: "herald.outbox")
        let wakeup = Doorbell()
        var listener: PostgresListener?
        if configuration.listen {
            listener = PostgresListener(
                conninfo: listenURL, password: listenPassword, channel: configuration.channel,
                logger: Logger(label: "herald.outbox.listen"), onNotify: { wakeup.ring() })
            listener?.start()
        }
        logger.info(
            "outbox relay started",
            metadata: [
                "table": "\(configuration.layout.schema.map { $0 + "." } ?? "")\(configuration.layout.table)",
                "listen": "\(configuration.listen ? configuration.channel : "off")", "poll_interval": "\(configuration.pollInterval)",
            ])
        let retention = configuration.retention
        let store = self.store
        let relay = self.relay
        let pollInterval = configuration.pollInterval
        try? await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await relay.run(wakeup: wakeup, pollInterval: pollInterval)
                }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            let deleted = try await store.deleteProcessed(olderThan: retention, batchSize: 1000)
                            if deleted > 0 { logger.info("outbox retention: processed rows deleted", metadata: ["rows": "\(deleted)"]) }
                        } catch {
                            logger.warning("outbox retention failed; will try again", metadata: ["error": "\(error)"])
                        }
                        try await Task.sleep(for: .seconds(3600))
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
        await listener?.stop()
        client.close()
        logger.info("outbox relay stopped")
    }
}
