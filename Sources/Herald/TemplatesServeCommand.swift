import ArgumentParser
import Foundation
import HeraldRuntime
import Logging
import ServiceLifecycle

extension TemplatesCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a local page showing every template rendered with sample data, re-read on every request.",
            discussion: """
                Listens on 127.0.0.1 only and prints its URL as the first line of standard output. The index lists \
                every kind × locale folder found on disk; each mail's page shows its subject, text part and HTML part \
                (in a sandboxed frame) side by side with the sample data, or each template problem with its file and \
                line. Every request reads the files again: edit a template and reload. SIGINT or SIGTERM stops it.
                """)

        @Option(help: "The port (0: any free port).")
        var port = 8087

        @Option(help: "The address to listen on: a loopback address only (127.0.0.1, ::1, localhost).")
        var host = "127.0.0.1"

        @Option(
            name: [.customLong("dir"), .customLong("templates")],
            help: "The templates directory (default: HERALD_TEMPLATES_DIR, else Templates).")
        var dir: String?

        func validate() throws {
            guard TemplatesServeAddress.isLoopback(host) else {
                throw ValidationError(
                    "--host \(host) is not a loopback address: `herald templates serve` listens on 127.0.0.1 (or ::1) only, "
                        + "it is a tool for template authors and has no access control")
            }
            guard (0...65535).contains(port) else { throw ValidationError("--port \(port): not a port (0 to 65535, 0 for any free one)") }
        }

        func run() async throws {
            let settings = try Environment.settings()
            let mail = settings.mail
            HeraldLogging.bootstrap(format: settings.log.format, level: settings.log.level == "info" ? "warning" : settings.log.level)
            let logger = Logger(label: "herald.templates")
            let bindHost = TemplatesServeAddress.bindHost(host)
            let server = TemplatesServer(
                host: bindHost, port: port, directory: dir ?? mail.templatesDirectory, defaultLocale: mail.defaultLocale,
                productName: mail.productName, supportEmail: mail.supportEmail ?? "support@example.com", logger: logger)
            let app = server.application { port in
                // The first line of standard output, flushed at once: scripts and tests read it.
                FileHandle.standardOutput.write(Data((TemplatesServeAddress.url(host: bindHost, port: port) + "\n").utf8))
            }
            let group = ServiceGroup(
                configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }
}
