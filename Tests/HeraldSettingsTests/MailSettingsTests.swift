import HeraldCore
import HeraldCourier
import HeraldSMTP
import HeraldSettings
import Testing

/// The mail settings build the transport's, the sender's, the links' and the courier's own
/// settings directly; what is missing is named when mail must be sent.
@Suite("Mail settings")
struct MailSettingsTests {
    static let sending = [
        "HERALD_SMTP_URL": "smtps://mailer:s3cret@smtp.example.com", "HERALD_MAIL_FROM": "Herald <no-reply@example.com>",
        "HERALD_LINK_BASE_URL": "https://auth.example.com/",
    ]

    @Test("each component's settings, from the variables")
    func components() throws {
        let m = try HeraldSettings.load(
            environment: Self.sending.merging([
                "HERALD_SMTP_WORKERS": "6", "HERALD_SMTP_TIMEOUT": "30s", "HERALD_MAIL_BATCH": "64", "HERALD_MAIL_MAX_ATTEMPTS": "3",
                "HERALD_MAIL_RETRY_INITIAL": "10s", "HERALD_MAIL_RETRY_MAX": "5m", "HERALD_MAIL_CLAIM_TIMEOUT": "2m",
                "HERALD_MAIL_RATE_LIMITS": "none", "HERALD_PRODUCT_NAME": "Acme", "HERALD_LINK_PATH_VERIFY_EMAIL": "/v",
            ]) { $1 }
        ).mail
        let (smtp, sender, links) = try m.requireSending()
        #expect(smtp.transport == .smtp(url: "smtps://smtp.example.com:465", security: .implicitTLS))
        #expect(smtp.username == "mailer" && smtp.password == "s3cret" && smtp.transferTimeout == .seconds(30))
        #expect(!"\(smtp)".contains("s3cret"))
        #expect(sender.from.address.rawValue == "no-reply@example.com" && sender.productName == "Acme")
        #expect(sender.supportEmail == "no-reply@example.com")
        #expect(links.baseURL == "https://auth.example.com" && links.paths[.verifyEmail] == "/v")
        #expect(m.workers == 6 && m.courier.concurrency == 6)
        #expect(m.courier.batchSize == 64 && m.courier.maxAttempts == 3 && m.courier.claimTimeout == .seconds(120))
        #expect(m.courier.retry == Backoff(initial: .seconds(10), cap: .seconds(300)))
        #expect(m.policy.rateLimits.isEmpty && m.courier.policy == m.policy)
    }

    @Test("sending names the first missing setting")
    func requireSending() throws {
        func missing(_ without: String) throws -> String? {
            var environment = Self.sending
            environment[without] = nil
            do throws(ConfigurationError) {
                _ = try HeraldSettings.load(environment: environment).mail.requireSending()
                return nil
            } catch {
                return error.setting
            }
        }
        for name in Self.sending.keys { #expect(try missing(name) == name) }
        #expect(try missing("nothing") == nil)
    }

    @Test(
        "bad mail values name their setting",
        arguments: [
            ("HERALD_SMTP_URL", "ftp://smtp.example.com"), ("HERALD_SMTP_URL", ""), ("HERALD_SMTP_HELO", "two words"),
            ("HERALD_MAIL_FROM", "not an address"), ("HERALD_MAIL_REPLY_TO", "<>"), ("HERALD_SMTP_WORKERS", "0"),
            ("HERALD_MAIL_RETRY_MAX", "1s"), ("HERALD_MAIL_CLAIM_TIMEOUT", "30s"), ("HERALD_MAIL_DISABLED", "spam"),
            ("HERALD_LINK_PATH_RESET_PASSWORD", "no-slash"), ("HERALD_MAIL_DEFAULT_LOCALE", "!!"),
        ])
    func badValues(_ name: String, _ value: String) {
        var environment = ["HERALD_SMTP_HELO": "herald.example.com"].merging(Self.sending) { $1 }
        environment[name] = value
        do throws(ConfigurationError) {
            _ = try HeraldSettings.load(environment: environment)
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.setting == name, "\(error)")
            #expect(!error.description.contains("s3cret"))
        }
    }
}
