import HeraldCore
import Prometheus

/// One outbox relay's metrics, every series labelled `relay`: `outbox` for the API's outbox
/// table (HERALD_OUTBOX_ENABLED), `mail_events` for Herald's own `mail_outbox`
/// (HERALD_MAIL_EVENTS_ENABLED). Two relays in one process keep their counts and, above all,
/// their backlog gauges apart.
struct OutboxRelayMetrics: OutboxObserver {
    static let outbox = "outbox"
    static let mailEvents = "mail_events"
    static let relays = [outbox, mailEvents]

    private let published: Counter
    private let retries: Counter
    private let failedRows: Gauge
    private let waitingRows: Gauge
    private let failures: Counter
    private let finalFailures: Counter

    init(registry: PrometheusCollectorRegistry, relay: String) {
        let label = [("relay", relay)]
        published = registry.counter(name: "herald_outbox_published_total", labels: label, help: "Outbox rows the broker acknowledged.")
        retries = registry.counter(
            name: "herald_outbox_retries_total", labels: label,
            help: "Times the outbox relay waited because its store or the broker failed.")
        failedRows = registry.gauge(
            name: "herald_outbox_failed_rows", labels: label, help: "Outbox rows marked failed (each blocks its aggregate).")
        waitingRows = registry.gauge(
            name: "herald_outbox_blocked_rows", labels: label, help: "Pending outbox rows waiting behind a failed row of their aggregate.")
        let help = "Outbox rows that could not be published; final when the row is now failed."
        failures = registry.counter(name: "herald_outbox_row_failures_total", labels: label + [("final", "false")], help: help)
        finalFailures = registry.counter(name: "herald_outbox_row_failures_total", labels: label + [("final", "true")], help: help)
    }

    func published(_ events: [OutboxEvent]) {
        published.increment(by: Int64(events.count))
    }

    func rowFailed(_ event: OutboxEvent, reason: String, final: Bool) {
        (final ? finalFailures : failures).increment()
    }

    func retrying(attempt: Int, delay: Duration, error: any Error) {
        retries.increment()
    }

    func backlog(_ backlog: OutboxBacklog) {
        failedRows.set(Double(backlog.failedRows))
        waitingRows.set(Double(backlog.waitingRows))
    }
}
