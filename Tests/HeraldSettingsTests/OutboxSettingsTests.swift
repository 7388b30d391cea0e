import HeraldCore
import HeraldPostgres
import HeraldSettings
import Testing

@Suite("Outbox settings")
struct OutboxSettingsTests {
    @Test("outbox configuration: defaults, values, and errors naming the variable")
    func configuration() throws {
        let defaults = try HeraldSettings.load(environment: [:], readFile: { _ in "" }).outbox
        #expect(!defaults.enabled)
        #expect(defaults.layout == OutboxTableLayout())
        #expect(defaults.relay.topics.defaultPattern == "{aggregate_type}.events")
        let c = try HeraldSettings.load(
            environment: [
                "HERALD_OUTBOX_ENABLED": "true", "HERALD_OUTBOX_TABLE": "api.Outbox",
                "HERALD_OUTBOX_COLUMNS": "id=event_id, event_data=payload",
                "HERALD_OUTBOX_TOPICS": "User=users,Order=shop.orders", "HERALD_OUTBOX_TOPIC_PATTERN": "",
                "HERALD_OUTBOX_BATCH_SIZE": "50", "HERALD_OUTBOX_RETENTION": "2d", "HERALD_OUTBOX_DATABASE_URL_FILE": "/secret",
            ], readFile: { _ in "postgresql://api@db/api\n" }
        ).outbox
        #expect(c.enabled)
        #expect(c.layout.schema == "api" && c.layout.table == "Outbox")
        #expect(
            c.layout.name(of: .id) == "event_id" && c.layout.name(of: .eventData) == "payload" && c.layout.name(of: .status) == "status")
        #expect(c.relay.topics == OutboxTopicMapping(topics: ["User": "users", "Order": "shop.orders"], defaultPattern: nil))
        #expect(c.relay.batchSize == 50 && c.retention == .seconds(2 * 86_400))
        #expect(try c.requireConnection().conninfo.value == "postgresql://api@db/api")
        #expect(throws: ConfigurationError.self) { try OutboxSettings().requireConnection() }

        let bad: [(String, String)] = [
            ("HERALD_OUTBOX_ENABLED", "maybe"), ("HERALD_OUTBOX_TABLE", "a.b.c"), ("HERALD_OUTBOX_TABLE", "drop table;"),
            ("HERALD_OUTBOX_COLUMNS", "nope=x"), ("HERALD_OUTBOX_COLUMNS", "id=a\"b"), ("HERALD_OUTBOX_COLUMNS", "id=status"),
            ("HERALD_OUTBOX_TOPICS", "User"), ("HERALD_OUTBOX_TOPIC_PATTERN", "no-placeholder"), ("HERALD_OUTBOX_BATCH_SIZE", "0"),
            ("HERALD_OUTBOX_CHANNEL", "a-b"), ("HERALD_OUTBOX_POLL_INTERVAL", "soon"),
        ]
        for (name, value) in bad {
            do throws(ConfigurationError) {
                _ = try HeraldSettings.load(environment: [name: value], readFile: { _ in "" })
                Issue.record("\(name)=\(value) was accepted")
            } catch {
                #expect(error.setting == name, "\(name)=\(value): \(error)")
            }
        }
    }

    @Test("the outbox database: its own URL with its own password, else Herald's with Herald's")
    func connectionFallback() throws {
        let own = try HeraldSettings.load(environment: [
            "HERALD_DATABASE_URL": "postgresql://herald@db/herald", "HERALD_DATABASE_PASSWORD": "mine",
            "HERALD_OUTBOX_DATABASE_URL": "postgresql://api@db/api", "HERALD_OUTBOX_DATABASE_PASSWORD": "theirs",
            "HERALD_DATABASE_CONNECT_TIMEOUT": "3s",
        ]).outbox.requireConnection()
        #expect(own.conninfo.value == "postgresql://api@db/api" && own.password?.value == "theirs")
        #expect(own.connectTimeout == .seconds(3))
        let fallback = try HeraldSettings.load(environment: [
            "HERALD_DATABASE_URL": "postgresql://herald@db/herald", "HERALD_DATABASE_PASSWORD": "mine",
            "HERALD_OUTBOX_DATABASE_PASSWORD": "theirs",
        ]).outbox.requireConnection()
        #expect(fallback.conninfo.value == "postgresql://herald@db/herald" && fallback.password?.value == "mine")
        let noURL = try HeraldSettings.load(environment: ["HERALD_OUTBOX_DATABASE_PASSWORD": "theirs"]).outbox
        #expect(noURL.connection == nil)
    }

    @Test("the relay's backoff is HERALD_RETRY_*")
    func relayBackoff() throws {
        let s = try HeraldSettings.load(environment: ["HERALD_RETRY_INITIAL": "1s", "HERALD_RETRY_MAX": "4s"])
        #expect(s.outbox.relay.backoff == Backoff(initial: .seconds(1), cap: .seconds(4)))
    }
}
