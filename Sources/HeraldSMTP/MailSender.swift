import HeraldCore

/// A HeraldSMTP transport: `send` reports HeraldSMTP's own `MailError`; `deliver`, the mail
/// port's entry, maps it to the courier's transport-neutral `MailDeliveryFailure`, once for
/// every transport.
public protocol MailSender: MailTransport {
    func send(_ message: MailMessage) async throws(MailError) -> MailReceipt
}

extension MailSender {
    public func deliver(_ message: MailMessage) async throws(MailDeliveryFailure) -> MailReceipt {
        do {
            return try await send(message)
        } catch {
            throw error.deliveryFailure
        }
    }
}
