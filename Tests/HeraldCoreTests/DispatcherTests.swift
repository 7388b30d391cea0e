import HeraldCore
import Testing

/// What the dispatcher decides for each kind of record, and the revocation effects.
@Suite("Dispatch and failure classification")
struct DispatcherTests {
    let dispatcher = EventDispatcher(
        decoder: EnvelopeDecoder(clock: fixedClock), handlers: [RevocationHandler()],
        ignoredTypes: ["EmailVerificationRequested"])

    enum Outcome: Equatable {
        case accepted(event: String?, effects: [Effect])
        case rejected(Rejection.Class, type: String?)
    }

    func outcome(_ message: InboundMessage, _ dispatcher: EventDispatcher? = nil) -> Outcome {
        switch (dispatcher ?? self.dispatcher).decide(message) {
        case .accept(let accepted):
            #expect(accepted.metadata.offset == message.offset)
            return .accepted(event: accepted.event.map(typeName), effects: accepted.effects)
        case .reject(let rejection, let metadata):
            return .rejected(rejection.errorClass, type: metadata?.type.rawValue)
        }
    }

    @Test(
        "values that are not a JSON object are NotJSON, before any type is known",
        arguments: [
            inbound(nil), inbound(""), inbound("   "), inbound("[1]"), inbound("garbage"), inbound(#"{"type":"RoleDeleted""#),
            InboundMessage(topic: "t", partition: 0, offset: 0, value: [0xFF, 0xFE, 0x00, 0x01]),
            InboundMessage(topic: "t", partition: 0, offset: 0, value: Array(#"{"role":"a"#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)),
        ])
    func notJSON(_ message: InboundMessage) {
        #expect(outcome(message) == .rejected(.notJSON, type: nil))
    }

    @Test("a record without a type is an InvalidEnvelope")
    func invalidEnvelope() {
        #expect(outcome(inbound(#"{"role":"admin"}"#)) == .rejected(.invalidEnvelope, type: nil))
        #expect(outcome(inbound(#"{"type":"RoleDeleted","occurred_at":"now"}"#)) == .rejected(.invalidEnvelope, type: nil))
    }

    @Test(
        "payloads that break their event's schema are ValidationFailed, with the type in the metadata",
        arguments: [
            ("RoleDeleted", #"{"type":"RoleDeleted"}"#),
            ("RoleDeleted", #"{"type":"RoleDeleted","role":5}"#),
            ("RoleDeleted", #"{"type":"RoleDeleted","role":null}"#),
            ("RolePermissionsChanged", #"{"type":"RolePermissionsChanged","role":" admin"}"#),
            ("UserRolesChanged", #"{"type":"UserRolesChanged","user_id":""}"#),
            ("UserSessionsRevoked", #"{"type":"UserSessionsRevoked","user_id":1.5}"#),
            ("UserDeleted", #"{"type":"UserDeleted","user_id":{"id":1}}"#),
            ("EmailChanged", #"{"type":"EmailChanged","user_id":"u","old_email":"a@b.com\r\nBcc: x","new_email":"c@d.org"}"#),
        ])
    func validationFailed(_ type: String, _ body: String) {
        #expect(outcome(inbound(body)) == .rejected(.validationFailed, type: type))
    }

    @Test("a type nobody handles or ignores is an UnknownEventType")
    func unknownType() {
        #expect(outcome(inbound(#"{"type":"NoSuchEvent"}"#)) == .rejected(.unknownEventType, type: "NoSuchEvent"))
        // A known type that is neither handled nor ignored is unknown to the pipeline too.
        let strict = EventDispatcher(decoder: EnvelopeDecoder(clock: fixedClock), handlers: [RevocationHandler()])
        let created = #"{"type":"UserCreated","user_id":"u1","username":"ada"}"#
        #expect(outcome(inbound(created), strict) == .rejected(.unknownEventType, type: "UserCreated"))
    }

    @Test("every handler registered for a type decides: UserDeleted revokes and deletes the recipient")
    func severalHandlers() throws {
        let both = EventDispatcher(
            decoder: EnvelopeDecoder(clock: fixedClock), handlers: [RevocationHandler(), RecipientHandler()])
        let deleted = #"{"type":"UserDeleted","user_id":"u1","occurred_at":"2024-01-01T00:00:00Z"}"#
        let at = try #require(RFC3339.parse("2024-01-01T00:00:00Z"))
        let user = try UserID("u1")
        #expect(
            outcome(inbound(deleted), both)
                == .accepted(event: "UserDeleted", effects: [.revokeUser(user, asOf: at), .deleteRecipient(user, asOf: at)]))
        let registered =
            #"{"type":"UserRegistered","user_id":"u1","username":"ada","email":"ada@example.com","locale":"pt-BR","occurred_at":"2024-01-01T00:00:00Z"}"#
        let profile = RecipientProfile(
            userID: user, email: try EmailAddress("ada@example.com"), username: try Username("ada"), locale: try LanguageTag("pt-BR"))
        #expect(outcome(inbound(registered), both) == .accepted(event: "UserRegistered", effects: [.upsertRecipient(profile, asOf: at)]))
        let changed =
            #"{"type":"EmailChanged","user_id":"u1","old_email":"ada@example.com","new_email":"ada@example.org","occurred_at":"2024-01-01T00:00:00Z"}"#
        #expect(
            outcome(inbound(changed), both)
                == .accepted(
                    event: "EmailChanged", effects: [.changeRecipientEmail(user, to: try EmailAddress("ada@example.org"), asOf: at)]))
    }

    @Test("mail events queue the mail the issue's table names, to the right address; disabled kinds queue nothing")
    func mailDecisions() throws {
        let dispatcher = EventDispatcher(decoder: EnvelopeDecoder(clock: fixedClock), handlers: [MailHandler(disabled: [.passwordChanged])])
        func kinds(_ body: String) -> [String] {
            guard case .accept(let e) = dispatcher.decide(inbound(body)) else { return ["rejected"] }
            return e.effects.compactMap { effect -> String? in
                guard case .queueMail(let m) = effect else { return nil }
                return "\(m.kind.rawValue)->\(m.to?.rawValue ?? "stored")"
            }
        }
        #expect(kinds(#"{"type":"UserCreated","user_id":"u","username":"ada"}"#) == ["welcome->stored"])
        #expect(kinds(#"{"type":"EmailVerificationRequested","user_id":"u","email":"a@x.org"}"#) == ["verify_email->a@x.org"])
        #expect(kinds(#"{"type":"PasswordResetRequested","user_id":"u"}"#) == ["password_reset->stored"])
        #expect(kinds(#"{"type":"PasswordChanged","user_id":"u","email":"a@x.org"}"#) == [])
        #expect(
            kinds(#"{"type":"EmailChangeRequested","user_id":"u","old_email":"a@x.org","new_email":"b@y.org"}"#)
                == ["email_change_confirm->b@y.org", "email_change_requested->a@x.org"])
        #expect(kinds(#"{"type":"EmailChanged","user_id":"u","old_email":"a@x.org","new_email":"b@y.org"}"#) == ["email_changed->a@x.org"])
    }

    @Test("an ignored type is accepted without effects, after validation when Herald knows it")
    func ignoredTypes() {
        let verify = #"{"type":"EmailVerificationRequested","user_id":"u1","email":"ada@example.com"}"#
        #expect(outcome(inbound(verify)) == .accepted(event: "EmailVerificationRequested", effects: []))
        #expect(
            outcome(inbound(#"{"type":"EmailVerificationRequested","user_id":"u1"}"#))
                == .rejected(.validationFailed, type: "EmailVerificationRequested"))
        #expect(
            outcome(inbound(#"{"type":"EmailVerificationRequested","user_id":"u1","email":"nope"}"#))
                == .rejected(.validationFailed, type: "EmailVerificationRequested"))

        let legacy = EventDispatcher(decoder: EnvelopeDecoder(clock: fixedClock), handlers: [], ignoredTypes: ["LegacyEvent"])
        #expect(outcome(inbound(#"{"type":"LegacyEvent","anything":[1,2]}"#), legacy) == .accepted(event: nil, effects: []))
    }

    struct HandledCase: Sendable, CustomTestStringConvertible {
        let body: String
        let effect: Effect
        var testDescription: String { body }
    }

    static let at = #","occurred_at":"2024-05-01T12:00:00Z"}"#

    static let handledCases: [HandledCase] = [
        HandledCase(
            body: #"{"type":"RolePermissionsChanged","role":"editor""# + at,
            effect: .invalidateRole(try! RoleName("editor"), asOf: mayFirstNoon)),
        HandledCase(
            body: #"{"type":"RoleSecurityLevelChanged","role":"admin""# + at,
            effect: .invalidateRole(try! RoleName("admin"), asOf: mayFirstNoon)),
        HandledCase(
            body: #"{"type":"RoleDeleted","role":"legacy reviewer""# + at,
            effect: .invalidateRole(try! RoleName("legacy reviewer"), asOf: mayFirstNoon)),
        HandledCase(body: #"{"type":"UserRolesChanged","user_id":"u1""# + at, effect: .revokeUser(try! UserID("u1"), asOf: mayFirstNoon)),
        HandledCase(
            body: #"{"type":"UserSessionsRevoked","user_id":42,"occurred_at":"2024-05-01T12:00:00Z"}"#,
            effect: .revokeUser(try! UserID("42"), asOf: mayFirstNoon)),
        HandledCase(body: #"{"type":"UserDeleted","user_id":"u9""# + at, effect: .revokeUser(try! UserID("u9"), asOf: mayFirstNoon)),
    ]

    @Test("revocation events become one effect, as of the event's time", arguments: handledCases)
    func handledTypes(_ c: HandledCase) throws {
        guard case .accept(let accepted) = dispatcher.decide(inbound(c.body, topic: "auth_service_topic", offset: 5)) else {
            Issue.record("rejected")
            return
        }
        #expect(accepted.effects == [c.effect])
        #expect(accepted.event != nil)
    }

    @Test("the dispatcher routes exactly the handler's types")
    func routing() {
        #expect(dispatcher.handledTypes == RevocationHandler().handledTypes)
        #expect(RevocationHandler().handledTypes.count == 6)
    }

    @Test("the revocation handler refuses events it does not handle")
    func handlerRefusesOthers() throws {
        let envelope = try EnvelopeDecoder(clock: fixedClock).decode(inbound(#"{"type":"PasswordChanged","user_id":"u1"}"#))
        let event = try #require(try EventCatalog.standard.decode(envelope))
        let metadata = envelope.metadata
        #expect(throws: Rejection.self) { try RevocationHandler().decide(event, metadata: metadata) }
        do throws(Rejection) {
            _ = try RevocationHandler().decide(event, metadata: metadata)
        } catch {
            #expect(error.errorClass == .handlerRejected)
        }
    }

    struct RefusingHandler: EventHandler {
        let handledTypes: Set<EventType>
        func decide(_ event: DomainEvent, metadata: EventMetadata) throws(Rejection) -> [Effect] {
            throw Rejection(.handlerRejected, "never")
        }
    }

    @Test("a handler's rejection reaches the decision; a handler without a schema is refused")
    func handlerRejections() {
        let refusing = EventDispatcher(
            decoder: EnvelopeDecoder(clock: fixedClock), handlers: [RefusingHandler(handledTypes: ["RoleDeleted", "Unschematic"])])
        #expect(outcome(inbound(#"{"type":"RoleDeleted","role":"r"}"#), refusing) == .rejected(.handlerRejected, type: "RoleDeleted"))
        #expect(outcome(inbound(#"{"type":"Unschematic"}"#), refusing) == .rejected(.unknownEventType, type: "Unschematic"))
    }

    // MARK: Collapsing effects

    static func accepted(_ effects: [Effect], offset: Int64 = 0) throws -> AcceptedEvent {
        let metadata = try EnvelopeDecoder(clock: fixedClock).decode(inbound(#"{"type":"T"}"#, offset: offset)).metadata
        return AcceptedEvent(metadata: metadata, event: nil, effects: effects)
    }

    static func seconds(_ s: Int64) -> EventTime { EventTime(millisecondsSinceEpoch: s * 1000) }

    @Test("marks collapse to the newest per subject, in order of first appearance")
    func marksCollapse() throws {
        let admin = try RoleName("admin"), editor = try RoleName("editor"), u1 = try UserID("u1")
        let events = [
            try Self.accepted([.invalidateRole(admin, asOf: Self.seconds(100)), .revokeUser(u1, asOf: Self.seconds(50))]),
            try Self.accepted([.invalidateRole(admin, asOf: Self.seconds(300))], offset: 1),
            try Self.accepted([], offset: 2),
            try Self.accepted([.invalidateRole(admin, asOf: Self.seconds(200)), .revokeUser(u1, asOf: Self.seconds(40))], offset: 3),
            try Self.accepted([.invalidateRole(editor, asOf: EventTime(millisecondsSinceEpoch: 10_999))], offset: 4),
        ]
        #expect(
            RevocationEffectApplier.marks(for: events) == [
                RevocationMark(subject: .role(admin), asOf: 300),
                RevocationMark(subject: .user(u1), asOf: 50),
                RevocationMark(subject: .role(editor), asOf: 10),
            ])
        #expect(RevocationEffectApplier.marks(for: []).isEmpty)
    }

    @Test("a role and a user with the same name are different subjects")
    func subjectsByKind() throws {
        let events = [
            try Self.accepted([
                .invalidateRole(try RoleName("x"), asOf: Self.seconds(1)), .revokeUser(try UserID("x"), asOf: Self.seconds(2)),
            ])
        ]
        #expect(RevocationEffectApplier.marks(for: events).count == 2)
    }

    @Test("the applier sends one collapsed call to the store, none when there is nothing to do")
    func applierCallsStore() async throws {
        let store = FakeRevocationStore()
        let applier = RevocationEffectApplier(store: store)
        let role = try RoleName("admin")
        try await applier.apply([
            try Self.accepted([.invalidateRole(role, asOf: Self.seconds(5))]),
            try Self.accepted([.invalidateRole(role, asOf: Self.seconds(7))], offset: 1),
        ])
        try await applier.apply([try Self.accepted([])])
        try await applier.apply([])
        #expect(store.calls.current == [[RevocationMark(subject: .role(role), asOf: 7)]])
    }
}
