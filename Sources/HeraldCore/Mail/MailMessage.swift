/// One email to one recipient, as the courier composed it and a `MailTransport` sends it: the
/// rendered subject and bodies, before the transport turns them into an RFC 5322 message.
public struct MailMessage: Sendable, Hashable {
    public var from: MailAddress
    public var to: MailAddress
    public var replyTo: MailAddress?
    public var subject: String
    public var textBody: String
    public var htmlBody: String
    /// The `Message-ID`, angle brackets included (`<uuid@herald.local>`). The caller keeps it
    /// stable per notification, so a receiver can recognise a resend after a crash. At most
    /// `maxMessageIDLength` bytes between the brackets, printable ASCII.
    public var messageID: String
    /// The longest Message-ID a transport accepts (between the angle brackets), in bytes.
    public static let maxMessageIDLength = 250
    public var date: EventTime
    /// More header fields, in order (`X-Herald-Kind: welcome`).
    public var headers: [MailHeader]

    public init(
        from: MailAddress, to: MailAddress, replyTo: MailAddress? = nil, subject: String, textBody: String,
        htmlBody: String, messageID: String, date: EventTime, headers: [MailHeader] = []
    ) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.textBody = textBody
        self.htmlBody = htmlBody
        self.messageID = messageID
        self.date = date
        self.headers = headers
    }
}

/// An extra header field. The name must be a valid field name and not one Herald writes
/// itself; the value is RFC 2047-encoded when it is not ASCII. Checked when rendering.
public struct MailHeader: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
