import HeraldCore
import HeraldPostgres

/// Mail outcomes as events (`HERALD_MAIL_EVENTS_*`): when on, every notable status change of
/// a notification writes a `MailStatusChanged` row to Herald's own outbox (`mail_outbox`, in
/// the transaction of the change), and `herald run` relays that table to `topic` with a
/// second outbox relay.
public struct MailEventSettings: Sendable, Hashable {
    /// Off by default: `mail_outbox` stays empty and no relay runs for it.
    public var enabled = false
    public var topic = "herald.mail.events"

    public init() {}

    static func load(_ r: SettingsReader) throws(ConfigurationError) -> MailEventSettings {
        var c = MailEventSettings()
        c.enabled = try r.boolean("HERALD_MAIL_EVENTS_ENABLED") ?? c.enabled
        if let topic = try r.string("HERALD_MAIL_EVENTS_TOPIC") {
            guard isTopicName(topic) else {
                throw ConfigurationError(
                    setting: "HERALD_MAIL_EVENTS_TOPIC", problem: "expected a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -)")
            }
            c.topic = topic
        }
        return c
    }

    /// The relay of `mail_outbox`, as an outbox relay's settings: the API outbox relay's
    /// batch size, attempts, message size limit, backoff, poll interval, retention and
    /// embedded-broker rule (`HERALD_OUTBOX_*`), over Herald's own database (`database`, in
    /// `schema`), with one topic (`Notification` → `topic`, no default pattern) and the
    /// table's own NOTIFY channel.
    public func relay(outbox: OutboxSettings, database: PostgresSettings, schema: String) -> OutboxSettings {
        var s = outbox
        s.enabled = enabled
        s.connection = database.with(poolSize: 2, applicationName: "herald-mail-events")
        s.layout = MailEventOutbox.layout(schema: schema)
        s.relay.topics = OutboxTopicMapping(topics: [MailEventOutbox.aggregateType: topic], defaultPattern: nil)
        s.listen = true
        s.channel = MailEventOutbox.channel(schema: schema)
        return s
    }
}
