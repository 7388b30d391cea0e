import ArgumentParser
import HeraldRuntime
import HeraldSettings

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: consume events and apply their effects until SIGTERM or SIGINT.",
        discussion: """
            Joins consumer group HERALD_KAFKA_GROUP on the user and auth topics, applies role \
            invalidations and user revocations to Redis (HERALD_REDIS_URL), keeps recipients and \
            queues transactional mail in PostgreSQL (HERALD_DATABASE_URL), sends that mail \
            (HERALD_SMTP_URL), and sends records that can never be processed to <topic>.dlq. HERALD_KAFKA_BROKERS is \
            required; HERALD_KAFKA_BROKERS=embedded starts an in-memory development broker (librdkafka's mock \
            cluster) and writes its address to HERALD_EMBEDDED_BOOTSTRAP_FILE (default var/kafka-bootstrap; removed \
            at exit). A signal during start-up (waiting for PostgreSQL, migrating) stops it there, exit 0. \
            On SIGTERM/SIGINT it stops fetching, lets in-flight work finish (up to \
            HERALD_SHUTDOWN_TIMEOUT), commits offsets, leaves the group, flushes and exits 0.
            """)

    func run() async throws {
        // First of all: from here on SIGTERM and SIGINT stop Herald cleanly, also while it starts.
        let stop = await StopSignals.install()
        let settings = try Environment.settings()
        HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level, maskEmails: settings.operations.maskEmails)
        try await Daemon.run(settings, stop: stop)
    }
}
