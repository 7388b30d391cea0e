import ArgumentParser
import Foundation
import HeraldCore
import HeraldKafka
import HeraldPostgres
import HeraldRuntime
import HeraldSettings
import Logging
import ServiceLifecycle

/// `herald outbox …`: the transactional outbox relay and its operator commands.
struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "Relay the API's transactional outbox (a PostgreSQL table) to Kafka, and inspect it.",
        discussion: """
            The outbox table is HERALD_OUTBOX_TABLE (default outbox_events) in HERALD_OUTBOX_DATABASE_URL \
            (default HERALD_DATABASE_URL; with both unset in a `make run` tree, the database `make run` started). \
            `herald run` relays it too when HERALD_OUTBOX_ENABLED=true.
            """,
        subcommands: [Relay.self, List.self, Retry.self, InstallTrigger.self])

    struct Relay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "relay",
            abstract: "Publish pending outbox rows to Kafka and mark them processed, until SIGTERM or SIGINT.",
            discussion: """
                Each row goes to the topic mapped from its aggregate_type (HERALD_OUTBOX_TOPICS, else \
                HERALD_OUTBOX_TOPIC_PATTERN), keyed by aggregate_id, with headers ce_id, ce_type and ce_time. \
                With --once: relay until nothing is left to claim, print a summary as JSON, and exit (0; 75 when the \
                database or the broker stayed unreachable). Safe to run as several replicas. HERALD_KAFKA_BROKERS (or \
                --brokers) is required; the embedded broker (HERALD_KAFKA_BROKERS=embedded) is refused unless \
                HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER=true, since it forgets the rows it acknowledges.
                """)

        @Flag(help: "Relay what is pending now, then exit.")
        var once = false

        @Option(help: "Bootstrap servers (default: HERALD_KAFKA_BROKERS).")
        var brokers: String?

        /// --brokers, else HERALD_KAFKA_BROKERS (required). The embedded broker only with
        /// HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER=true: it would acknowledge rows and forget them.
        static func bootstrap(_ settings: HeraldSettings, override: String?) throws -> String {
            if let override { return override }
            let choice = try settings.kafka.requireBrokers()
            try settings.outbox.checkBroker(embedded: choice == .embedded, enabledBy: "herald outbox relay")
            switch choice {
            case .servers(let servers): return servers
            case .embedded: return try Environment.embeddedBroker(settings.kafka).servers
            }
        }

        func run() async throws {
            let settings = try Environment.settings(makeRunDatabaseUnless: OutboxWiring.databaseVariables)
            let outbox = settings.outbox
            HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level)
            let logger = Logger(label: "herald.outbox")
            let bootstrap = try Self.bootstrap(settings, override: brokers)
            _ = try outbox.requireConnection()
            let producer = try KafkaProducer(
                bootstrapServers: bootstrap, properties: settings.kafka.properties, secretProperties: settings.kafka.secretProperties,
                clientID: settings.kafka.clientID, flushTimeout: settings.kafka.shutdownTimeout,
                logger: Logger(label: "herald.kafka.producer"))
            if once {
                let client = try OutboxWiring.client(outbox, poolSize: 1, applicationName: "herald-outbox")
                let relay = OutboxRelay(
                    store: OutboxWiring.store(outbox, client: client), publisher: KafkaOutboxPublisher(producer: producer),
                    settings: outbox.relay, logger: logger)
                let outcome: Result<OutboxRelay.Report, any Error>
                do {
                    outcome = .success(try await relay.drainRetrying(maxRetries: 5))
                } catch {
                    outcome = .failure(error)
                }
                client.close()
                await producer.close()
                switch outcome {
                case .success(let report):
                    print(
                        try JSONOutput.line([
                            "claimed": report.claimed, "published": report.published, "failed_attempts": report.failedAttempts,
                            "failed": report.failed,
                        ]))
                case .failure(let error):
                    FileHandle.standardError.write(Data("herald: outbox relay gave up: \(error)\n".utf8))
                    throw ExitCode(75)
                }
                return
            }
            let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(
                    service: ProducerWatchdog(producer: producer, logger: logger), successTerminationBehavior: .ignore,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: CloseOnShutdownService(name: "producer") { await producer.close() }),
                .init(
                    service: try OutboxWiring.service(outbox, producer: producer), successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup),
            ]
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Count the outbox rows by status and list the oldest (failed ones by default).")

        @Option(help: "Only rows with this status: pending, processed, failed or all.")
        var status = "failed"

        @Option(help: "Most rows to list.")
        var limit = 50

        @Flag(help: "One JSON object per row instead of a table.")
        var json = false

        func run() async throws {
            let settings = try Environment.settings(makeRunDatabaseUnless: OutboxWiring.databaseVariables)
            let outbox = settings.outbox
            HeraldLogging.bootstrap(format: settings.log.format, level: "warning")
            let client = try OutboxWiring.client(outbox, poolSize: 1, applicationName: "herald-outbox-list")
            defer { client.close() }
            let store = OutboxWiring.store(outbox, client: client)
            let rows = try await store.list(status: status == "all" ? nil : status, limit: limit)
            if json {
                for row in rows {
                    print(
                        try JSONOutput.line([
                            "id": row.id, "aggregate_type": row.aggregateType, "aggregate_id": row.aggregateID,
                            "event_type": row.eventType, "status": row.status, "retry_count": row.attempts,
                            "created_at": row.createdAt, "processed_at": JSONOutput.nullable(row.processedAt),
                            "error_message": JSONOutput.nullable(row.errorMessage),
                        ]))
                }
                return
            }
            let counts = try await store.counts()
            print(counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
            for row in rows {
                var line =
                    "\(row.id)  \(row.createdAt)  \(row.status)  attempts=\(row.attempts)  \(row.aggregateType)/\(row.aggregateID)  \(row.eventType)"
                if let error = row.errorMessage { line += "\n    \(error)" }
                print(line)
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retry",
            abstract: "Put failed outbox rows back to pending with their attempts reset, and wake the relays.",
            discussion: "Pass the ids of the rows (see `herald outbox list`), or --all for every failed row.")

        @Argument(help: "Ids of failed rows.")
        var ids: [String] = []

        @Flag(help: "Every failed row.")
        var all = false

        func validate() throws {
            guard all != !ids.isEmpty else { throw ValidationError("pass row ids or --all (not both)") }
        }

        func run() async throws {
            let settings = try Environment.settings(makeRunDatabaseUnless: OutboxWiring.databaseVariables)
            let outbox = settings.outbox
            HeraldLogging.bootstrap(format: settings.log.format, level: "warning")
            let client = try OutboxWiring.client(outbox, poolSize: 1, applicationName: "herald-outbox-retry")
            defer { client.close() }
            let changed = try await OutboxWiring.store(outbox, client: client).retry(ids: all ? nil : ids, notify: outbox.channel)
            print("\(changed) row(s) back to pending")
        }
    }

    struct InstallTrigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install-trigger",
            abstract: "Install the NOTIFY trigger and the relay's indexes on the outbox table (in the API's database).",
            discussion: """
                Applied as versioned migrations recorded in <schema>.schema_migrations (default schema \
                herald_outbox, which also holds the trigger function), only when you run this command. The trigger \
                sends NOTIFY HERALD_OUTBOX_CHANNEL (default herald_outbox) once per inserting statement, delivered \
                at commit. Building the indexes locks the table against inserts while it runs: on a large table use \
                --print and apply the SQL in the API's migrations (CREATE INDEX CONCURRENTLY).
                """)

        @Option(help: "Schema for the trigger function and the migration records.")
        var schema = OutboxTriggerSchema.defaultSchema

        @Flag(help: "Print the SQL instead of applying it.")
        var print = false

        func validate() throws {
            guard PostgresMigrator.isValidSchemaName(schema) else { throw ValidationError("--schema must match ^[a-z_][a-z0-9_]{0,62}$") }
        }

        func run() async throws {
            let settings = try Environment.settings(makeRunDatabaseUnless: OutboxWiring.databaseVariables)
            HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level)
            let migrations = OutboxTriggerSchema.migrations(layout: settings.outbox.layout, channel: settings.outbox.channel)
            if print {
                for migration in migrations {
                    Swift.print("-- \(migration.version) \(migration.name)")
                    Swift.print(migration.sql.replacing("{schema}", with: "\"\(schema)\"") + "\n")
                }
                return
            }
            let client = try OutboxWiring.client(settings.outbox, poolSize: 1, applicationName: "herald-outbox-install")
            defer { client.close() }
            let applied = try await PostgresMigrator(
                client: client, schema: schema, migrations: migrations, logger: Logger(label: "herald.outbox.install")
            ).migrate()
            Swift.print(
                applied.isEmpty
                    ? "the outbox trigger and indexes are already installed"
                    : "applied: \(applied.map { "\($0.version) \($0.name)" }.joined(separator: ", "))")
        }
    }
}
