import HeraldCore

extension MailTemplates {
    /// The time every sample mail is about: 4 March 2025, 14:30 UTC.
    static let sampleTime = EventTime(millisecondsSinceEpoch: 1_741_098_600_000)

    /// The token of every sample link: obviously not a real one (a real token is 43 base64url
    /// characters), and no hash of it is ever stored, so a sample link grants nothing.
    public static let sampleLinkToken = "SAMPLE-not-a-real-token"

    /// Example variables for `kind`, as the courier would pass them: used to validate the
    /// templates at start-up, to preview them and to send a test mail (`herald mail test`). The
    /// link carries `sampleLinkToken`.
    public static func sample(
        _ kind: MailKind, productName: String = "Herald", supportEmail: String = "support@example.com"
    ) -> MailVariables {
        let oldEmail = "alex@example.com"
        let newEmail = "alex.rivera@example.org"
        var variables = MailVariables(
            recipientName: "alex",
            recipientEmail: kind == .emailChangeConfirm ? newEmail : oldEmail,
            productName: productName,
            supportEmail: supportEmail,
            requestedAt: sampleTime,
            oldEmail: kind.describesEmailChange ? oldEmail : nil,
            newEmail: kind.describesEmailChange ? newEmail : nil)
        if let link = kind.link {
            variables = variables.withLink(
                "https://auth.example.com\(link.purpose.defaultPath)?token=\(sampleLinkToken)",
                lifetime: link.lifetime, mintedAt: sampleTime)
        }
        return variables
    }
}
