import ArgumentParser
import Foundation
import HeraldCore
import HeraldRuntime
import HeraldSettings

/// `herald run` with the same wiring (`Daemon`), stopped after a number of events, printing
/// one JSON line with the drain rate and peak RSS; the effects optionally discarded, or
/// applied to Redis only (without the inbox).
struct BenchRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Drain events as `herald run` does, stop after --stop-after of them, print the rate.")

    @Option(help: "Stop once this many events reached their final outcome.")
    var stopAfter: Int

    @Flag(help: "Apply nothing: consumption, decoding and dispatch only.")
    var discardEffects = false

    @Flag(help: "Redis effects only, no PostgreSQL inbox.")
    var withoutInbox = false

    func validate() throws {
        guard stopAfter >= 1 else { throw ValidationError("--stop-after must be at least 1") }
        guard !(discardEffects && withoutInbox) else { throw ValidationError("--discard-effects or --without-inbox, not both") }
    }

    func run() async throws {
        let stop = await StopSignals.install()
        let settings = try HeraldSettings.load(environment: ProcessInfo.processInfo.environment)
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level, maskEmails: settings.operations.maskEmails)
        let benchmark = BenchmarkObserver(target: stopAfter)
        var hooks = Daemon.Hooks()
        hooks.processingObserver = { _ in benchmark }
        hooks.consumerBuilt = { consumer in
            benchmark.countMemoryPauses { consumer.memoryPauseCount }
            benchmark.onDone { consumer.triggerShutdown() }
        }
        if discardEffects {
            hooks.applier = { _ in DiscardingApplier() }
        } else if withoutInbox {
            hooks.applier = { $0.revocations }
        }
        try await Daemon.run(settings, stop: stop, hooks: hooks)
    }
}
