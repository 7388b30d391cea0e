import HeraldCore
import HeraldMail

/// Where one-time links point: `{baseURL}{path}?token=…` (docs/integration.md's link formats).
public struct LinkSettings: Sendable, Hashable {
    /// `HERALD_LINK_BASE_URL`, without a trailing slash.
    public var baseURL: String
    public var paths: [LinkPurpose: String]

    /// - Parameter paths: configured paths; the others are `LinkPurpose.defaultPath`.
    public init(baseURL: String, paths: [LinkPurpose: String] = [:]) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.paths = paths
    }

    /// The link carrying `token` for `purpose`. The token is base64url, so it needs no
    /// percent-encoding.
    public func link(_ purpose: LinkPurpose, token: LinkToken) -> String {
        var path = paths[purpose] ?? purpose.defaultPath
        if !path.hasPrefix("/") { path = "/" + path }
        let separator = path.contains("?") ? "&" : "?"
        return baseURL + path + separator + "token=" + token.secret
    }
}

/// Who the mail is from and what it says about the product.
public struct SenderSettings: Sendable, Hashable {
    /// `HERALD_MAIL_FROM`.
    public var from: MailAddress
    /// `HERALD_MAIL_REPLY_TO`.
    public var replyTo: MailAddress?
    /// `HERALD_PRODUCT_NAME`.
    public var productName: String
    /// `HERALD_SUPPORT_EMAIL` (default: the From address).
    public var supportEmail: String

    public init(from: MailAddress, replyTo: MailAddress? = nil, productName: String, supportEmail: String? = nil) {
        self.from = from
        self.replyTo = replyTo
        self.productName = productName
        self.supportEmail = supportEmail ?? from.address.rawValue
    }

    /// The domain of the From address: the right-hand side of every Message-ID. A Message-ID
    /// is ASCII (transports refuse any other), so an internationalised domain
    /// (`noreply@exämple.com`, which `EmailAddress` accepts) gives `herald.local` instead:
    /// with it every mail would fail.
    public var messageIDDomain: String {
        // Scalars, not Characters: "@" can be part of a Character (see EmailAddress).
        let address = from.address.rawValue.unicodeScalars
        guard let at = address.lastIndex(of: "@") else { return "herald.local" }
        let domain = String(String.UnicodeScalarView(address[address.index(after: at)...]))
        return domain.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) ? domain : "herald.local"
    }
}

/// Turns a claimed notification (plus, for link kinds, a fresh token) into the message to
/// send. Pure: the courier does the I/O.
public struct MailComposer: Sendable {
    public let templates: MailTemplates
    public let sender: SenderSettings
    public let links: LinkSettings

    public init(templates: MailTemplates, sender: SenderSettings, links: LinkSettings) {
        self.templates = templates
        self.sender = sender
        self.links = links
    }

    /// `<{notification id}@{From domain}>`: the same for every attempt of one notification, so
    /// a receiver recognises a resend after a crash between the server's accept and the
    /// queue's update.
    ///
    /// A From domain so long that the id would pass `MailMessage.maxMessageIDLength` (a
    /// domain may have 253 characters) gives `herald.local` instead: every mail would fail.
    public func messageID(for notification: ClaimedNotification) -> String {
        messageID(local: notification.id)
    }

    /// `<{local}@{From domain}>`, or `<{local}@herald.local>` when that would be too long.
    public func messageID(local: String) -> String {
        let id = "\(local)@\(sender.messageIDDomain)"
        return "<\(id.utf8.count <= MailMessage.maxMessageIDLength ? id : "\(local)@herald.local")>"
    }

    /// What the link of `notification`, sent to `recipient`, grants; nil for kinds without one.
    public func grant(for notification: ClaimedNotification, to recipient: EmailAddress) -> LinkGrant? {
        guard let link = notification.kind.link else { return nil }
        switch link.purpose {
        case .verifyEmail:
            return .verifyEmail(notification.userID)
        case .resetPassword:
            return .resetPassword(notification.userID)
        case .confirmEmailChange:
            // The new address is where the confirmation goes; `new_email` was queued with it.
            let newEmail = (notification.variables["new_email"]).flatMap { try? EmailAddress($0) } ?? recipient
            return .confirmEmailChange(notification.userID, newEmail: newEmail)
        }
    }

    /// The message for `notification` to `recipient` (greeted by the username stored at the
    /// claim), with `token`'s link when the kind has one.
    public func compose(_ notification: ClaimedNotification, to recipient: EmailAddress, token: LinkToken?, now: EventTime)
        throws(TemplateError) -> MailMessage
    {
        let username = notification.storedRecipient?.username
        var variables = MailVariables(
            recipientName: MailVariables.recipientName(username: username, email: recipient),
            recipientEmail: recipient.rawValue,
            productName: sender.productName,
            supportEmail: sender.supportEmail,
            requestedAt: notification.requestedAt,
            oldEmail: notification.variables["old_email"],
            newEmail: notification.variables["new_email"])
        if let link = notification.kind.link, let token {
            variables = variables.withLink(links.link(link.purpose, token: token), lifetime: link.lifetime, mintedAt: now)
        }
        let rendered = try templates.render(notification.kind, locale: notification.locale, variables: variables)
        return message(
            rendered, kind: notification.kind, to: MailAddress(recipient, displayName: username?.rawValue),
            messageID: messageID(for: notification), date: now)
    }

    /// `kind` rendered with `MailTemplates.sample`'s data (what `herald templates preview`
    /// shows), as `herald mail test` sends it: to `recipient`, else to the sample's own address
    /// and name. A link kind's link points at `links` but carries
    /// `MailTemplates.sampleLinkToken`, which is no token: nothing is minted or stored, and the
    /// link grants nothing. Returns the message, the locale whose templates were used and the
    /// sample link.
    public func composeSample(
        _ kind: NotificationKind, to recipient: EmailAddress? = nil, locale: LanguageTag?, messageID: String, date: EventTime
    ) throws(TemplateError) -> (message: MailMessage, locale: LanguageTag, link: String?) {
        var variables = MailTemplates.sample(kind, productName: sender.productName, supportEmail: sender.supportEmail)
        let to: MailAddress
        if let recipient {
            variables.recipientEmail = recipient.rawValue
            to = MailAddress(recipient)
        } else {
            // The sample's own address, a constant.
            to = MailAddress(try! EmailAddress(variables.recipientEmail), displayName: variables.recipientName)
        }
        if let link = kind.link {
            variables.link = links.link(link.purpose, token: LinkToken(secret: MailTemplates.sampleLinkToken))
        }
        let rendered = try templates.render(kind, locale: locale, variables: variables)
        return (message(rendered, kind: kind, to: to, messageID: messageID, date: date), rendered.locale, variables.link)
    }

    /// The message carrying `rendered`, with Herald's headers.
    private func message(_ rendered: RenderedMail, kind: NotificationKind, to: MailAddress, messageID: String, date: EventTime)
        -> MailMessage
    {
        MailMessage(
            from: sender.from,
            to: to,
            replyTo: sender.replyTo,
            subject: rendered.subject,
            textBody: rendered.text,
            htmlBody: rendered.html,
            messageID: messageID,
            date: date,
            headers: [
                // RFC 3834: an automatic message; well-behaved autoresponders stay quiet.
                MailHeader("Auto-Submitted", "auto-generated"),
                MailHeader("Content-Language", rendered.locale.rawValue),
                MailHeader("X-Herald-Kind", kind.rawValue),
            ])
    }
}
