import ArgumentParser
import HeraldCore
import HeraldPostgres
import Logging

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply Herald's pending database migrations (HERALD_DATABASE_URL, schema HERALD_DATABASE_SCHEMA).",
        discussion: """
            Migrations ship inside the binary and are applied in order, each in its own transaction, and \
            recorded in <schema>.schema_migrations. Safe when several instances run it at once: an advisory \
            lock serialises them. `herald run` refuses to start while migrations are pending, unless \
            HERALD_DATABASE_AUTO_MIGRATE=true. With HERALD_DATABASE_URL unset in a `make run` tree, the \
            database `make run` started (var/postgres/url).
            """)

    @Flag(help: "Only list the pending migrations.")
    var dryRun = false

    func run() async throws {
        let config = Environment.configuration(makeRunDatabaseUnless: ["HERALD_DATABASE_URL"])
        HeraldLogging.bootstrap(format: config.logFormat, level: config.logLevel)
        let logger = Logger(label: "herald.migrate")
        let url: String
        do {
            url = try config.database.requireURL()
        } catch {
            Environment.fail(error)
        }
        let client = PostgresClient(
            conninfo: url, poolSize: 1, connectTimeout: config.database.connectTimeout,
            statementTimeout: .seconds(600), applicationName: "herald-migrate", password: config.database.password?.value,
            logger: logger)
        defer { client.close() }
        let migrator = PostgresMigrator(
            client: client, schema: config.database.schema, migrations: HeraldSchema.migrations, logger: logger)
        if dryRun {
            let pending = try await migrator.pending()
            print(pending.isEmpty ? "no pending migrations" : pending.map { "\($0.version) \($0.name)" }.joined(separator: "\n"))
            return
        }
        let applied = try await migrator.migrate()
        print(
            applied.isEmpty
                ? "schema \(config.database.schema) is up to date"
                : "applied: \(applied.map { "\($0.version) \($0.name)" }.joined(separator: ", "))")
    }
}
