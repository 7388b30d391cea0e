/// Group commit for the inbox: the batches that partitions hand over while `maxInFlight`
/// inbox transactions are already running wait, and are then recorded together in one
/// transaction (up to `maxEvents` events), instead of one transaction per partition batch.
/// Every caller gets back exactly what its own `record` would have returned: the ids of its
/// events that the transaction newly recorded (an id two callers both hold counts for the
/// first of them only, as within one batch).
///
/// Failures: an outage (any error but `EventContentError`) fails every batch of the combined
/// transaction, and each partition retries on its own. An `EventContentError` blames one
/// event's values without saying which batch holds it, so each batch is then recorded alone,
/// and only the one holding the event sees the error (and isolates the event).
public actor InboxGroupCommit: EventInbox {
    private let inbox: any EventInbox
    private let maxInFlight: Int
    private let maxEvents: Int
    private var waiting: [Request] = []
    private var inFlight = 0

    struct Request {
        let events: [AcceptedEvent]
        let consumerGroup: String
        let continuation: CheckedContinuation<Set<EventID>, any Error>
    }

    /// - Parameters:
    ///   - inbox: the inbox that runs the transactions.
    ///   - maxInFlight: transactions at once (at most the database pool's size).
    ///   - maxEvents: events per combined transaction; a batch larger than this goes alone.
    public init(_ inbox: any EventInbox, maxInFlight: Int = 2, maxEvents: Int = 4000) {
        self.inbox = inbox
        self.maxInFlight = max(1, maxInFlight)
        self.maxEvents = max(1, maxEvents)
    }

    /// Batches waiting for a transaction.
    public var waitingBatches: Int { waiting.count }

    public func record(_ events: [AcceptedEvent], consumerGroup: String) async throws -> Set<EventID> {
        if events.isEmpty { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            waiting.append(Request(events: events, consumerGroup: consumerGroup, continuation: continuation))
            startCommits()
        }
    }

    /// Starts transactions while there is waiting work and room for one.
    private func startCommits() {
        while inFlight < maxInFlight, !waiting.isEmpty {
            let group = takeGroup()
            inFlight += 1
            Task { await self.commit(group) }
        }
    }

    /// The oldest waiting batch, and after it the waiting batches of the same consumer group
    /// that fit in `maxEvents`.
    private func takeGroup() -> [Request] {
        let first = waiting.removeFirst()
        var taken = [first]
        var count = first.events.count
        var index = 0
        while index < waiting.count {
            let next = waiting[index]
            if next.consumerGroup == first.consumerGroup, count + next.events.count <= maxEvents {
                taken.append(next)
                count += next.events.count
                waiting.remove(at: index)
            } else {
                index += 1
            }
        }
        return taken
    }

    private func commit(_ requests: [Request]) async {
        defer {
            inFlight -= 1
            startCommits()
        }
        if requests.count == 1 {
            let request = requests[0]
            do {
                request.continuation.resume(returning: try await inbox.record(request.events, consumerGroup: request.consumerGroup))
            } catch {
                request.continuation.resume(throwing: error)
            }
            return
        }
        do {
            let recorded = try await inbox.record(requests.flatMap(\.events), consumerGroup: requests[0].consumerGroup)
            var handedOut: Set<EventID> = []
            for request in requests {
                var mine: Set<EventID> = []
                for event in request.events where recorded.contains(event.metadata.id) {
                    if handedOut.insert(event.metadata.id).inserted { mine.insert(event.metadata.id) }
                }
                request.continuation.resume(returning: mine)
            }
        } catch is EventContentError {
            for request in requests {
                do {
                    request.continuation.resume(
                        returning: try await inbox.record(request.events, consumerGroup: request.consumerGroup))
                } catch {
                    request.continuation.resume(throwing: error)
                }
            }
        } catch {
            for request in requests { request.continuation.resume(throwing: error) }
        }
    }
}
