import Logging

/// One versioned schema change shipped in the binary. `{schema}` in `sql` is replaced with the
/// migrator's quoted schema name. `sql` may hold several statements; it runs inside the
/// migrator's transaction, so it must not manage transactions itself (nor use
/// `CREATE INDEX CONCURRENTLY`).
public struct PostgresMigration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies versioned migrations to one schema and records them in
/// `<schema>.schema_migrations(version, name, applied_at)`.
///
/// `migrate()` is safe when several instances run it at once: it holds a session advisory
/// lock (keyed by the schema name) on one connection for the whole run, re-reads what is
/// applied after taking it, and applies each pending migration in its own transaction
/// together with its record.
public struct PostgresMigrator: Sendable {
    public let schema: String
    public let migrations: [PostgresMigration]
    private let client: PostgresClient
    private let logger: Logger

    /// - Parameters:
    ///   - schema: must match `^[a-z_][a-z0-9_]{0,62}$` (checked by every method, which
    ///     throws otherwise); it is always quoted as an identifier.
    ///   - migrations: in any order; versions must be positive and distinct.
    public init(client: PostgresClient, schema: String, migrations: [PostgresMigration], logger: Logger) {
        self.client = client
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// The migrations not yet applied, in order. All of them when the schema or its
    /// `schema_migrations` table does not exist yet. Versions applied in the database but
    /// unknown to this binary are ignored (see `appliedVersions()`).
    public func pending() async throws -> [PostgresMigration] {
        try validate()
        let applied = try await appliedVersions()
        return migrations.filter { !applied.contains($0.version) }
    }

    /// The versions recorded in `schema_migrations`, in order; empty when the table does not
    /// exist.
    public func appliedVersions() async throws -> [Int] {
        try validate()
        let table = self.table
        return try await client.withConnection { connection in
            try Self.applied(in: table, on: connection)
        }
    }

    /// Applies the pending migrations in version order, each in its own transaction with its
    /// `schema_migrations` row, and returns those this call applied (empty when another
    /// instance applied them first, or none were pending). Creates the schema and the table
    /// when missing (`CREATE SCHEMA IF NOT EXISTS`). A failing migration is rolled back and
    /// stops the run; the ones before it stay applied.
    ///
    /// Waiting for another instance's lock is not subject to the statement timeout; each
    /// migration is.
    @discardableResult
    public func migrate() async throws -> [PostgresMigration] {
        try validate()
        let (schema, quoted, table, key) = (self.schema, self.quotedSchema, self.table, self.lockKey)
        let migrations = self.migrations
        let logger = self.logger
        return try await client.withConnection { connection in
            try Self.lock(key, on: connection)
            defer { Self.unlock(key, on: connection) }
            // Only when missing: CREATE SCHEMA needs the CREATE privilege on the database even
            // with IF NOT EXISTS, which a role given a ready-made schema may lack.
            let schemaExists = try connection.execute("SELECT to_regnamespace($1) IS NOT NULL AS present", [.text(quoted)])
            if schemaExists.bool(0, "present") != true {
                try connection.execute("CREATE SCHEMA IF NOT EXISTS \(quoted)")
            }
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS \(table) (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try Self.applied(in: table, on: connection))
            var done: [PostgresMigration] = []
            for migration in migrations where !applied.contains(migration.version) {
                let metadata: Logger.Metadata = [
                    PostgresLogKey.schema: "\(schema)", PostgresLogKey.migrationVersion: "\(migration.version)",
                    PostgresLogKey.migrationName: "\(migration.name)",
                ]
                do {
                    try connection.transaction { connection in
                        try connection.executeScript(migration.sql.replacingAll("{schema}", with: quoted))
                        try connection.execute(
                            "INSERT INTO \(table) (version, name) VALUES ($1, $2)",
                            [.int(Int64(migration.version)), .text(migration.name)])
                    }
                } catch {
                    logger.error("migration failed", metadata: metadata.merging([PostgresLogKey.error: "\(error)"]) { $1 })
                    throw error
                }
                logger.info("migration applied", metadata: metadata)
                done.append(migration)
            }
            return done
        }
    }

    // MARK: - Private

    private var quotedSchema: String { "\"" + schema + "\"" }
    private var table: String { quotedSchema + ".schema_migrations" }

    /// The advisory lock key: FNV-1a of `herald.migrate:<schema>`, so that migrators of
    /// different schemas do not wait for each other.
    private var lockKey: Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "herald.migrate:\(schema)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    private func validate() throws(PostgresError) {
        guard Self.isValidSchemaName(schema) else {
            throw .make(.invalidMigration, "the schema name must match ^[a-z_][a-z0-9_]{0,62}$")
        }
        var seen = Set<Int>()
        for migration in migrations {
            guard migration.version > 0, Int(Int32.max) >= migration.version else {
                throw .make(.invalidMigration, "migration versions must be between 1 and 2147483647 (\(migration.version))")
            }
            guard seen.insert(migration.version).inserted else {
                throw .make(.invalidMigration, "migration version \(migration.version) appears twice")
            }
        }
    }

    /// `^[a-z_][a-z0-9_]{0,62}$`.
    public static func isValidSchemaName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte == UInt8(ascii: "_") }
        return isLetter(first) && bytes.dropFirst().allSatisfy { isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    private static func applied(in table: String, on connection: PostgresConnection) throws -> [Int] {
        let exists = try connection.execute("SELECT to_regclass($1) IS NOT NULL AS present", [.text(table)])
        guard exists.bool(0, "present") == true else { return [] }
        let result = try connection.execute("SELECT version FROM \(table) ORDER BY version")
        return result.rows.indices.compactMap { result.int($0, "version").map(Int.init) }
    }

    /// Takes the session lock, waiting as long as another migrator holds it.
    private static func lock(_ key: Int64, on connection: PostgresConnection) throws {
        try connection.execute("SET statement_timeout = 0")
        do {
            try connection.execute("SELECT pg_advisory_lock($1)", [.int(key)])
            try connection.execute("RESET statement_timeout")
        } catch {
            // Neither a lock nor a session without a statement timeout may stay in the pool.
            connection.discard()
            throw error
        }
    }

    /// Releases the session lock; when that fails the connection is dropped, which ends the
    /// session and so releases the lock too.
    private static func unlock(_ key: Int64, on connection: PostgresConnection) {
        do {
            let result = try connection.execute("SELECT pg_advisory_unlock($1) AS released", [.int(key)])
            if result.bool(0, "released") != true { connection.discard() }
        } catch {
            connection.discard()
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced.
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
