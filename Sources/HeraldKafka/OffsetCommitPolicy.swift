/// Herald's offset commit policy, decided here and nowhere else. At-least-once delivery rests
/// on it:
///
/// 1. **An offset is stored only after its record's outcome is final.** The partition's
///    worker stores the next offset (`RDKafkaClient.storeOffset`, in librdkafka's memory) once
///    a batch's effects are applied or its dead letters acknowledged; a worker abandoned at
///    revocation or shutdown stores nothing. librdkafka never stores an offset by itself
///    when it hands out a record: `enable.auto.offset.store=false`.
/// 2. **What is stored is committed by the consumer's poll thread**: every `interval`
///    (`HERALD_COMMIT_INTERVAL`) without waiting for the coordinator's answer
///    (`rd_kafka_commit`, asynchronous), and synchronously after a revocation's drain (before
///    the partitions are released) and at shutdown (before the group is left). librdkafka's
///    own commit timer is off, `enable.auto.commit=false`: a commit happens only where
///    `KafkaEventConsumer+Offsets.swift` makes one.
///
/// A crash between a store and the next commit means records are applied again, never that
/// one is skipped. Users' librdkafka properties may not undo the policy:
/// `enable.auto.offset.store=true` would commit records before their outcome, and
/// `enable.auto.commit=false` asks for no periodic commit, which Herald does not offer; both
/// are refused. (`enable.auto.commit=true` asks for what Herald does anyway, on its own timer,
/// and is accepted.)
struct OffsetCommitPolicy: Sendable, Equatable {
    /// How often the poll thread commits stored offsets; at least 1 ms.
    let interval: Duration

    init(interval: Duration) {
        self.interval = max(interval, .milliseconds(1))
    }

    /// The librdkafka properties that carry the policy out; applied after the user's.
    var librdkafkaProperties: [(String, String)] {
        [("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")]
    }

    /// Refuses a user's librdkafka properties that contradict the policy.
    static func check(_ properties: [String: String]) throws(KafkaError) {
        if let given = properties["enable.auto.offset.store"], given != "false" {
            throw KafkaError.configuration(
                "librdkafka property enable.auto.offset.store must be false: Herald stores an offset only after the record's outcome is final"
            )
        }
        if let given = properties["enable.auto.commit"], given != "true" {
            throw KafkaError.configuration(
                "librdkafka property enable.auto.commit must be true: Herald commits the offsets of finished records every commit interval, on revocation and at shutdown (on its own timer)"
            )
        }
    }

    /// When the poll loop's next periodic commit is due.
    func schedule(startingAt start: ContinuousClock.Instant) -> Schedule {
        Schedule(interval: interval, next: start + interval)
    }

    /// The periodic commit's timer, kept by the poll thread and asked once per turn.
    struct Schedule: Sendable {
        let interval: Duration
        private(set) var next: ContinuousClock.Instant

        init(interval: Duration, next: ContinuousClock.Instant) {
            self.interval = interval
            self.next = next
        }

        /// True when a commit is due at `now`; the next one is then due an interval later.
        mutating func isDue(at now: ContinuousClock.Instant) -> Bool {
            guard now >= next else { return false }
            next = now + interval
            return true
        }
    }
}
