import ArgumentParser
import Foundation
import HeraldCore
import HeraldCourier
import HeraldPostgres
import HeraldRedis
import HeraldRuntime
import HeraldSettings
import Logging
import Synchronization

/// The courier sending queued password-reset mails (token minted and
/// stored in Redis, templates rendered, SMTP) to a local sink. `throughput` queues `count`
/// mails at once and times sending them all; `steady` queues `rate` mails per second for
/// `duration` seconds, each in a transaction that NOTIFYs the mail channel as the inbox's
/// does (the courier is woken through its LISTEN connection, as in `herald run`), and
/// reports the queue's latency from `queued` (created_at) to `sent` (sent_at).
struct BenchMailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mail", abstract: "Benchmark the courier: throughput to a local SMTP sink, or latency at a steady rate.")

    enum Mode: String, ExpressibleByArgument { case throughput, steady }

    @Option var mode: Mode = .throughput
    @Option var count = 10_000
    @Option var rate = 100
    @Option var duration = 30
    @Option var smtpURL: String
    @Option var workers = 4
    @Flag(inversion: .prefixedNo) var reuse = true

    func run() async throws {
        // The configured settings, with the benchmark's transport, sender and pace.
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_SMTP_URL"] = smtpURL
        environment["HERALD_SMTP_ALLOW_PLAINTEXT"] = "true"
        environment["HERALD_SMTP_WORKERS"] = String(workers)
        environment["HERALD_SMTP_REUSE_CONNECTIONS"] = String(reuse)
        environment["HERALD_MAIL_FROM"] = environment["HERALD_MAIL_FROM"] ?? "Herald Bench <bench@herald.test>"
        environment["HERALD_LINK_BASE_URL"] = environment["HERALD_LINK_BASE_URL"] ?? "https://auth.herald.test"
        environment["HERALD_MAIL_POLL_INTERVAL"] = "1s"
        let settings = try HeraldSettings.load(environment: environment)
        HeraldLogging.bootstrap(format: settings.log.format, level: "warning")
        let logger = Logger(label: "herald.bench")
        let schema = "herald_bench_mail"
        let client = try await BenchDatabase.fresh(schema: schema, poolSize: 4, settings.database, logger: logger)
        defer { client.close() }
        let redis = RedisClient(settings: settings.redis, logger: logger)
        defer { redis.close() }
        var mail = settings.mail
        mail.courier.batchSize = max(mail.courier.batchSize, workers * 16)
        let wiring = try MailWiring(mail)
        let doorbell = Doorbell()
        let sends = SentMailCounter()
        let (courier, transport) = wiring.courier(
            database: client, schema: schema, redis: redis, doorbell: doorbell, observer: sends)
        let channel = PostgresEventInbox.mailChannel(schema: schema)
        let listener = PostgresListener(
            settings: try settings.database.requireConnection(), channel: channel, applicationName: "herald-mail-listen",
            logger: Logger(label: "herald.courier.listen"), onNotify: { doorbell.ring() })
        listener.start()
        let queue = schema + ".notifications"

        func sentCount() async throws -> Int {
            try await client.withConnection { c in
                Int(try c.execute("SELECT count(*) AS n FROM \(queue) WHERE status = 'sent'").int(0, "n") ?? 0)
            }
        }
        func enqueue(_ range: Range<Int>) async throws {
            try await client.transaction { c in
                try c.execute(
                    """
                    INSERT INTO \(queue) (event_id, kind, user_id, recipient, requested_at)
                    SELECT 'bench-' || g, 'password_reset', 'user-' || g, 'user' || g || '@example.com', now()
                    FROM generate_series($1::int, $2::int) g
                    """, [.int(Int64(range.lowerBound)), .int(Int64(range.upperBound - 1))])
                try c.execute("SELECT pg_notify($1, '')", [.text(channel)])
            }
        }

        let clock = ContinuousClock()
        var result: [String: Any] = ["mode": mode.rawValue, "workers": workers, "reuse": reuse]
        switch mode {
        case .throughput:
            try await enqueue(0..<count)
            let start = clock.now
            let running = Task { await courier.run() }
            let deadline = clock.now + .seconds(600)
            // The courier's own count first (a count(*) every few ms would compete with it for
            // the pool and the CPU, more so the longer the queue), then the table, until every
            // outcome is recorded.
            while sends.sent < count {
                guard clock.now < deadline else { throw BenchError("not all mail was sent within 10 minutes") }
                try await Task.sleep(for: .milliseconds(5))
            }
            while try await sentCount() < count {
                guard clock.now < deadline else { throw BenchError("not all mail outcomes were recorded within 10 minutes") }
                try await Task.sleep(for: .milliseconds(2))
            }
            let elapsed = (clock.now - start).seconds
            courier.triggerShutdown()
            await running.value
            result["mails"] = count
            result["seconds"] = elapsed
            result["mails_per_second"] = Double(count) / elapsed
        case .steady:
            let running = Task { await courier.run() }
            let total = rate * duration
            let interval = Duration.seconds(1) / rate
            var next = clock.now
            for i in 0..<total {
                try await Task.sleep(until: next, clock: clock)
                try await enqueue(i..<(i + 1))
                next += interval
            }
            let deadline = clock.now + .seconds(60)
            while try await sentCount() < total, clock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            courier.triggerShutdown()
            await running.value
            let latency = try await client.withConnection { c in
                try c.execute(
                    """
                    SELECT count(*) AS n,
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) * 1000 AS p50,
                        percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) * 1000 AS p99,
                        max(extract(epoch FROM sent_at - created_at)) * 1000 AS max
                    FROM \(queue) WHERE status = 'sent'
                    """)
            }
            result["mails"] = Int(latency.int(0, "n") ?? 0)
            result["rate"] = rate
            result["seconds"] = duration
            for key in ["p50", "p99", "max"] { result["\(key)_ms"] = Double(latency.string(0, key) ?? "") ?? -1 }
        }
        await listener.stop()
        await transport.close()
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Counts the mail the courier reports sent (before each outcome is recorded).
final class SentMailCounter: CourierObserver {
    private let count = Atomic<Int>(0)

    var sent: Int { count.load(ordering: .relaxed) }

    func courier(sent notification: ClaimedNotification, outcome: NotificationOutcome, duration: Duration) {
        if case .sent = outcome { count.add(1, ordering: .relaxed) }
    }
}
