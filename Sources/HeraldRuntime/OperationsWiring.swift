import Foundation
import HeraldCore
import HeraldCourier
import HeraldKafka
import HeraldOperations
import HeraldPostgres
import HeraldRedis
import Logging
import Metrics
import Prometheus

/// Builds Herald's metrics and the operations HTTP server (its health and readiness checks)
/// for `herald run`.
enum OperationsWiring {
    /// The metrics registry; also the swift-metrics backend, so library metrics land there too.
    static func bootstrapMetrics() -> HeraldMetrics {
        let metrics = HeraldMetrics(knownEventTypes: EventCatalog.standard.types)
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        return metrics
    }

    static func server(
        _ ops: OperationsSettings, groupID: String, metrics: HeraldMetrics, consumer: KafkaEventConsumer, monitor: KafkaLagMonitor,
        redis: RedisClient, database: PostgresClient
    ) -> OperationsServer {
        let stall = ops.stallTimeout
        let sampleStall = stall + ops.sampleInterval
        let liveness = [
            HealthCheck("consumer_loop") {
                let age = consumer.pollLoopAge
                return CheckResult(ok: age < stall, detail: "last turned \(seconds(age)) s ago")
            },
            HealthCheck("lag_sampler") {
                let age = monitor.sampleAge
                return CheckResult(ok: age < sampleStall, detail: "last sampled \(seconds(age)) s ago")
            },
        ]
        let readiness = [
            HealthCheck("kafka") {
                let assigned = consumer.assignment.count
                if assigned > 0 { return CheckResult(ok: true, detail: "\(assigned) partitions assigned") }
                if consumer.hasGroupAssignment {
                    return CheckResult(ok: true, detail: "in group \(groupID) with nothing to assign")
                }
                return CheckResult(ok: false, detail: "no assignment from group \(groupID) yet")
            },
            HealthCheck("redis") {
                do {
                    try await redis.ping()
                    return CheckResult(ok: true, detail: "PING answered")
                } catch {
                    return CheckResult(ok: false, detail: "\(error)")
                }
            },
            HealthCheck("postgres") {
                do {
                    try await database.ping()
                    return CheckResult(ok: true, detail: "SELECT 1 answered")
                } catch {
                    return CheckResult(ok: false, detail: "\(error)")
                }
            },
        ]
        return OperationsServer(
            host: ops.httpHost, port: ops.httpPort, metrics: metrics, liveness: liveness, readiness: readiness,
            checkTimeout: ops.readinessTimeout, interval: ops.sampleInterval, logger: Logger(label: "herald.http"))
    }

    static func seconds(_ d: Duration) -> String {
        String(format: "%.1f", d.seconds)
    }
}

/// Feeds mail outcomes and send durations to the metrics.
struct CourierMetrics: CourierObserver {
    let metrics: HeraldMetrics

    func courier(sent notification: ClaimedNotification, outcome: NotificationOutcome, duration: Duration) {
        metrics.mailSent(kind: notification.kind, status: outcome.status, duration: duration)
    }
}
