/// Runs `body` at once and then every `interval` until the task is cancelled. The loops of
/// the housekeeping jobs (inbox pruning, outbox retention, mail queue sampling); a graceful
/// shutdown reaches them as cancellation (the composition root's Service wrappers).
func repeating(every interval: Duration, _ body: () async -> Void) async {
    while !Task.isCancelled {
        await body()
        do {
            try await Task.sleep(for: interval)
        } catch {
            return
        }
    }
}
