import HeraldCore
import HeraldPostgres
import HeraldSettings
import Testing

@Suite("Mail event settings")
struct MailEventSettingsTests {
    @Test("HERALD_MAIL_EVENTS_*: off by default, herald.mail.events, a bad topic named")
    func configuration() throws {
        let defaults = try HeraldSettings.load(environment: [:], readFile: { _ in "" }).mail.events
        #expect(!defaults.enabled && defaults.topic == "herald.mail.events")
        let c = try HeraldSettings.load(
            environment: ["HERALD_MAIL_EVENTS_ENABLED": "true", "HERALD_MAIL_EVENTS_TOPIC": "auth.mail-outcomes"], readFile: { _ in "" }
        ).mail.events
        #expect(c.enabled && c.topic == "auth.mail-outcomes")
        for (name, value) in [
            ("HERALD_MAIL_EVENTS_ENABLED", "maybe"), ("HERALD_MAIL_EVENTS_TOPIC", "a topic"), ("HERALD_MAIL_EVENTS_TOPIC", ""),
        ] {
            do throws(ConfigurationError) {
                _ = try HeraldSettings.load(environment: [name: value], readFile: { _ in "" })
                Issue.record("\(name)=\(value) was accepted")
            } catch {
                #expect(error.setting == name, "\(name)=\(value): \(error)")
            }
        }
    }

    @Test("the mail_outbox relay: Herald's database and schema, one topic, its own channel, the outbox relay's other settings")
    func relay() throws {
        let s = try HeraldSettings.load(environment: [
            "HERALD_DATABASE_URL": "postgresql://herald@db/herald", "HERALD_DATABASE_SCHEMA": "mail_app",
            "HERALD_OUTBOX_DATABASE_URL": "postgresql://api@db/api", "HERALD_OUTBOX_BATCH_SIZE": "50", "HERALD_OUTBOX_TABLE": "api.outbox",
            "HERALD_MAIL_EVENTS_ENABLED": "true", "HERALD_MAIL_EVENTS_TOPIC": "mail.outcomes",
        ])
        let relay = s.mail.events.relay(
            outbox: s.outbox, database: try s.database.requireConnection(), schema: s.database.schema)
        #expect(relay.enabled)
        #expect(try relay.requireConnection().conninfo.value == "postgresql://herald@db/herald")
        #expect(relay.layout == OutboxTableLayout(schema: "mail_app", table: "mail_outbox"))
        #expect(relay.relay.topics == OutboxTopicMapping(topics: ["Notification": "mail.outcomes"], defaultPattern: nil))
        #expect(relay.relay.batchSize == 50)
        #expect(relay.listen && relay.channel == "mail_app_mail_events")
        #expect(!relay.allowEmbeddedBroker)
        // A long schema: the channel stays an identifier of at most 63 bytes.
        let long = String(repeating: "s", count: 63)
        #expect(MailEventOutbox.channel(schema: long) == String(repeating: "s", count: 40) + "_mail_events")
    }
}
