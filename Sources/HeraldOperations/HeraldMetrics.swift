import HeraldCore
import Prometheus
import Synchronization

/// Every metric Herald exports, in one Prometheus registry, and the observers that feed them.
///
/// Names follow Prometheus conventions: `herald_` prefix, `_total` for counters, `_seconds`
/// for durations and ages. Label values come from small, fixed sets (topics from the
/// configuration, catalogue event types, outcomes, partitions, mail kinds and statuses):
/// never a user id, an event id or an address. An event type that is not in the catalogue
/// is counted as `other`.
public final class HeraldMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let knownTypes: Set<String>

    // Events
    private let retries: Counter
    private let handlerDuration: DurationHistogram
    private let retryingPartitions: Gauge
    /// Partitions waiting on a failing dependency, and why (the `herald_partition_stalled` series).
    private let stalled = Mutex<[PartitionKey: StallReason]>([:])
    // Consumer
    private let pausedPartitions: Gauge
    private let assignedPartitions: Gauge
    private let lagSampleTime: Gauge
    private let memoryRecordBytes: Gauge
    private let memoryRecordLimit: Gauge
    private let memoryPausedPartitions: Gauge
    private let memoryPauses: Counter
    private let memoryPausesReported = Mutex(0)
    private let sampled = Mutex<Set<PartitionKey>>([])
    // Mail
    private let mailOldestQueuedAge: Gauge
    private let mailSendDuration: DurationHistogram
    // Outbox relays, by their `relay` label.
    private let outboxRelays: [String: OutboxRelayMetrics]
    // Health
    private let ready: Gauge

    struct PartitionKey: Hashable {
        let topic: String
        let partition: Int32
    }

    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), knownEventTypes: [EventType]) {
        self.registry = registry
        self.knownTypes = Set(knownEventTypes.map(\.rawValue))
        retries = registry.counter(
            name: "herald_event_retries_total", labels: [],
            help: "Transient failures after which a partition waited and retried a batch.")
        handlerDuration = registry.durationHistogram(
            name: "herald_handler_duration_seconds", labels: [], buckets: Self.durationBuckets,
            help: "Time to apply the effects of one batch of events (Redis and PostgreSQL), retries included.")
        retryingPartitions = registry.gauge(
            name: "herald_partitions_retrying", labels: [], help: "Partitions whose worker waits on a retry right now.")
        pausedPartitions = registry.gauge(
            name: "herald_kafka_partitions_paused", labels: [], help: "Assigned partitions paused while their worker retries.")
        assignedPartitions = registry.gauge(
            name: "herald_kafka_partitions_assigned", labels: [], help: "Partitions assigned to this member by its consumer group.")
        lagSampleTime = registry.gauge(
            name: "herald_kafka_lag_sample_timestamp_seconds", labels: [],
            help: "When the consumer lag was last sampled (seconds since the epoch).")
        memoryRecordBytes = registry.gauge(
            name: "herald_memory_records_bytes", labels: [],
            help: "Bytes of the records the consumer holds (buffered and being processed), counted against HERALD_MEMORY_BUDGET.")
        memoryRecordLimit = registry.gauge(
            name: "herald_memory_records_limit_bytes", labels: [],
            help: "What the records part of HERALD_MEMORY_BUDGET allows (five eighths of it).")
        memoryPausedPartitions = registry.gauge(
            name: "herald_memory_partitions_paused", labels: [],
            help: "Partitions paused right now because their share of the memory budget is full.")
        memoryPauses = registry.counter(
            name: "herald_memory_pauses_total", labels: [],
            help: "Times a partition was paused because its share of the memory budget was full.")
        mailOldestQueuedAge = registry.gauge(
            name: "herald_mail_queue_oldest_age_seconds", labels: [],
            help: "Age of the oldest mail waiting in the queue (status queued), 0 when none waits.")
        mailSendDuration = registry.durationHistogram(
            name: "herald_mail_send_duration_seconds", labels: [], buckets: Self.durationBuckets,
            help: "Time to render and send one mail (SMTP conversation included).")
        outboxRelays = Dictionary(
            uniqueKeysWithValues: OutboxRelayMetrics.relays.map { ($0, OutboxRelayMetrics(registry: registry, relay: $0)) })
        ready = registry.gauge(name: "herald_ready", labels: [], help: "1 when every readiness check passes, else 0.")
        // Series that exist from the start, so that rates and alerts see zeros, not gaps.
        for dependency in Dependency.allCases {
            _ = dependencyErrors(dependency)
            _ = dependencyReconnects(dependency)
        }
        for kind in RebalanceKind.allCases { _ = rebalances(kind) }
        for status in NotificationStatus.allCases { _ = mailQueueDepth(status) }
    }

    // MARK: Labelled series (the registry returns the same object for the same labels)

    private func typeLabel(_ type: EventType?) -> String {
        guard let type else { return "unknown" }
        return knownTypes.contains(type.rawValue) ? type.rawValue : "other"
    }

    func events(topic: String, type: EventType?, outcome: EventOutcome) -> Counter {
        registry.counter(
            name: "herald_events_total", labels: [("topic", topic), ("type", typeLabel(type)), ("outcome", outcome.rawValue)],
            help: "Events whose outcome is final, by topic, type and outcome (applied, ignored, dead_lettered, duplicate).")
    }

    func deadLetters(topic: String) -> Counter {
        registry.counter(
            name: "herald_dead_letters_total", labels: [("topic", topic)], help: "Records sent to the dead-letter topic, by source topic.")
    }

    func rebalances(_ kind: RebalanceKind) -> Counter {
        registry.counter(
            name: "herald_kafka_rebalances_total", labels: [("kind", kind.rawValue)],
            help: "Consumer group rebalances seen by this member (assigned, revoked, failed).")
    }

    private func partitionGauge(_ name: String, _ key: PartitionKey, help: String) -> Gauge {
        registry.gauge(name: name, labels: [("topic", key.topic), ("partition", String(key.partition))], help: help)
    }

    private func partitionGauges(_ key: PartitionKey) -> [Gauge] {
        [
            partitionGauge(
                "herald_kafka_consumer_committed_offset", key, help: "The group's committed offset (the low watermark when none)."),
            partitionGauge("herald_kafka_partition_high_watermark", key, help: "The partition's high watermark."),
            partitionGauge(
                "herald_kafka_consumer_lag_messages", key, help: "Records produced and not yet committed by the group (high - committed)."),
            partitionGauge(
                "herald_kafka_consumer_lag_seconds", key,
                help: "Age of the oldest record not yet committed by the group: now - its timestamp; 0 without lag."),
        ]
    }

    /// `herald_partition_stalled{topic, partition, reason}`: one series per assigned partition,
    /// `reason="none"` and 0 while it moves, the reason's class and 1 while it waits.
    func partitionStalled(_ key: PartitionKey, reason: StallReason?) -> Gauge {
        registry.gauge(
            name: "herald_partition_stalled",
            labels: [("topic", key.topic), ("partition", String(key.partition)), ("reason", reason?.rawValue ?? "none")],
            help:
                "1 while the partition waits on a failing dependency instead of moving on (it skips nothing), labelled with the reason; 0 with reason none otherwise."
        )
    }

    func mailQueueDepth(_ status: NotificationStatus) -> Gauge {
        registry.gauge(
            name: "herald_mail_queue_depth", labels: [("status", status.rawValue)], help: "Mails in the queue table, by status.")
    }

    func mailOutcomes(kind: NotificationKind, status: NotificationStatus) -> Counter {
        registry.counter(
            name: "herald_mail_outcomes_total", labels: [("kind", kind.rawValue), ("status", status.rawValue)],
            help:
                "Mail outcomes by kind and status: the courier's (sent, queued for a retry, failed, abandoned, suppressed, expired) and mail the inbox recorded as expired or suppressed at once."
        )
    }

    /// The metrics of one outbox relay (`OutboxRelayMetrics.relays`: `outbox`, `mail_events`).
    public func outboxObserver(relay: String) -> any OutboxObserver {
        guard let metrics = outboxRelays[relay] else { preconditionFailure("unknown outbox relay \(relay)") }
        return metrics
    }

    func dependencyErrors(_ dependency: Dependency) -> Counter {
        registry.counter(
            name: "herald_dependency_errors_total", labels: [("dependency", dependency.rawValue)],
            help: "Failed connection attempts and calls, by dependency (redis, postgres, smtp_oauth2: token requests).")
    }

    func dependencyReconnects(_ dependency: Dependency) -> Counter {
        registry.counter(
            name: "herald_dependency_reconnects_total", labels: [("dependency", dependency.rawValue)],
            help: "Connections opened to replace one that broke or was closed, by dependency.")
    }

    // MARK: Updates that are not observer callbacks

    /// The mail queue's depth by status and the age of its oldest queued mail.
    public func mailQueue(depth: [NotificationStatus: Int], oldestQueuedAge: Duration?) {
        for status in NotificationStatus.allCases { mailQueueDepth(status).set(Double(depth[status] ?? 0)) }
        mailOldestQueuedAge.set(oldestQueuedAge?.seconds ?? 0)
    }

    public func readiness(_ isReady: Bool) {
        ready.set(isReady ? 1.0 : 0.0)
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16_384)
        registry.emit(into: &buffer)
        return buffer
    }
}

extension HeraldMetrics: ProcessingObserver {
    public func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int) {
        events(topic: topic, type: type, outcome: outcome).increment(by: Int64(count))
        if outcome == .deadLettered { deadLetters(topic: topic).increment(by: Int64(count)) }
    }

    public func retrying(topic: String, partition: Int32, attempt: Int, delay: Duration, reason: StallReason, error: any Error) {
        retries.increment()
        let key = PartitionKey(topic: topic, partition: partition)
        // One series per stalled partition, labelled with its current reason.
        stalled.withLock { s in
            let previous: StallReason?? = s[key]
            if previous != .some(reason) {
                // The partition's one series moves to the new reason.
                registry.unregisterGauge(partitionStalled(key, reason: previous ?? nil))
            }
            s[key] = reason
            partitionStalled(key, reason: reason).set(1.0)
            retryingPartitions.set(Double(s.count))
        }
    }

    public func retryEnded(topic: String, partition: Int32) {
        let key = PartitionKey(topic: topic, partition: partition)
        stalled.withLock { s in
            if let previous = s.removeValue(forKey: key) {
                registry.unregisterGauge(partitionStalled(key, reason: previous))
                partitionStalled(key, reason: nil).set(0.0)
            }
            retryingPartitions.set(Double(s.count))
        }
    }

    public func applied(batchSize: Int, duration: Duration) {
        handlerDuration.record(duration)
    }
}

extension HeraldMetrics: ConsumerObserver {
    public func rebalanced(_ kind: RebalanceKind, partitions: Int) {
        rebalances(kind).increment()
    }

    public func pausedPartitions(_ count: Int) {
        pausedPartitions.set(Double(count))
    }

    public func memorySampled(_ sample: MemorySample) {
        memoryRecordBytes.set(Double(sample.recordBytes))
        memoryRecordLimit.set(Double(sample.recordLimit))
        memoryPausedPartitions.set(Double(sample.pausedPartitions))
        let new = newMemoryPauses(total: sample.pauses)
        if new > 0 { memoryPauses.increment(by: Int64(new)) }
    }

    /// Pauses counted since the previous sample.
    private func newMemoryPauses(total: Int) -> Int {
        memoryPausesReported.withLock { reported in
            defer { reported = max(reported, total) }
            return max(0, total - reported)
        }
    }

    public func lagSampled(_ partitions: [PartitionLag]) {
        let now = Set(partitions.map { PartitionKey(topic: $0.topic, partition: $0.partition) })
        // Partitions no longer assigned: their series go away (another member reports them).
        let gone = sampled.withLock { s in
            defer { s = now }
            return s.subtracting(now)
        }
        for key in gone {
            for gauge in partitionGauges(key) { registry.unregisterGauge(gauge) }
        }
        // Every assigned partition has its stalled series; a revoked one's goes with it.
        stalled.withLock { s in
            for key in gone where s[key] == nil { registry.unregisterGauge(partitionStalled(key, reason: nil)) }
            for key in now where s[key] == nil { partitionStalled(key, reason: nil).set(0.0) }
        }
        for p in partitions {
            let g = partitionGauges(PartitionKey(topic: p.topic, partition: p.partition))
            g[0].set(Double(p.resumeOffset))
            g[1].set(Double(p.high))
            g[2].set(Double(p.lagMessages))
            g[3].set(p.lagSeconds)
        }
        assignedPartitions.set(Double(partitions.count))
        if let at = partitions.first?.sampledAt {
            lagSampleTime.set(Double(at) / 1000)
        }
    }
}

/// As an outbox observer, the metrics of the API's outbox relay (`relay="outbox"`).
extension HeraldMetrics: OutboxObserver {
    public func published(_ events: [OutboxEvent]) {
        outboxObserver(relay: OutboxRelayMetrics.outbox).published(events)
    }

    public func rowFailed(_ event: OutboxEvent, reason: String, final: Bool) {
        outboxObserver(relay: OutboxRelayMetrics.outbox).rowFailed(event, reason: reason, final: final)
    }

    public func retrying(attempt: Int, delay: Duration, error: any Error) {
        outboxObserver(relay: OutboxRelayMetrics.outbox).retrying(attempt: attempt, delay: delay, error: error)
    }

    public func backlog(_ backlog: OutboxBacklog) {
        outboxObserver(relay: OutboxRelayMetrics.outbox).backlog(backlog)
    }
}

extension HeraldMetrics: ConnectionObserver {
    public func connected(_ dependency: Dependency, replacing: Bool) {
        if replacing { dependencyReconnects(dependency).increment() }
    }

    public func failed(_ dependency: Dependency) {
        dependencyErrors(dependency).increment()
    }
}

extension HeraldMetrics {
    /// A mail's outcome and how long sending it took (the courier's observer calls this).
    public func mailSent(kind: NotificationKind, status: NotificationStatus, duration: Duration) {
        mailOutcomes(kind: kind, status: status).increment()
        mailSendDuration.record(duration)
    }
}

extension HeraldMetrics: MailQueueObserver {
    /// Mail the inbox recorded as `expired` or `suppressed` instead of queueing it.
    public func queued(kind: NotificationKind, status: NotificationStatus) {
        mailOutcomes(kind: kind, status: status).increment()
    }
}

extension PrometheusCollectorRegistry {
    /// A descriptor for a full metric name (Herald's names carry their unit suffix already).
    func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    func counter(name: String, labels: [(String, String)], help: String) -> Counter {
        makeCounter(descriptor: descriptor(name, help), labels: labels)
    }

    func gauge(name: String, labels: [(String, String)], help: String) -> Gauge {
        makeGauge(descriptor: descriptor(name, help), labels: labels)
    }

    fileprivate func durationHistogram(name: String, labels: [(String, String)], buckets: [Duration], help: String) -> DurationHistogram {
        makeDurationHistogram(descriptor: descriptor(name, help), labels: labels, buckets: buckets)
    }
}

extension HeraldMetrics: MailQueueSampleObserver {}
