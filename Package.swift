// swift-tools-version:6.2
import PackageDescription

// Each C library is wrapped by a system-library target and imported by exactly one
// Swift adapter target. HeraldCore (events, value objects, handlers' decisions, ports)
// depends on no adapter and knows no HERALD_* variable: HeraldSettings reads them, and
// HeraldRuntime (the composition root) builds the running services from its settings.
let package = Package(
    name: "Herald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald", targets: ["Herald"]),
        // The benchmarks (`make bench`), outside the shipped binary.
        .executable(name: "herald-bench", targets: ["HeraldBench"]),
        // libFuzzer harnesses for every parser that sees outside input; `make fuzz` builds it
        // with -sanitize=fuzzer,address in .build-fuzz. Built plainly, it replays input files.
        .executable(name: "herald-fuzz", targets: ["HeraldFuzzer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // No traits: Hummingbird's two default traits (ConfigurationSupport, FullFoundation)
        // reach swiftc as -D flags in an order that changes whenever SwiftPM re-reads the
        // manifests (any change in the environment does), and each new order recompiles
        // Hummingbird (about 100 files). Herald uses neither.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // MARK: C libraries (Debian -dev packages)
        .systemLibrary(
            name: "CRdKafka", pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        // Debian's hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM refuses with a
        // warning on every build; the module map names the header path instead.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(
            name: "CLibpq", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        // curl_easy_setopt/curl_easy_getinfo are variadic, which Swift cannot call: typed
        // wrappers in C. Only HeraldSMTP imports it.
        .target(
            name: "CCurlShims",
            dependencies: ["CCurl"]),

        // MARK: Domain
        .target(
            name: "HeraldCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log")
            ]),

        // MARK: Adapters
        .target(
            name: "HeraldKafka",
            dependencies: [
                "CRdKafka", "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Dedicated threads for blocking C client calls, shared by the Redis, PostgreSQL and
        // SMTP adapters: the one thread-confinement mechanism.
        .target(name: "HeraldBlocking"),
        .target(
            name: "HeraldRedis",
            dependencies: [
                "CHiredis", "HeraldCore", "HeraldBlocking",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "HeraldPostgres",
            dependencies: [
                "CLibpq", "HeraldCore", "HeraldBlocking",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "HeraldSMTP",
            dependencies: [
                "CCurlShims", "HeraldCore", "HeraldBlocking",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Mail rendering: templates from Templates/ (swift-mustache), no I/O besides loading them.
        .target(
            name: "HeraldMail",
            dependencies: [
                "HeraldCore",
                .product(name: "Mustache", package: "swift-mustache"),
            ]),

        // The courier: claims queued notifications, mints one-time link tokens, renders and
        // sends. Talks to the queue, the token store and the mail transport through
        // HeraldCore's ports: it knows no adapter (HeraldSMTP implements the transport).
        .target(
            name: "HeraldCourier",
            dependencies: [
                "HeraldCore", "HeraldMail",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Operations: Prometheus metrics (swift-metrics + swift-prometheus) for the observer
        // ports HeraldCore declares, and the HTTP server for /metrics, /healthz, /readyz.
        .target(
            name: "HeraldOperations",
            dependencies: [
                "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),

        // MARK: Configuration
        // The HERALD_* environment variables (and their *_FILE forms) read and validated into
        // each component's own settings type: the only place that knows the variables.
        .target(
            name: "HeraldSettings",
            dependencies: [
                "HeraldCore", "HeraldKafka", "HeraldRedis", "HeraldPostgres", "HeraldSMTP", "HeraldCourier", "HeraldOperations",
            ]),

        // MARK: The daemon
        // The composition root: builds the running services from the settings (Daemon), the
        // Service wrappers, start-up and shutdown. Shared by `herald` and `herald-bench`.
        .target(
            name: "HeraldRuntime",
            dependencies: [
                "HeraldSettings", "HeraldCore", "HeraldKafka", "HeraldRedis", "HeraldPostgres", "HeraldMail", "HeraldSMTP",
                "HeraldCourier", "HeraldOperations",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "Herald",
            dependencies: [
                "HeraldRuntime", "HeraldSettings", "HeraldCore", "HeraldKafka", "HeraldPostgres", "HeraldMail", "HeraldSMTP",
                "HeraldCourier", "HeraldBlocking",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `herald templates serve` (TemplatesServer).
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        // `herald-bench`: the benchmarks, over the same wiring.
        .executableTarget(
            name: "HeraldBench",
            dependencies: [
                "HeraldRuntime", "HeraldSettings", "HeraldCore", "HeraldKafka", "HeraldPostgres", "HeraldRedis", "HeraldCourier",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // MARK: Fuzzing
        // The harnesses: bytes → Herald's parsers, with the invariants each must keep. A plain
        // library, so the unit tests replay the seed corpus through it.
        .target(
            name: "HeraldFuzzing",
            dependencies: ["HeraldCore", "HeraldMail", "HeraldSMTP", "HeraldCourier", "HeraldPostgres", "HeraldRedis", "HeraldSettings"]),
        // libFuzzer's driver entry point (LLVMFuzzerRunDriver), linked only by a fuzzer build
        // (-DHERALD_LIBFUZZER); only HeraldFuzzer imports it.
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "HeraldFuzzer",
            dependencies: ["HeraldFuzzing", "CFuzzerDriver"]),

        // MARK: Tests
        .testTarget(
            name: "HeraldCoreTests",
            dependencies: ["HeraldCore"]),
        .testTarget(
            name: "HeraldMailTests",
            dependencies: ["HeraldMail"]),
        // The settings: every variable's parsing and errors, and the README's table against
        // the variables the code reads. No servers.
        .testTarget(
            name: "HeraldSettingsTests",
            dependencies: ["HeraldSettings", "HeraldCore", "HeraldKafka", "HeraldRedis", "HeraldPostgres", "HeraldSMTP", "HeraldCourier"]),
        // The Kafka adapter's pure pieces (error classification, commit policy, pause rule): no broker.
        .testTarget(
            name: "HeraldKafkaTests",
            dependencies: ["HeraldKafka"]),
        // The SMTP adapter's pure pieces: `herald mail test`'s outcomes, exit codes and report,
        // reading servers' replies and certificates. No server.
        .testTarget(
            name: "HeraldSMTPTests",
            dependencies: ["HeraldSMTP", "HeraldCore"]),
        // The courier with in-memory fakes of its ports (queue, token store, transport): no
        // servers.
        .testTarget(
            name: "HeraldCourierTests",
            dependencies: [
                "HeraldCore", "HeraldMail", "HeraldCourier",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Replays the committed fuzzing corpus (Tests/Fuzz/Corpus) through the harnesses.
        .testTarget(
            name: "HeraldFuzzingTests",
            dependencies: ["HeraldFuzzing"]),
        .testTarget(
            name: "HeraldIntegrationTests",
            dependencies: [
                "HeraldCore", "HeraldKafka", "HeraldRedis", "HeraldPostgres", "HeraldSMTP", "HeraldMail", "HeraldCourier",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The SMTP test server (Support/SMTPServer.swift), the OAuth2 token endpoint
            // (Support/TokenServer.swift) and the Prometheus text parser (OperationsTests), run
            // with python3 from the source tree.
            exclude: [
                "Support/smtp_server.py", "Support/token_server.py", "Support/parse_metrics.py", "Support/redis_error_server.py",
            ]),
    ],
    swiftLanguageModes: [.v6]
)

// Our own targets build with warnings as errors (dependencies are not affected).
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.treatAllWarnings(as: .error)]
}
