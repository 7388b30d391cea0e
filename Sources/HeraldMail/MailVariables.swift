import HeraldCore

/// What a mail's templates are rendered with. The mail queue stores it as JSON (times as
/// RFC 3339 strings, the link's lifetime in whole seconds), without the link.
///
/// Templates see these names: `recipientName`, `recipientEmail`, `productName`,
/// `supportEmail`, `requestedAt` and `requestedAtHuman`, `link`, `linkExpiresInWords`,
/// `linkExpiresAt` and `linkExpiresAtHuman`, `oldEmail`, `newEmail`, `locale`; the layout
/// also `subject` and `content`. The `…InWords` and `…Human` forms are written in the
/// language of the templates used; times are shown in UTC.
public struct MailVariables: Sendable, Hashable {
    /// How the mail greets the recipient: the username, else the address's local part.
    public var recipientName: String
    /// The address the mail is sent to.
    public var recipientEmail: String
    /// The product's name as users know it.
    public var productName: String
    /// Where users write for help.
    public var supportEmail: String
    /// When the action the mail is about happened (the event's time).
    public var requestedAt: EventTime
    /// The one-time link (http or https), for the kinds that have one. It carries a raw
    /// token: add it at send time (`withLink`), never store variables that hold it.
    public var link: String?
    /// How long the link stays valid; shown in words ("15 minutes", "24 hours").
    public var linkLifetime: Duration?
    /// When the link stops working.
    public var linkExpiresAt: EventTime?
    /// For the email-change kinds: the address being replaced.
    public var oldEmail: String?
    /// For the email-change kinds: the address replacing it.
    public var newEmail: String?

    public init(
        recipientName: String,
        recipientEmail: String,
        productName: String,
        supportEmail: String,
        requestedAt: EventTime,
        link: String? = nil,
        linkLifetime: Duration? = nil,
        linkExpiresAt: EventTime? = nil,
        oldEmail: String? = nil,
        newEmail: String? = nil
    ) {
        self.recipientName = recipientName
        self.recipientEmail = recipientEmail
        self.productName = productName
        self.supportEmail = supportEmail
        self.requestedAt = requestedAt
        self.link = link
        self.linkLifetime = linkLifetime
        self.linkExpiresAt = linkExpiresAt
        self.oldEmail = oldEmail
        self.newEmail = newEmail
    }

    /// Variables from validated value objects; the recipient is greeted by username when
    /// there is one, else by the local part of the address.
    public init(
        recipient: EmailAddress,
        username: Username?,
        productName: String,
        supportEmail: EmailAddress,
        requestedAt: EventTime,
        oldEmail: EmailAddress? = nil,
        newEmail: EmailAddress? = nil
    ) {
        self.init(
            recipientName: Self.recipientName(username: username, email: recipient),
            recipientEmail: recipient.rawValue,
            productName: productName,
            supportEmail: supportEmail.rawValue,
            requestedAt: requestedAt,
            oldEmail: oldEmail?.rawValue,
            newEmail: newEmail?.rawValue)
    }

    /// The username, else the address's local part (`ana` for `ana@example.com`).
    public static func recipientName(username: Username?, email: EmailAddress) -> String {
        if let username { return username.rawValue }
        // Scalars, not Characters: "@" can be part of a Character (see EmailAddress).
        return String(String.UnicodeScalarView(email.rawValue.unicodeScalars.prefix { $0 != "@" }))
    }

    /// These variables with a one-time link minted at `mintedAt` and valid for `lifetime`.
    public func withLink(_ link: String, lifetime: Duration, mintedAt: EventTime) -> MailVariables {
        var copy = self
        copy.link = link
        copy.linkLifetime = lifetime
        copy.linkExpiresAt = EventTime(millisecondsSinceEpoch: mintedAt.millisecondsSinceEpoch + lifetime.wholeMilliseconds)
        return copy
    }
}

extension MailVariables: Codable {
    private enum CodingKeys: String, CodingKey {
        case recipientName, recipientEmail, productName, supportEmail, requestedAt
        case link, linkLifetimeSeconds, linkExpiresAt, oldEmail, newEmail
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func time(_ key: CodingKeys) throws -> EventTime? {
            guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let time = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not an RFC 3339 timestamp")
            }
            return time
        }
        guard let requestedAt = try time(.requestedAt) else {
            throw DecodingError.keyNotFound(
                CodingKeys.requestedAt, .init(codingPath: c.codingPath, debugDescription: "requestedAt is required"))
        }
        self.init(
            recipientName: try c.decode(String.self, forKey: .recipientName),
            recipientEmail: try c.decode(String.self, forKey: .recipientEmail),
            productName: try c.decode(String.self, forKey: .productName),
            supportEmail: try c.decode(String.self, forKey: .supportEmail),
            requestedAt: requestedAt,
            link: try c.decodeIfPresent(String.self, forKey: .link),
            linkLifetime: try c.decodeIfPresent(Int64.self, forKey: .linkLifetimeSeconds).map { .seconds($0) },
            linkExpiresAt: try time(.linkExpiresAt),
            oldEmail: try c.decodeIfPresent(String.self, forKey: .oldEmail),
            newEmail: try c.decodeIfPresent(String.self, forKey: .newEmail))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(recipientName, forKey: .recipientName)
        try c.encode(recipientEmail, forKey: .recipientEmail)
        try c.encode(productName, forKey: .productName)
        try c.encode(supportEmail, forKey: .supportEmail)
        try c.encode(RFC3339.format(requestedAt), forKey: .requestedAt)
        try c.encodeIfPresent(link, forKey: .link)
        try c.encodeIfPresent(linkLifetime.map { Int64($0.seconds) }, forKey: .linkLifetimeSeconds)
        try c.encodeIfPresent(linkExpiresAt.map(RFC3339.format), forKey: .linkExpiresAt)
        try c.encodeIfPresent(oldEmail, forKey: .oldEmail)
        try c.encodeIfPresent(newEmail, forKey: .newEmail)
    }
}
