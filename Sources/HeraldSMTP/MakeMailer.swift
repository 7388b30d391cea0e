import HeraldCore
import Logging

/// The transport `settings` describe: an `SMTPMailer` with `workers` sender threads, or a
/// `FileMailer`. `observer` hears of failed OAuth2 token requests.
public func makeMailer(
    _ settings: SMTPSettings, workers: Int, observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger
) -> any MailTransport {
    switch settings.transport {
    case .smtp:
        SMTPMailer(settings: settings, workers: workers, observer: observer, logger: logger)
    case .file(let directory):
        FileMailer(directory: directory, logger: logger)
    }
}
