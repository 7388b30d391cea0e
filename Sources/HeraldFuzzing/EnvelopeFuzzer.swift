import Foundation
import HeraldCore

/// Kafka records → `EventDispatcher.decide` with the standard handlers (revocations,
/// recipients, mail), as `herald run` decides every record.
///
/// Input: the record's value, then optional fields after 0xFF bytes: a byte choosing the
/// topic (bit 0: the user topic, which has a default type), the record timestamp (up to 8
/// bytes, little-endian), the key, and the `ce_type`, `ce_id` and `event_type` header values
/// (an empty field: no such header).
///
/// Invariants: a decision, never a crash; an accepted record's type and id satisfy their
/// value objects' rules (or the id is the one derived from the record), its time is not
/// beyond the allowed skew, every value object in the event re-validates, every address
/// is a single plain mailbox (`Invariants.mailbox`), every effect carries the event's
/// time; a rejection says why. For any value that parses as a JSON object: serialising
/// its members again parses to the same members, and its string members decode as
/// Foundation's JSONSerialization decodes them.
struct EnvelopeFuzzer: Sendable {
    static let shared = EnvelopeFuzzer()

    /// 2030-01-01T00:00:00Z.
    static let now = EventTime(millisecondsSinceEpoch: 1_893_456_000_000)
    static let skew: Duration = .seconds(300)

    let dispatcher = EventDispatcher(
        decoder: EnvelopeDecoder(
            defaultTypeByTopic: ["user_service_topic": "UserCreated"], maxClockSkew: EnvelopeFuzzer.skew,
            clock: { EnvelopeFuzzer.now }),
        handlers: StandardHandlers.all, ignoredTypes: ["Ignored"])

    func run(_ input: [UInt8]) throws(FuzzFailure) -> String {
        let fields = FuzzFields(input)
        func field(_ index: Int) -> [UInt8]? { fields.bytes(index).flatMap { $0.isEmpty ? nil : $0 } }
        let topic = fields.byte(1) & 1 == 0 ? "auth_service_topic" : "user_service_topic"
        let timestamp = field(2).map { bytes in
            bytes.prefix(8).enumerated().reduce(Int64(0)) { $0 | Int64($1.element) << (8 * $1.offset) }
        }
        var headers: [MessageHeader] = []
        for (index, name) in [(4, "ce_type"), (5, "ce_id"), (6, "event_type")] {
            if let header = field(index) { headers.append(MessageHeader(key: name, value: header)) }
        }
        let message = InboundMessage(
            topic: topic, partition: 3, offset: 42, timestamp: timestamp, key: field(3), value: fields.bytes(0) ?? [],
            headers: headers)
        let value = message.value!

        let outcome: String
        switch dispatcher.decide(message) {
        case .accept(let accepted):
            try Self.checkMetadata(accepted.metadata, message)
            if let event = accepted.event { try Self.checkEvent(event) }
            for effect in accepted.effects { try Self.checkEffect(effect, accepted.metadata) }
            outcome = "accepted"
        case .reject(let rejection, let metadata):
            try check(!rejection.message.isEmpty, "a \(rejection.errorClass) rejection without a message")
            if let metadata { try Self.checkMetadata(metadata, message) }
            outcome = "rejected: \(rejection)"
        }
        try Self.checkJSON(value)
        return outcome
    }

    static func checkMetadata(_ metadata: EventMetadata, _ message: InboundMessage) throws(FuzzFailure) {
        try Invariants.identifier(metadata.type.rawValue, maxLength: EventType.maxLength, "event type")
        if metadata.id.rawValue != EventID(derivedFrom: message).rawValue {
            try Invariants.identifier(metadata.id.rawValue, maxLength: EventID.maxLength, "event id")
        }
        let limit = now.millisecondsSinceEpoch + 300_000
        try check(
            metadata.occurredAt.millisecondsSinceEpoch <= limit,
            "event time \(metadata.occurredAt.millisecondsSinceEpoch) is beyond the allowed skew")
        try check(
            metadata.topic == message.topic && metadata.partition == message.partition && metadata.offset == message.offset,
            "metadata names another record")
    }

    static func checkEvent(_ event: DomainEvent) throws(FuzzFailure) {
        switch event {
        case .userCreated(let e):
            try user(e.userID)
            try Invariants.identifier(e.username.rawValue, maxLength: Username.maxLength, "username")
            if let email = e.email { try Invariants.mailbox(email.rawValue, "email") }
            if let locale = e.locale { try languageTag(locale) }
        case .userDeleted(let e):
            try user(e.userID)
        case .userRegistered(let e):
            try user(e.userID)
            try Invariants.identifier(e.username.rawValue, maxLength: Username.maxLength, "username")
            try Invariants.mailbox(e.email.rawValue, "email")
            for name in [e.firstName, e.lastName].compactMap({ $0 }) {
                try check(name.utf8.count <= 200 && !Invariants.containsControl(name), "personal name \(Invariants.debug(name))")
            }
            if let locale = e.locale { try languageTag(locale) }
        case .emailVerificationRequested(let e):
            try user(e.userID)
            try Invariants.mailbox(e.email.rawValue, "email")
            if let locale = e.locale { try languageTag(locale) }
        case .passwordResetRequested(let e):
            try user(e.userID)
            if let email = e.email { try Invariants.mailbox(email.rawValue, "email") }
            if let locale = e.locale { try languageTag(locale) }
        case .passwordChanged(let e):
            try user(e.userID)
            if let email = e.email { try Invariants.mailbox(email.rawValue, "email") }
        case .emailChangeRequested(let e):
            try user(e.userID)
            try Invariants.mailbox(e.oldEmail.rawValue, "old_email")
            try Invariants.mailbox(e.newEmail.rawValue, "new_email")
        case .emailChanged(let e):
            try user(e.userID)
            try Invariants.mailbox(e.oldEmail.rawValue, "old_email")
            try Invariants.mailbox(e.newEmail.rawValue, "new_email")
        case .roleChanged(let e):
            try Invariants.identifier(e.role.rawValue, maxLength: RoleName.maxLength, "role")
        case .userAccessChanged(let e):
            try user(e.userID)
        }
    }

    static func checkEffect(_ effect: Effect, _ metadata: EventMetadata) throws(FuzzFailure) {
        let at = metadata.occurredAt
        switch effect {
        case .invalidateRole(let role, let asOf):
            try Invariants.identifier(role.rawValue, maxLength: RoleName.maxLength, "role")
            try check(asOf == at, "a role invalidation not at the event's time")
        case .revokeUser(let id, let asOf), .deleteRecipient(let id, let asOf):
            try user(id)
            try check(asOf == at, "a user effect not at the event's time")
        case .upsertRecipient(let profile, let asOf):
            try user(profile.userID)
            if let email = profile.email { try Invariants.mailbox(email.rawValue, "recipient email") }
            try check(asOf == at, "a recipient effect not at the event's time")
        case .changeRecipientEmail(let id, let email, let asOf):
            try user(id)
            try Invariants.mailbox(email.rawValue, "new recipient email")
            try check(asOf == at, "a recipient effect not at the event's time")
        case .queueMail(let request):
            try user(request.userID)
            if let to = request.to { try Invariants.mailbox(to.rawValue, "mail recipient") }
            for (name, value) in request.variables { try Invariants.mailbox(value, "mail variable \(name)") }
            try check(request.requestedAt == at, "mail requested at another time than the event's")
        }
    }

    static func user(_ id: UserID) throws(FuzzFailure) {
        try Invariants.identifier(id.rawValue, maxLength: UserID.maxLength, "user_id")
    }

    static func languageTag(_ tag: LanguageTag) throws(FuzzFailure) {
        let subtags = tag.rawValue.split(separator: "-", omittingEmptySubsequences: false)
        try check(
            tag.rawValue.utf8.count <= 35 && tag.rawValue.utf8.allSatisfy { $0 < 0x80 }
                && (2...8).contains(subtags[0].utf8.count)
                && subtags.allSatisfy { (1...8).contains($0.utf8.count) && $0.utf8.allSatisfy(isAlphanumeric) },
            "locale \(Invariants.debug(tag.rawValue)) is not a language tag")
    }

    static func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// Round trip through Herald's own parser, and string values against Foundation's.
    static func checkJSON(_ value: [UInt8]) throws(FuzzFailure) {
        guard let object = try? JSONObject(parsing: value) else { return }
        let keys = object.keys
        // A repeated key (also one only canonically equal to another): the last one wins, so
        // there is no round trip to check.
        guard Set(keys).count == keys.count else { return }
        var text = "{"
        for (index, key) in keys.enumerated() {
            if index > 0 { text += "," }
            text += jsonString(key) + ":" + (object.rawValue(key) ?? "null")
        }
        text += "}"
        let again: JSONObject
        do {
            again = try JSONObject(parsing: Array(text.utf8))
        } catch {
            throw FuzzFailure("re-serialised object does not parse: \(error) in \(Invariants.debug(text))")
        }
        try check(again.keys == keys, "re-serialised object has other keys")
        for key in keys {
            try check(again.kind(of: key) == object.kind(of: key), "member \(Invariants.debug(key)) changed kind")
            if object.kind(of: key) == .string {
                let before = try? object.string(key)
                try check(before != nil, "string member \(Invariants.debug(key)) does not decode")
                try check(before == (try? again.string(key)), "string member \(Invariants.debug(key)) changed value")
            }
        }
        // Foundation's decoding of the same document (Herald is stricter: it may refuse what
        // Foundation accepts, but what both accept must read the same).
        // Foundation drops U+FEFF (a byte order mark) from some strings, keys too, and not from
        // others; JSON keeps it. Compared without it, and only when keys stay distinct so.
        func withoutBOM(_ text: String) -> [UInt8] {
            Array(String(String.UnicodeScalarView(text.unicodeScalars.filter { $0 != "\u{FEFF}" })).utf8)
        }
        guard Set(keys.map(withoutBOM)).count == keys.count,
            let dictionary = try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any]
        else { return }
        for key in keys where object.kind(of: key) == .string {
            guard let theirs = dictionary[key] as? String else { continue }
            let ours = try? object.string(key)
            try check(
                ours.map(withoutBOM) == withoutBOM(theirs),
                "member \(Invariants.debug(key)): Herald reads \(Invariants.debug(ours ?? "nil")), Foundation \(Invariants.debug(theirs))")
        }
    }
}
