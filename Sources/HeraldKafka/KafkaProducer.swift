import Foundation
import HeraldCore
import Logging
import Synchronization

/// An idempotent producer (`enable.idempotence=true`). `send` returns only when the broker
/// acknowledged every record, so a caller can store a consumed offset afterwards. A
/// dedicated thread serves delivery reports and owns the client: `close()` flushes and
/// destroys it before it returns. A producer must be closed (its thread keeps it alive).
public final class KafkaProducer: Sendable {
    private let client: RDKafkaClient
    private let logger: Logger
    private let closing = Atomic<Bool>(false)
    private let pollThreadDone = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let pollThreadFinished = Atomic<Bool>(false)
    private let flushTimeout: Duration
    /// The fatal error librdkafka raised (an idempotence guarantee broken), once it did, and
    /// whoever waits for one.
    private let fatal = Mutex<FatalState>(FatalState())

    private struct FatalState {
        var error: KafkaError?
        var ended = false
        var waiters: [CheckedContinuation<KafkaError?, Never>] = []
    }

    /// - Parameters:
    ///   - bootstrapServers: `host:port[,host:port]`.
    ///   - properties: raw librdkafka properties (SASL, SSL, tuning); Herald's required
    ///     settings are applied on top of them.
    public init(
        bootstrapServers: String, properties: [String: String] = [:], secretProperties: Set<String> = [],
        clientID: String = "herald", flushTimeout: Duration = .seconds(10), logger: Logger
    ) throws(KafkaError) {
        self.logger = logger
        self.flushTimeout = flushTimeout
        let context = RDKafkaClientContext(
            logger: logger,
            delivery: { opaque, error in
                KafkaProducer.delivered(opaque, error)
            })
        var props: [(String, String)] = [
            ("client.id", clientID),
            // Every caller enqueues a whole batch and then waits for its acknowledgements, so
            // lingering only delays them: the outbox relay over 10 aggregates (a wave of 10
            // records per round trip) went from 2,000 to 4,500 rows/s with 0 instead of 2, and
            // over 10,000 aggregates from 15,300 to 16,200 (records enqueued while a request is
            // in flight still share the next one).
            ("linger.ms", "0"),
            // Dead letters carry the original value plus headers; leave room above 1 MiB.
            ("message.max.bytes", "16777216"),
        ]
        props += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        props += [
            ("bootstrap.servers", bootstrapServers),
            ("enable.idempotence", "true"),
        ]
        self.client = try RDKafkaClient(.producer, properties: props, secretKeys: secretProperties, context: context)
        startPollThread()
    }

    /// Produces `records` and waits for the broker's acknowledgement of each.
    /// - Throws: the delivery error of the first record that failed (`KafkaError`, transient
    ///   or not).
    public func send(_ records: [OutboundRecord]) async throws {
        let errors = try await deliver(records)
        if let first = errors.lazy.compactMap({ $0 }).first { throw first }
    }

    /// Produces `records` and waits until the broker acknowledged or refused each one.
    /// - Returns: one entry per record, in order: nil when acknowledged, else its delivery
    ///   error. A record refused before it was enqueued for what it is (too large) gets that
    ///   error alone; any other enqueue failure (a fatal producer, a queue that stayed full)
    ///   is given to that record and every record after it.
    /// - Throws: `KafkaError` when the producer is closed.
    public func deliver(_ records: [OutboundRecord]) async throws -> [KafkaError?] {
        if records.isEmpty { return [] }
        guard !closing.load(ordering: .acquiring) else { throw KafkaError.clientClosed("producer is closed") }
        if let fatal = fatalError { return Array(repeating: fatal, count: records.count) }
        let batch = DeliveryBatch(count: records.count)
        for (index, record) in records.enumerated() {
            if let error = await enqueue(record, ticket: DeliveryTicket(batch: batch, index: index)) {
                // Records not enqueued will never get a report: account for them here.
                if error.code == .messageTooLarge {
                    batch.fail(index, error)
                    continue
                }
                batch.fail(from: index, error)
                break
            }
        }
        return await batch.wait()
    }

    /// Enqueues one record, waiting (without blocking a thread) while librdkafka's local
    /// queue is full.
    private func enqueue(_ record: OutboundRecord, ticket: DeliveryTicket) async -> KafkaError? {
        let opaque = Unmanaged.passRetained(ticket).toOpaque()
        var attempts = 0
        while true {
            guard let error = client.produce(record, opaque: opaque) else { return nil }
            if error.code == .queueFull && attempts < 30_000 {
                attempts += 1
                // The poll thread drains the queue meanwhile.
                try? await Task.sleep(for: .milliseconds(1))
                continue
            }
            Unmanaged<DeliveryTicket>.fromOpaque(opaque).release()
            return error
        }
    }

    /// Delivery report, on the poll thread.
    private static func delivered(_ opaque: UnsafeMutableRawPointer?, _ error: KafkaError?) {
        guard let opaque else { return }
        let ticket = Unmanaged<DeliveryTicket>.fromOpaque(opaque).takeRetainedValue()
        ticket.batch.report(ticket.index, error)
    }

    /// The fatal error the producer hit, if any: it can never send again and must be replaced
    /// (Herald exits so that its supervisor restarts it).
    public var fatalError: KafkaError? { fatal.withLock { $0.error } }

    /// Returns the producer's fatal error as soon as it has one, or nil once it is closed
    /// without one.
    public func waitForFatalError() async -> KafkaError? {
        await withCheckedContinuation { (c: CheckedContinuation<KafkaError?, Never>) in
            let now = fatal.withLock { s -> KafkaError?? in
                if s.error != nil || s.ended { return .some(s.error) }
                s.waiters.append(c)
                return .none
            }
            if let now { c.resume(returning: now) }
        }
    }

    /// Records a fatal error librdkafka raised, once, and tells the waiters.
    private func checkFatalError() {
        guard let error = client.fatalError() else { return }
        let waiters = fatal.withLock { s -> [CheckedContinuation<KafkaError?, Never>]? in
            guard s.error == nil else { return nil }
            s.error = error
            defer { s.waiters = [] }
            return s.waiters
        }
        guard let waiters else { return }
        logger.critical("the Kafka producer hit a fatal error and cannot send again", metadata: ["error": "\(error)"])
        for waiter in waiters { waiter.resume(returning: error) }
    }

    /// Makes librdkafka raise a fatal error, as a broken idempotence guarantee would (tests).
    func simulateFatalError(_ reason: String) {
        client.raiseTestFatalError(reason)
    }

    private func startPollThread() {
        let thread = Thread { [self] in
            // rd_kafka_poll blocks up to 100 ms: it runs here, never on the cooperative pool.
            while !closing.load(ordering: .acquiring) {
                client.poll(timeoutMs: 100)
                if fatal.withLock({ $0.error == nil }) { checkFatalError() }
            }
            // rd_kafka_flush blocks until every record is delivered or the timeout passes.
            let ms = Int32(clamping: Int64(flushTimeout.seconds * 1000))
            if !client.flush(timeoutMs: ms) {
                logger.error("producer flush timed out; undelivered records fail", metadata: ["pending": "\(client.outstandingRecords)"])
                client.purgeOutstandingRecords()
            }
            // rd_kafka_destroy joins librdkafka's threads: none of them may outlive the context
            // its log and delivery callbacks use, which goes when this object does.
            client.destroy()
            let waiters = fatal.withLock { s -> [CheckedContinuation<KafkaError?, Never>] in
                s.ended = true
                defer { s.waiters = [] }
                return s.waiters
            }
            for waiter in waiters { waiter.resume(returning: nil) }
            pollThreadFinished.store(true, ordering: .releasing)
            pollThreadDone.withLock {
                $0?.resume(); $0 = nil
            }
        }
        thread.name = "herald-producer-poll"
        thread.start()
    }

    /// Flushes outstanding records (up to the flush timeout) and stops the poll thread.
    public func close() async {
        closing.store(true, ordering: .releasing)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = pollThreadDone.withLock { slot -> Bool in
                if pollThreadFinished.load(ordering: .acquiring) { return true }
                slot = c
                return false
            }
            if resumeNow { c.resume() }
        }
    }
}

/// One record's place in its batch: what a delivery report finds through the opaque pointer.
private final class DeliveryTicket: Sendable {
    let batch: DeliveryBatch
    let index: Int

    init(batch: DeliveryBatch, index: Int) {
        self.batch = batch
        self.index = index
    }
}

/// Collects the delivery reports of one `deliver` call.
private final class DeliveryBatch: Sendable {
    private struct State {
        var remaining: Int
        var errors: [KafkaError?]
        var continuation: CheckedContinuation<[KafkaError?], Never>?
    }
    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(remaining: count, errors: Array(repeating: nil, count: count)))
    }

    func report(_ index: Int, _ error: KafkaError?) {
        finish { s in
            s.remaining -= 1
            if let error { s.errors[index] = error }
        }
    }

    /// Records `error` for the record at `index` only.
    func fail(_ index: Int, _ error: KafkaError) {
        finish { s in
            s.remaining -= 1
            s.errors[index] = error
        }
    }

    /// Records `error` for the record at `index` and every one after it.
    func fail(from index: Int, _ error: KafkaError) {
        finish { s in
            s.remaining -= s.errors.count - index
            for i in index..<s.errors.count { s.errors[i] = error }
        }
    }

    private func finish(_ update: (inout State) -> Void) {
        let done = state.withLock { s -> (CheckedContinuation<[KafkaError?], Never>, [KafkaError?])? in
            update(&s)
            guard s.remaining <= 0, let c = s.continuation else { return nil }
            s.continuation = nil
            return (c, s.errors)
        }
        if let (continuation, errors) = done { continuation.resume(returning: errors) }
    }

    /// Returns every record's outcome once all were reported.
    func wait() async -> [KafkaError?] {
        await withCheckedContinuation { (c: CheckedContinuation<[KafkaError?], Never>) in
            let errors = state.withLock { s -> [KafkaError?]? in
                guard s.remaining <= 0 else {
                    s.continuation = c
                    return nil
                }
                return s.errors
            }
            if let errors { c.resume(returning: errors) }
        }
    }
}
