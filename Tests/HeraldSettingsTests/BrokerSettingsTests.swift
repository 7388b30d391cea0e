import HeraldCore
import HeraldSettings
import Testing

/// HERALD_KAFKA_BROKERS fails closed: unset is an error for the daemons, `embedded` asks for
/// the in-memory broker, and the outbox relay refuses that broker unless told otherwise.
@Suite("Broker configuration")
struct BrokerSettingsTests {
    @Test("unset: no brokers and no embedded broker; the daemons' check names HERALD_KAFKA_BROKERS")
    func unset() throws {
        let c = try SettingsTests.load([:])
        #expect(c.kafka.brokers == nil)
        let error = try #require(
            { () -> ConfigurationError? in
                do throws(ConfigurationError) {
                    _ = try c.kafka.requireBrokers()
                    return nil
                } catch { return error }
            }())
        #expect(error.setting == "HERALD_KAFKA_BROKERS")
        #expect(error.problem.contains("embedded"))
    }

    @Test("`embedded` asks for the embedded broker")
    func embedded() throws {
        for value in ["embedded", " embedded "] {
            let c = try SettingsTests.load(["HERALD_KAFKA_BROKERS": value])
            #expect(c.kafka.brokers == .embedded)
            #expect(try c.kafka.requireBrokers() == .embedded)
        }
    }

    @Test("servers are servers")
    func servers() throws {
        let c = try SettingsTests.load(["HERALD_KAFKA_BROKERS": "kafka-1:9092,kafka-2:9092"])
        #expect(try c.kafka.requireBrokers() == .servers("kafka-1:9092,kafka-2:9092"))
    }

    @Test("the outbox relay refuses the embedded broker unless HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER=true")
    func outboxRefusesEmbedded() throws {
        let c = try SettingsTests.load(["HERALD_KAFKA_BROKERS": "embedded", "HERALD_OUTBOX_ENABLED": "true"])
        #expect(!c.outbox.allowEmbeddedBroker)
        #expect(throws: ConfigurationError.self) { try c.outbox.checkBroker(embedded: true, enabledBy: "HERALD_OUTBOX_ENABLED=true") }
        do throws(ConfigurationError) {
            try c.outbox.checkBroker(embedded: true, enabledBy: "HERALD_OUTBOX_ENABLED=true")
        } catch {
            #expect(error.setting == "HERALD_KAFKA_BROKERS")
            for name in ["HERALD_OUTBOX_ENABLED=true", "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER=true"] {
                #expect(error.problem.contains(name), "\(error)")
            }
        }
        try c.outbox.checkBroker(embedded: false, enabledBy: "HERALD_OUTBOX_ENABLED=true")

        let allowed = try SettingsTests.load(["HERALD_KAFKA_BROKERS": "embedded", "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER": "true"])
        #expect(allowed.outbox.allowEmbeddedBroker)
        try allowed.outbox.checkBroker(embedded: true, enabledBy: "herald outbox relay")
        #expect(
            SettingsTests.error(["HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER": "maybe"])?.setting == "HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER")
    }
}
