import Foundation
import HeraldCore

/// Example payloads of the contract's events, with a fresh event id and time, for
/// `herald publish --example`. The canonical examples are in Topics/asyncapi.yaml.
struct EventExample {
    let type: String
    let topic: EventCatalog.CatalogTopic
    let fields: [(String, String)]

    static let types = EventCatalog.standard.types.map(\.rawValue)

    init?(type: String) {
        guard let entry = EventCatalog.standard.entries[EventType(stringLiteral: type)] else { return nil }
        self.type = type
        self.topic = entry.topic
        let user = ("user_id", "7f8e2b9c-1d2a-4c3b-9e8f-0a1b2c3d4e5f")
        switch type {
        case "UserCreated": fields = [user, ("username", "ada"), ("email", "ada@example.com"), ("locale", "en")]
        case "UserDeleted", "UserRolesChanged", "UserSessionsRevoked", "PasswordResetRequested":
            fields = [user]
        case "UserRegistered":
            fields = [user, ("username", "ada"), ("email", "ada@example.com"), ("first_name", "Ada"), ("last_name", "Lovelace")]
        case "EmailVerificationRequested": fields = [user, ("email", "ada@example.com")]
        case "PasswordChanged": fields = [user, ("email", "ada@example.com")]
        case "EmailChangeRequested", "EmailChanged":
            fields = [user, ("old_email", "ada@example.com"), ("new_email", "ada@example.org")]
        default: fields = [("role", "editor")]
        }
    }

    /// The JSON payload with `event_type`, `event_id`, `occurred_at` and the overrides applied.
    func payload(overrides: [(String, String)]) throws -> [UInt8] {
        var object: [String: String] = [
            "event_type": type,
            "event_id": UUID().uuidString.lowercased(),
            "occurred_at": RFC3339.format(EventTime.now()),
        ]
        for (k, v) in fields { object[k] = v }
        for (k, v) in overrides { object[k] = v }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// The record key: the role or user the event is about, so one subject stays in order.
    func key(_ payload: [UInt8]) -> String {
        guard let object = try? JSONObject(parsing: payload) else { return type }
        return (try? object.string("role")) ?? (try? object.string("user_id")) ?? type
    }
}
