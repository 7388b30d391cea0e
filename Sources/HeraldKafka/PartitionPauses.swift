/// Herald's pause rule. **A partition is paused while its worker waits on a retry, or while
/// its share of the memory budget (or the budget's records part, shared by every partition)
/// has no room for its next record**, until it has drained to half its share and the whole to
/// seven eighths.
///
/// A batch that a dependency failed (Redis, PostgreSQL, the dead-letter topic) is retried by
/// its worker until it succeeds; meanwhile nothing more is fetched for that partition, so
/// librdkafka's prefetch does not fill with records that cannot be processed, and other
/// partitions go on. When the retry ends the partition is resumed. A partition assigned
/// (again) starts resumed: librdkafka may remember a pause from an earlier assignment.
///
/// Pausing is also the memory brake: librdkafka 2.0 waits up to a second before fetching a
/// partition whose queue went over its limits, so those limits cannot be the brake without
/// losing most of the throughput; a paused partition's prefetched records are dropped at
/// once, and a resumed one is fetched at once from the next record Herald has not read.
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

    /// Where a partition's records stand against the memory budget.
    enum Memory: Equatable {
        /// No room for one more record (of the size of its last ones) in its share or in the
        /// budget's records part: pause. (Herald stops reading a partition it has no room for;
        /// unpaused, librdkafka would go on filling its queue.)
        case full
        /// Drained to half its share, and the whole to seven eighths: may resume.
        case roomy
        /// In between: stays as it is (read, if resumed, as far as there is room).
        case between

        /// - Parameters:
        ///   - held: the bytes of the partition's records; `share`: its share of the records part.
        ///   - used: the bytes of every partition's records; `records`: the records part.
        ///   - recordBytes: the footprint of the partition's last records.
        static func of(held: Int, share: Int, used: Int, records: Int) -> Memory {
            // A partition that holds nothing may always take one record, alone, unless the
            // whole records part is in use.
            if held > 0 ? (held >= share || used >= records) : used >= records { return .full }
            if held <= share / 2 && used <= records / 8 * 7 { return .roomy }
            return .between
        }
    }

    /// The partitions paused while their worker waits on a retry.
    private(set) var retrying: Set<KafkaPartition> = []
    /// The partitions paused for memory.
    private(set) var full: Set<KafkaPartition> = []

    /// Partitions paused while retrying (the `herald_kafka_partitions_paused` metric).
    var count: Int { retrying.count }

    /// Partitions paused for memory only (the `herald_memory_partitions_paused` metric).
    var memoryOnlyCount: Int { full.subtracting(retrying).count }

    func isPaused(_ partition: KafkaPartition) -> Bool {
        retrying.contains(partition) || full.contains(partition)
    }

    /// Applies the rule to `partitions` (those with a worker). Partitions not listed keep
    /// their state.
    /// - Returns: what changed, for librdkafka.
    mutating func reconcile(
        _ partitions: some Sequence<KafkaPartition>, isRetrying: (KafkaPartition) -> Bool,
        memory: (KafkaPartition) -> Memory = { _ in .roomy }
    ) -> Changes {
        var changes = Changes()
        for partition in partitions {
            let was = isPaused(partition)
            if isRetrying(partition) { retrying.insert(partition) } else { retrying.remove(partition) }
            switch memory(partition) {
            case .full: full.insert(partition)
            case .roomy: full.remove(partition)
            case .between: break
            }
            let now = isPaused(partition)
            if now && !was { changes.pause.append(partition) }
            if was && !now { changes.resume.append(partition) }
        }
        changes.pause.sort(by: Self.order)
        changes.resume.sort(by: Self.order)
        return changes
    }

    /// `partitions` were assigned: they start resumed (the caller resumes them in librdkafka).
    mutating func assigned(_ partitions: some Sequence<KafkaPartition>) {
        retrying.subtract(partitions)
        full.subtract(partitions)
    }

    /// `partitions` were revoked: their pauses are forgotten.
    mutating func revoked(_ partitions: some Sequence<KafkaPartition>) {
        retrying.subtract(partitions)
        full.subtract(partitions)
    }

    /// The whole assignment was dropped.
    mutating func removeAll() {
        retrying.removeAll()
        full.removeAll()
    }

    private static func order(_ a: KafkaPartition, _ b: KafkaPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}
