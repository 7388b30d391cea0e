/// The event types Herald understands and how each payload becomes a `DomainEvent`.
/// Unknown fields are ignored; missing required fields, wrong JSON kinds and values that
/// fail a value object's rules are `Rejection`s of class `validationFailed`.
public struct EventCatalog: Sendable {
    public typealias Decode = @Sendable (JSONObject) throws -> DomainEvent

    public struct Entry: Sendable {
        public let type: EventType
        /// The catalogue's key for the topic: `user` or `auth`.
        public let topic: CatalogTopic
        public let decode: Decode
    }

    public enum CatalogTopic: String, Sendable, CaseIterable {
        case user, auth
    }

    public private(set) var entries: [EventType: Entry] = [:]

    public init(_ entries: [Entry]) {
        for e in entries { self.entries[e.type] = e }
    }

    public var types: [EventType] { entries.keys.sorted { $0.rawValue < $1.rawValue } }

    /// Decodes the body of an envelope whose type the catalogue knows; nil for other types.
    public func decode(_ envelope: Envelope) throws(Rejection) -> DomainEvent? {
        guard let entry = entries[envelope.metadata.type] else { return nil }
        do {
            return try entry.decode(envelope.body)
        } catch let error as ValidationError {
            throw Rejection(.validationFailed, error.description)
        } catch let error as JSONError {
            throw Rejection(.validationFailed, error.description)
        } catch {
            throw Rejection(.validationFailed, String(describing: error))
        }
    }

    public static let standard = EventCatalog([
        Entry(type: "UserCreated", topic: .user) { b in
            .userCreated(
                UserCreated(
                    userID: try UserID(try required(b, "user_id")),
                    username: try Username(try required(b, "username")),
                    email: try optionalEmail(b, "email"),
                    locale: try optionalLocale(b)))
        },
        Entry(type: "UserDeleted", topic: .user) { b in
            .userDeleted(UserDeleted(userID: try UserID(try required(b, "user_id"))))
        },
        Entry(type: "UserRegistered", topic: .auth) { b in
            .userRegistered(
                UserRegistered(
                    userID: try UserID(try required(b, "user_id")),
                    username: try Username(try required(b, "username")),
                    email: try EmailAddress(try requiredString(b, "email")),
                    firstName: try personalName(b, "first_name"),
                    lastName: try personalName(b, "last_name"),
                    locale: try optionalLocale(b)))
        },
        Entry(type: "EmailVerificationRequested", topic: .auth) { b in
            .emailVerificationRequested(
                EmailVerificationRequested(
                    userID: try UserID(try required(b, "user_id")),
                    email: try EmailAddress(try requiredString(b, "email")),
                    locale: try optionalLocale(b)))
        },
        Entry(type: "PasswordResetRequested", topic: .auth) { b in
            .passwordResetRequested(
                PasswordResetRequested(
                    userID: try UserID(try required(b, "user_id")),
                    email: try optionalEmail(b, "email"),
                    locale: try optionalLocale(b)))
        },
        Entry(type: "PasswordChanged", topic: .auth) { b in
            .passwordChanged(
                PasswordChanged(
                    userID: try UserID(try required(b, "user_id")),
                    email: try optionalEmail(b, "email")))
        },
        Entry(type: "EmailChangeRequested", topic: .auth) { b in
            .emailChangeRequested(
                EmailChangeRequested(
                    userID: try UserID(try required(b, "user_id")),
                    oldEmail: try EmailAddress(try requiredString(b, "old_email"), field: "old_email"),
                    newEmail: try EmailAddress(try requiredString(b, "new_email"), field: "new_email")))
        },
        Entry(type: "EmailChanged", topic: .auth) { b in
            .emailChanged(
                EmailChanged(
                    userID: try UserID(try required(b, "user_id")),
                    oldEmail: try EmailAddress(try requiredString(b, "old_email"), field: "old_email"),
                    newEmail: try EmailAddress(try requiredString(b, "new_email"), field: "new_email")))
        },
        roleEntry(.permissionsChanged),
        roleEntry(.securityLevelChanged),
        roleEntry(.deleted),
        userAccessEntry(.rolesChanged),
        userAccessEntry(.sessionsRevoked),
    ])

    static func roleEntry(_ change: RoleChanged.Change) -> Entry {
        Entry(type: EventType(stringLiteral: change.rawValue), topic: .auth) { b in
            .roleChanged(RoleChanged(change: change, role: try RoleName(try requiredString(b, "role"))))
        }
    }

    static func userAccessEntry(_ change: UserAccessChanged.Change) -> Entry {
        Entry(type: EventType(stringLiteral: change.rawValue), topic: .auth) { b in
            .userAccessChanged(UserAccessChanged(change: change, userID: try UserID(try required(b, "user_id"))))
        }
    }
}

/// A required identifier (string, or integer for producers that number their ids).
private func required(_ body: JSONObject, _ field: String) throws -> String {
    guard let value = try body.identifier(field) else {
        throw ValidationError(field: field, reason: "is required")
    }
    return value
}

private func requiredString(_ body: JSONObject, _ field: String) throws -> String {
    guard let value = try body.string(field) else {
        throw ValidationError(field: field, reason: "is required")
    }
    return value
}

private func optionalEmail(_ body: JSONObject, _ field: String) throws -> EmailAddress? {
    guard let value = try body.string(field), !value.isEmpty else { return nil }
    return try EmailAddress(value, field: field)
}

private func optionalLocale(_ body: JSONObject) throws -> LanguageTag? {
    guard let value = try body.string("locale"), !value.isEmpty else { return nil }
    return try LanguageTag(value)
}

private func personalName(_ body: JSONObject, _ field: String) throws -> String? {
    guard let value = try body.string(field) else { return nil }
    guard value.utf8.count <= 200 else { throw ValidationError(field: field, reason: "longer than 200 bytes") }
    guard !IdentifierRules.containsControlCharacter(value) else {
        throw ValidationError(field: field, reason: "contains a control character")
    }
    return value
}
