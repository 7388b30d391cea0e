import Foundation
import HeraldCore
import HeraldCourier
import HeraldMail
import HeraldPostgres
import HeraldRedis
import HeraldSMTP
import Logging
import ServiceLifecycle

/// The mail configuration, validated and loaded before anything starts: a bad setting or a
/// missing or broken template stops Herald (exit 78) with a message naming it.
struct MailSetup: Sendable {
    let smtp: SMTPSettings
    let sender: SenderSettings
    let links: LinkSettings
    let templates: MailTemplates
    let courier: CourierSettings
    let workers: Int

    var composer: MailComposer { MailComposer(templates: templates, sender: sender, links: links) }

    static func load(_ config: HeraldConfiguration) -> MailSetup {
        do {
            return try make(config.mail)
        } catch {
            Environment.fail(error)
        }
    }

    static func make(_ mail: HeraldConfiguration.Mail) throws(ConfigurationError) -> MailSetup {
        let required = try mail.requireSending()
        let smtp: SMTPSettings
        do throws(ValidationError) {
            smtp = try SMTPSettings(
                url: required.smtpURL, username: mail.smtpUser, password: mail.smtpPassword?.value,
                allowPlaintext: mail.allowPlaintext, verifyCertificate: mail.verifyCertificate, caFile: mail.caFile,
                heloName: mail.heloName, connectTimeout: mail.connectTimeout, transferTimeout: mail.transferTimeout,
                reuseConnections: mail.reuseConnections)
        } catch {
            let setting = error.field == "SMTP HELO name" ? "HERALD_SMTP_HELO" : "HERALD_SMTP_URL"
            throw ConfigurationError(setting: setting, problem: error.reason)
        }
        let from: MailAddress
        do throws(ValidationError) {
            from = try MailAddress(parsing: required.from, field: "HERALD_MAIL_FROM")
        } catch {
            throw ConfigurationError(setting: "HERALD_MAIL_FROM", problem: error.reason)
        }
        var replyTo: MailAddress?
        if let text = mail.replyTo {
            do throws(ValidationError) {
                replyTo = try MailAddress(parsing: text, field: "HERALD_MAIL_REPLY_TO")
            } catch {
                throw ConfigurationError(setting: "HERALD_MAIL_REPLY_TO", problem: error.reason)
            }
        }
        let templates: MailTemplates
        do throws(TemplateError) {
            templates = try MailTemplates(directory: mail.templatesDirectory, defaultLocale: mail.defaultLocale)
        } catch {
            throw ConfigurationError(setting: "HERALD_TEMPLATES_DIR", problem: "\(error)")
        }
        var courier = CourierSettings()
        courier.batchSize = mail.batchSize
        courier.concurrency = mail.workers
        courier.maxAttempts = mail.maxAttempts
        courier.retry = Backoff(initial: mail.retryInitial, cap: mail.retryMax)
        courier.pollInterval = mail.pollInterval
        courier.claimTimeout = mail.claimTimeout
        courier.policy = mail.policy
        return MailSetup(
            smtp: smtp,
            sender: SenderSettings(from: from, replyTo: replyTo, productName: mail.productName, supportEmail: mail.supportEmail),
            links: LinkSettings(baseURL: required.linkBaseURL, paths: mail.linkPaths),
            templates: templates, courier: courier, workers: mail.workers)
    }

    /// The courier over `database`'s queue and `redis`'s token keys, sending with a new
    /// mailer.
    func makeCourier(
        database: PostgresClient, schema: String, redis: RedisClient, doorbell: Doorbell, observer: (any CourierObserver)? = nil,
        logger: Logger
    ) -> (Courier, any MailTransport) {
        let transport = makeMailer(smtp, workers: workers, logger: Logger(label: "herald.smtp"))
        let courier = Courier(
            queue: PostgresMailQueue(client: database, schema: schema), tokens: RedisLinkTokenStore(client: redis),
            transport: transport, composer: composer, settings: courier, doorbell: doorbell, observer: observer, logger: logger)
        return (courier, transport)
    }
}

/// Runs the courier, woken through `listener` by the NOTIFY of any instance's inbox (this
/// one's included) when it queued mail; a graceful shutdown starts no new send and lets the
/// sends in flight finish (at most HERALD_SMTP_WORKERS), then closes the listening
/// connection and the mailer's connections.
struct CourierService: Service {
    let courier: Courier
    let transport: any MailTransport
    let listener: PostgresListener?

    func run() async throws {
        listener?.start()
        await withGracefulShutdownHandler {
            await courier.run()
        } onGracefulShutdown: {
            courier.triggerShutdown()
        }
        await listener?.stop()
        await transport.close()
    }
}
