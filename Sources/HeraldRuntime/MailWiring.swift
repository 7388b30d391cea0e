import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldPostgres
import HeraldRedis
import HeraldSMTP
import HeraldSettings
import Logging

/// What sending mail needs, checked before anything starts: the transport, the sender and
/// the links (`MailSettings.requireSending`), and the templates, parsed and rendered with
/// sample data (a missing or broken one is a `ConfigurationError` naming the file).
public struct MailWiring: Sendable {
    public let smtp: SMTPSettings
    public let sender: SenderSettings
    public let links: LinkSettings
    public let templates: MailTemplates
    public let settings: MailSettings

    public init(_ settings: MailSettings) throws(ConfigurationError) {
        (smtp, sender, links) = try settings.requireSending()
        do throws(TemplateError) {
            templates = try MailTemplates(directory: settings.templatesDirectory, defaultLocale: settings.defaultLocale)
        } catch {
            throw ConfigurationError(setting: "HERALD_TEMPLATES_DIR", problem: "\(error)")
        }
        self.settings = settings
    }

    public var composer: MailComposer { MailComposer(templates: templates, sender: sender, links: links) }

    /// The courier over `database`'s queue (in `schema`) and `redis`'s token keys, sending
    /// with a new mailer, woken by `doorbell`. `connections` hears of failed OAuth2 token
    /// requests.
    public func courier(
        database: PostgresClient, schema: String, redis: RedisClient, doorbell: Doorbell, observer: (any CourierObserver)? = nil,
        connections: any ConnectionObserver = NoConnectionObserver()
    ) -> (Courier, any MailTransport) {
        let transport = makeMailer(smtp, workers: settings.workers, observer: connections, logger: Logger(label: "herald.smtp"))
        let courier = Courier(
            queue: PostgresMailQueue(client: database, schema: schema, mailEvents: settings.events.enabled),
            tokens: RedisLinkTokenStore(client: redis),
            transport: transport, composer: composer, settings: settings.courier, doorbell: doorbell, observer: observer,
            logger: Logger(label: "herald.courier"))
        return (courier, transport)
    }

    /// The courier as `herald run` runs it: its one wake-up path is the NOTIFY that an inbox
    /// transaction queueing mail sends on `channel` (this instance's as any other's),
    /// received on its own LISTEN connection to the database `connection` names.
    public func courierService(
        database: PostgresClient, connection: PostgresSettings, schema: String, redis: RedisClient, channel: String,
        observer: (any CourierObserver)? = nil, connections: any ConnectionObserver = NoConnectionObserver()
    ) -> CourierService {
        let mailQueued = Doorbell()
        let (courier, transport) = courier(
            database: database, schema: schema, redis: redis, doorbell: mailQueued, observer: observer, connections: connections)
        let listener = PostgresListener(
            settings: connection, channel: channel, applicationName: "herald-mail-listen",
            logger: Logger(label: "herald.courier.listen"), onNotify: { mailQueued.ring() })
        return CourierService(courier: courier, transport: transport, listener: listener)
    }
}
