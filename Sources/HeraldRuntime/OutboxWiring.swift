import HeraldCore
import HeraldKafka
import HeraldPostgres
import HeraldSettings
import Logging

/// Builds the outbox relay's pieces from its settings; shared by `herald run` and
/// `herald outbox`.
public enum OutboxWiring {
    /// The settings naming the outbox's database.
    public static let databaseVariables = ["HERALD_OUTBOX_DATABASE_URL", "HERALD_DATABASE_URL"]

    /// A client for the outbox database (HERALD_OUTBOX_DATABASE_URL, else HERALD_DATABASE_URL).
    public static func client(
        _ outbox: OutboxSettings, poolSize: Int, applicationName: String, label: String = "herald.outbox"
    ) throws(ConfigurationError) -> PostgresClient {
        let settings = try outbox.requireConnection().with(poolSize: poolSize, applicationName: applicationName)
        return PostgresClient(settings: settings, logger: Logger(label: label + ".postgres"))
    }

    public static func store(_ outbox: OutboxSettings, client: PostgresClient) -> PostgresOutboxStore {
        PostgresOutboxStore(client: client, layout: outbox.layout, logger: Logger(label: "herald.outbox"))
    }

    /// The relay service for `herald run` and `herald outbox relay`, with its own database
    /// connections (two pooled, plus the LISTEN connection). `name` names its loggers
    /// (`herald.<name>`) and its connections (`herald-<name>`): `outbox` for the API's
    /// outbox, `mail-events` for Herald's own `mail_outbox` (`MailEventSettings.relay`).
    public static func service(
        _ outbox: OutboxSettings, producer: KafkaProducer, observer: any OutboxObserver = NoOutboxObserver(),
        name: String = "outbox"
    ) throws(ConfigurationError) -> OutboxRelayService {
        let connection = try outbox.requireConnection()
        let client = try client(outbox, poolSize: 2, applicationName: "herald-" + name, label: "herald." + name)
        let logger = Logger(label: "herald." + name)
        let store = PostgresOutboxStore(client: client, layout: outbox.layout, logger: logger)
        let relay = OutboxRelay(
            store: store, publisher: KafkaOutboxPublisher(producer: producer), settings: outbox.relay, observer: observer,
            logger: logger)
        let wakeup = Doorbell()
        let listener =
            outbox.listen
            ? PostgresListener(
                settings: connection, channel: outbox.channel, applicationName: "herald-\(name)-listen",
                logger: Logger(label: "herald.\(name).listen"), onNotify: { wakeup.ring() }) : nil
        return OutboxRelayService(
            relay: relay, retention: OutboxRetention(store: store, retention: outbox.retention, logger: logger), client: client,
            listener: listener, wakeup: wakeup, pollInterval: outbox.pollInterval,
            startMetadata: [
                "table": "\(outbox.layout.schema.map { $0 + "." } ?? "")\(outbox.layout.table)",
                "listen": "\(outbox.listen ? outbox.channel : "off")", "poll_interval": "\(outbox.pollInterval)",
            ])
    }
}
