import HeraldCore
import HeraldRedis
import Logging
import Synchronization

/// Log records kept in memory, so tests can check what (and what not) was logged.
final class RedisLogRecorder: Sendable {
    struct Record: Sendable {
        let level: Logger.Level
        let text: String
    }

    private let records = Mutex<[Record]>([])

    /// A logger that records everything from `trace` up.
    var logger: Logger {
        var logger = Logger(label: "herald.redis.test") { _ in Handler(recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    var all: [Record] { records.withLock { $0 } }

    /// Every record as one text, message and metadata included.
    var transcript: String { all.map(\.text).joined(separator: "\n") }

    fileprivate func append(_ record: Record) {
        records.withLock { $0.append(record) }
    }

    private struct Handler: LogHandler {
        let recorder: RedisLogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            recorder.append(Record(level: event.level, text: "\(event.level) \(event.message) \(fields)"))
        }
    }
}

/// Shared helpers of the Redis suites.
enum RedisTests {
    static let quietLogger = Logger(label: "herald.redis.test") { _ in SwiftLogNoOpLogHandler() }

    /// A client for `url` with short timeouts, so a failing test fails fast.
    static func client(
        _ url: String, poolSize: Int = 4, commandTimeout: Duration = .seconds(5), logger: Logger = quietLogger
    ) throws -> RedisClient {
        RedisClient(
            endpoint: try RedisEndpoint(url: url), connectTimeout: .seconds(2), commandTimeout: commandTimeout,
            poolSize: poolSize, logger: logger)
    }

    /// Runs `body` and returns the `RedisError` it threw (nil when it threw nothing or
    /// something else, which the caller's `#expect` then reports).
    static func redisError(_ body: () async throws -> Void) async -> RedisError? {
        do {
            try await body()
            return nil
        } catch let error as RedisError {
            return error
        } catch {
            return nil
        }
    }

    /// The number of clients connected to `server`, the harness's probes excluded (a probe
    /// closed a moment ago may still be listed).
    static func connectedClients(_ server: RedisServer) throws -> Int {
        let list = try server.probe(["CLIENT", "LIST"]).text ?? ""
        return list.split(separator: "\n").filter { !$0.contains(" name=\(RedisServer.probeClientName) ") }.count
    }

    /// One field of `INFO section`, such as `cmdstat_evalsha` in `commandstats`.
    static func info(_ server: RedisServer, section: String, field: String) throws -> String? {
        let text = try server.probe(["INFO", section]).text ?? ""
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1))
        }
        return nil
    }

    /// `calls=N` of `cmdstat_<command>`, 0 when the command never ran.
    static func calls(_ server: RedisServer, command: String) throws -> Int {
        guard let stats = try info(server, section: "commandstats", field: "cmdstat_\(command)") else { return 0 }
        let calls = stats.split(separator: ",").first { $0.hasPrefix("calls=") }
        return calls.flatMap { Int($0.dropFirst("calls=".count)) } ?? 0
    }
}
