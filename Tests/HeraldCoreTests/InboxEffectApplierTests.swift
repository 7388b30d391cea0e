import HeraldCore
import Testing

/// Which events the inbox sees: only those with an effect in PostgreSQL.
@Suite("Inbox effect applier")
struct InboxEffectApplierTests {
    /// An inbox that remembers what it was asked to record and treats `seen` as recorded before.
    final class RecordingInbox: EventInbox {
        let calls = Locked<[[String]]>([])
        let seen: Set<String>

        init(seen: Set<String> = []) { self.seen = seen }

        func record(_ events: [AcceptedEvent], consumerGroup: String) async throws -> Set<EventID> {
            calls.withLock { $0.append(events.map(\.metadata.id.rawValue)) }
            return Set(events.map(\.metadata.id).filter { !seen.contains($0.rawValue) })
        }
    }

    static func event(_ id: String, _ effects: [Effect]) throws -> AcceptedEvent {
        AcceptedEvent(
            metadata: EventMetadata(
                type: "Test", id: try EventID(id), occurredAt: EventTime(millisecondsSinceEpoch: 0),
                topic: "t", partition: 0, offset: 0),
            event: nil, effects: effects)
    }

    static let at = EventTime(millisecondsSinceEpoch: 1_700_000_000_000)

    @Test("revocation-only events go to Redis and skip the inbox; a batch of only those never touches it")
    func revocationsSkipTheInbox() async throws {
        let inbox = RecordingInbox()
        let store = FakeRevocationStore()
        let applier = InboxEffectApplier(inbox: inbox, revocations: RevocationEffectApplier(store: store), consumerGroup: "g")
        let role = try Self.event("r1", [.invalidateRole(try RoleName("admin"), asOf: Self.at)])
        let user = try Self.event("u1", [.revokeUser(try UserID("u1"), asOf: Self.at)])
        #expect(try await applier.apply([role, user]).isEmpty)
        #expect(inbox.calls.current.isEmpty)
        #expect(store.calls.current.flatMap { $0 }.count == 2)

        let deleted = try Self.event(
            "d1", [.revokeUser(try UserID("u2"), asOf: Self.at), .deleteRecipient(try UserID("u2"), asOf: Self.at)])
        #expect(try await applier.apply([role, deleted, user]).isEmpty)
        #expect(inbox.calls.current == [["d1"]])
    }

    @Test("duplicates are the recordable events the inbox had seen before")
    func duplicates() async throws {
        let inbox = RecordingInbox(seen: ["d1"])
        let applier = InboxEffectApplier(
            inbox: inbox, revocations: RevocationEffectApplier(store: FakeRevocationStore()), consumerGroup: "g")
        let deleted = try Self.event("d1", [.deleteRecipient(try UserID("u2"), asOf: Self.at)])
        let fresh = try Self.event("d2", [.deleteRecipient(try UserID("u3"), asOf: Self.at)])
        let role = try Self.event("r1", [.invalidateRole(try RoleName("admin"), asOf: Self.at)])
        #expect(try await applier.apply([deleted, role, fresh]) == [try EventID("d1")])
        #expect(inbox.calls.current == [["d1", "d2"]])
    }
}
