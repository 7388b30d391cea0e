/// Herald's pause rule: **a partition is paused exactly while its worker waits on a retry.**
///
/// A batch that a dependency failed (Redis, PostgreSQL, the dead-letter topic) is retried by
/// its worker until it succeeds; meanwhile nothing more is fetched for that partition, so
/// librdkafka's prefetch does not fill with records that cannot be processed, and other
/// partitions go on. When the retry ends the partition is resumed. A partition assigned
/// (again) starts resumed: librdkafka may remember a pause from an earlier assignment.
///
/// Pure bookkeeping, owned by the consumer's poll thread, which reports what workers do and
/// carries out the changes this returns (`KafkaEventConsumer+Pausing.swift`).
struct PartitionPauses {
    /// Partitions to pause and to resume, each sorted.
    struct Changes: Equatable {
        var pause: [KafkaPartition] = []
        var resume: [KafkaPartition] = []

        var isEmpty: Bool { pause.isEmpty && resume.isEmpty }
    }

    /// The partitions paused now.
    private(set) var paused: Set<KafkaPartition> = []

    var count: Int { paused.count }

    /// Applies the rule to `partitions` (those with a worker): each one whose worker is
    /// retrying is paused, each other one resumed. Partitions not listed keep their state.
    /// - Returns: what changed, for librdkafka.
    mutating func reconcile(_ partitions: some Sequence<KafkaPartition>, isRetrying: (KafkaPartition) -> Bool) -> Changes {
        var changes = Changes()
        for partition in partitions {
            let retrying = isRetrying(partition)
            if retrying && !paused.contains(partition) {
                changes.pause.append(partition)
            } else if !retrying && paused.contains(partition) {
                changes.resume.append(partition)
            }
        }
        paused.formUnion(changes.pause)
        paused.subtract(changes.resume)
        changes.pause.sort(by: Self.order)
        changes.resume.sort(by: Self.order)
        return changes
    }

    /// `partitions` were assigned: they start resumed (the caller resumes them in librdkafka).
    mutating func assigned(_ partitions: some Sequence<KafkaPartition>) {
        paused.subtract(partitions)
    }

    /// `partitions` were revoked: their pauses are forgotten.
    mutating func revoked(_ partitions: some Sequence<KafkaPartition>) {
        paused.subtract(partitions)
    }

    /// The whole assignment was dropped.
    mutating func removeAll() {
        paused.removeAll()
    }

    private static func order(_ a: KafkaPartition, _ b: KafkaPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}
