import ArgumentParser
import HeraldCore
import HeraldPostgres
import HeraldRuntime
import HeraldSettings
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
        let settings = try Environment.settings(makeRunDatabaseUnless: ["HERALD_DATABASE_URL"])
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level)
        let logger = Logger(label: "herald.migrate")
        let connection = try settings.database.requireConnection().with(
            poolSize: 1, statementTimeout: .seconds(600), applicationName: "herald-migrate")
        let client = PostgresClient(settings: connection, logger: logger)
        defer { client.close() }
        let migrator = PostgresMigrator(
            client: client, schema: settings.database.schema, migrations: HeraldSchema.migrations, logger: logger)
        if dryRun {
            let pending = try await migrator.pending()
            print(pending.isEmpty ? "no pending migrations" : pending.map { "\($0.version) \($0.name)" }.joined(separator: "\n"))
            return
        }
        let applied = try await migrator.migrate()
        print(
            applied.isEmpty
                ? "schema \(settings.database.schema) is up to date"
                : "applied: \(applied.map { "\($0.version) \($0.name)" }.joined(separator: ", "))")
    }
}
