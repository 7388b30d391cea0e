import HeraldCore
import HeraldSMTP
import HeraldSettings
import Testing

/// `HERALD_SMTP_AUTH` and the OAuth2 settings: what each combination builds, and every
/// mistake stopping start-up with the setting named (never a secret).
@Suite("SMTP authentication settings")
struct SMTPAuthSettingsTests {
    static let base = [
        "HERALD_SMTP_URL": "smtp://smtp.office365.com:587", "HERALD_MAIL_FROM": "Herald <no-reply@example.com>",
        "HERALD_LINK_BASE_URL": "https://auth.example.com",
    ]
    static let files = FakeFiles(files: ["/run/token": "eyJ0eXAi.token\n", "/run/empty": "\n", "/run/secret": "s3cret-file\n"])

    private func smtp(_ extra: [String: String]) throws -> SMTPSettings {
        let settings = try HeraldSettings.load(environment: Self.base.merging(extra) { $1 }, readFile: Self.files.read)
        return try #require(settings.mail.smtp)
    }

    /// The setting the error names, after checking the message holds no secret.
    private func failure(_ extra: [String: String]) -> String? {
        do throws(ConfigurationError) {
            _ = try HeraldSettings.load(environment: Self.base.merging(extra) { $1 }, readFile: Self.files.read)
            return nil
        } catch {
            #expect(!error.description.contains("s3cret") && !error.description.contains("eyJ0"), "\(error)")
            return error.setting
        }
    }

    @Test("the default is password with credentials, none without; both can be said explicitly")
    func defaults() throws {
        #expect(try smtp([:]).authentication == .anonymous)
        #expect(try smtp(["HERALD_SMTP_USER": "u", "HERALD_SMTP_PASSWORD": "s3cret"]).authentication == .password)
        #expect(try smtp(["HERALD_SMTP_URL": "smtp://u:s3cret@smtp.example.com"]).authentication == .password)
        #expect(
            try smtp(["HERALD_SMTP_AUTH": "password", "HERALD_SMTP_USER": "u", "HERALD_SMTP_PASSWORD": "s3cret"]).authentication
                == .password)
        #expect(try smtp(["HERALD_SMTP_AUTH": "none"]).authentication == .anonymous)
        #expect(try smtp(["HERALD_SMTP_AUTH": "none"]).authentication.method == "none")
    }

    @Test("xoauth2 with a token file: the user and the file")
    func tokenFile() throws {
        let s = try smtp([
            "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "mailer@example.com", "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/token",
        ])
        #expect(s.authentication == .xoauth2(.file(path: "/run/token")))
        #expect(s.username == "mailer@example.com" && s.password == nil)
        #expect("\(s.authentication)" == "xoauth2 (token file /run/token)")
    }

    @Test("xoauth2 with client credentials: the endpoint, the client, its secret (also from a file) and the scope")
    func clientCredentials() throws {
        let environment = [
            "HERALD_SMTP_AUTH": "XOAUTH2", "HERALD_SMTP_USER": "mailer@example.com",
            "HERALD_SMTP_OAUTH2_TOKEN_URL": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            "HERALD_SMTP_OAUTH2_CLIENT_ID": "herald", "HERALD_SMTP_OAUTH2_CLIENT_SECRET_FILE": "/run/secret",
            "HERALD_SMTP_OAUTH2_SCOPE": "https://outlook.office365.com/.default",
        ]
        let s = try smtp(environment)
        guard case .xoauth2(.clientCredentials(let client)) = s.authentication else {
            Issue.record("\(s.authentication)")
            return
        }
        #expect(client.tokenURL == "https://login.microsoftonline.com/t/oauth2/v2.0/token")
        #expect(client.clientID == "herald" && client.clientSecret.value == "s3cret-file")
        #expect(client.scope == "https://outlook.office365.com/.default")
        #expect(!"\(s.authentication)".contains("s3cret") && !"\(s)".contains("s3cret"))
        // Plain http only to this machine.
        var local = environment
        local["HERALD_SMTP_OAUTH2_TOKEN_URL"] = "http://127.0.0.1:8080/token"
        #expect(throws: Never.self) { try smtp(local) }
    }

    @Test(
        "every mistake stops start-up, naming the setting",
        arguments: [
            (["HERALD_SMTP_AUTH": "oauth"], "HERALD_SMTP_AUTH"),
            (["HERALD_SMTP_AUTH": "none", "HERALD_SMTP_USER": "u"], "HERALD_SMTP_AUTH"),
            (["HERALD_SMTP_AUTH": "password", "HERALD_SMTP_USER": "u"], "HERALD_SMTP_PASSWORD"),
            // xoauth2 without exactly one token source
            (["HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u"], "HERALD_SMTP_OAUTH2_TOKEN_FILE"),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/token",
                    "HERALD_SMTP_OAUTH2_TOKEN_URL": "https://kc.example.com/token",
                ], "HERALD_SMTP_OAUTH2_TOKEN_URL"
            ),
            // the token file missing, unreadable or empty at start-up
            (
                ["HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/missing"],
                "HERALD_SMTP_OAUTH2_TOKEN_FILE"
            ),
            (
                ["HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/empty"],
                "HERALD_SMTP_OAUTH2_TOKEN_FILE"
            ),
            // xoauth2 needs the user, and no password
            (["HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/token"], "HERALD_SMTP_USER"),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_PASSWORD": "s3cret",
                    "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/token",
                ], "HERALD_SMTP_PASSWORD"
            ),
            // client credentials incomplete or unsafe
            (
                ["HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_URL": "https://kc.example.com/token"],
                "HERALD_SMTP_OAUTH2_CLIENT_ID"
            ),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_URL": "https://kc.example.com/token",
                    "HERALD_SMTP_OAUTH2_CLIENT_ID": "herald",
                ], "HERALD_SMTP_OAUTH2_CLIENT_SECRET"
            ),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_URL": "https://kc.example.com/token",
                    "HERALD_SMTP_OAUTH2_CLIENT_ID": "herald", "HERALD_SMTP_OAUTH2_CLIENT_SECRET": "",
                ], "HERALD_SMTP_OAUTH2_CLIENT_SECRET"
            ),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_URL": "http://kc.example.com/token",
                    "HERALD_SMTP_OAUTH2_CLIENT_ID": "herald", "HERALD_SMTP_OAUTH2_CLIENT_SECRET": "s3cret",
                ], "HERALD_SMTP_OAUTH2_TOKEN_URL"
            ),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_URL": "https://kc.example.com/token",
                    "HERALD_SMTP_OAUTH2_CLIENT_ID": "herald", "HERALD_SMTP_OAUTH2_CLIENT_SECRET": "s3cret",
                    "HERALD_SMTP_OAUTH2_SCOPE": "",
                ], "HERALD_SMTP_OAUTH2_SCOPE"
            ),
            (
                [
                    "HERALD_SMTP_AUTH": "xoauth2", "HERALD_SMTP_USER": "u", "HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/token",
                    "HERALD_SMTP_OAUTH2_CLIENT_ID": "herald",
                ], "HERALD_SMTP_OAUTH2_CLIENT_ID"
            ),
            // an OAuth2 setting without xoauth2 is not ignored
            (["HERALD_SMTP_OAUTH2_TOKEN_FILE": "/run/token"], "HERALD_SMTP_OAUTH2_TOKEN_FILE"),
            (
                ["HERALD_SMTP_USER": "u", "HERALD_SMTP_PASSWORD": "s3cret", "HERALD_SMTP_OAUTH2_CLIENT_SECRET": "s3cret"],
                "HERALD_SMTP_OAUTH2_CLIENT_SECRET"
            ),
        ])
    func mistakes(_ extra: [String: String], _ setting: String) {
        #expect(failure(extra) == setting, "\(extra)")
    }
}
