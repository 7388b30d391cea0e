import HeraldCore

extension MailTemplates {
    /// The time every sample mail is about: 4 March 2025, 14:30 UTC.
    static let sampleTime = EventTime(millisecondsSinceEpoch: 1_741_098_600_000)

    /// Example variables for `kind`, as the courier would pass them: used to validate the
    /// templates at start-up and to preview them. The link's token is made up.
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
                "https://auth.example.com\(link.purpose.defaultPath)?token=q8Vb0iXkM2n7yR4tLw9ZcA1sHdE5fJ3uPgT6oK8rYxw",
                lifetime: link.lifetime, mintedAt: sampleTime)
        }
        return variables
    }
}
