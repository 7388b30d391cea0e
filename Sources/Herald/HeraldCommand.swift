import ArgumentParser

@main
struct HeraldCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "The event worker of the authentication platform.",
        discussion: """
            Herald consumes the auth and user services' events from Kafka and does the slow,
            failure-prone work: it keeps role invalidations and user revocations in Redis
            (and, in later versions, sends transactional email and relays the outbox).
            Configuration comes from HERALD_* environment variables; see the README.
            With no HERALD_KAFKA_BROKERS, `herald run` starts an embedded broker.
            """,
        version: version,
        subcommands: [RunCommand.self, PublishCommand.self, BrokerCommand.self, LagCommand.self],
        defaultSubcommand: nil
    )
}
