import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Serves `GET /metrics` (Prometheus text format), `GET /healthz` (the process's loops are
/// turning) and `GET /readyz` (Kafka assignment, Redis and PostgreSQL answer; a JSON body
/// names the failing check), and refreshes `herald_ready` every `interval`.
public struct OperationsServer: Service {
    public let host: String
    public let port: Int
    public let metrics: HeraldMetrics
    public let liveness: [HealthCheck]
    public let readiness: [HealthCheck]
    public let checkTimeout: Duration
    public let interval: Duration
    public let logger: Logger

    public init(
        host: String, port: Int, metrics: HeraldMetrics, liveness: [HealthCheck], readiness: [HealthCheck],
        checkTimeout: Duration, interval: Duration, logger: Logger
    ) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.liveness = liveness
        self.readiness = readiness
        self.checkTimeout = checkTimeout
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let router = Router()
        let metrics = self.metrics
        let liveness = self.liveness
        let readiness = self.readiness
        let timeout = self.checkTimeout
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        router.get("healthz") { _, _ -> Response in
            Self.respond(await HealthReport.run(liveness, timeout: timeout))
        }
        router.get("readyz") { _, _ -> Response in
            let report = await HealthReport.run(readiness, timeout: timeout)
            metrics.readiness(report.ok)
            return Self.respond(report)
        }
        let logger = self.logger
        let host = self.host
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "herald"),
            onServerRunning: { channel in
                logger.notice(
                    "serving /metrics, /healthz and /readyz",
                    metadata: ["address": "\(host):\(channel.localAddress?.port ?? 0)"])
            },
            logger: logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await app.run() }
            group.addTask {
                // Keeps herald_ready current for alerting, whether or not anything probes /readyz.
                try? await cancelWhenGracefulShutdown {
                    while !Task.isCancelled {
                        let report = await HealthReport.run(readiness, timeout: timeout)
                        metrics.readiness(report.ok)
                        try await Task.sleep(for: interval)
                    }
                }
            }
        }
    }

    static func respond(_ report: HealthReport) -> Response {
        Response(
            status: report.ok ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: report.json())))
    }
}
