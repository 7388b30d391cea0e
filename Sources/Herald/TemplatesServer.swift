import Foundation
import HeraldBlocking
import HeraldMail
import Hummingbird
import Logging
import NIOCore

/// The HTTP side of `herald templates serve`: `GET /` (every kind × locale) and
/// `GET /mail/LOCALE/KIND` (one mail), each page made by `TemplatePages` from a
/// `TemplateWorkbench` read afresh, so an edit shows on reload. A page whose mail fails to
/// render is still answered 200: the page shows the problems, and the page itself worked.
struct TemplatesServer {
    let host: String
    let port: Int
    let directory: String
    let defaultLocale: String
    let productName: String
    let supportEmail: String
    let logger: Logger

    /// The browser may load the mail's own styles and images into the sandboxed frame; it runs
    /// no script, submits no form and frames no page of this origin elsewhere.
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; font-src * data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

    /// The Hummingbird application; `onListening` gets the bound port once it accepts connections.
    func application(onListening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        // Reading and parsing the files is blocking file I/O: it runs on one dedicated thread
        // (`TemplateWorkbench.init`), one request at a time, never on the cooperative pool.
        let reader = BlockingThread<Void>(name: "herald-templates")
        let read: @Sendable () async throws -> TemplateWorkbench = { [directory, defaultLocale, productName, supportEmail] in
            try await reader.run(
                { _ throws(CancellationError) -> TemplateWorkbench in
                    TemplateWorkbench(
                        directory: directory, defaultLocale: defaultLocale, productName: productName, supportEmail: supportEmail)
                }, closed: { CancellationError() })
        }
        let router = Router()
        router.add(middleware: LoopbackHostMiddleware())
        router.get("/") { _, _ -> Response in
            Self.html(.ok, TemplatePages.index(try await read()))
        }
        router.get("/mail/:locale/:kind") { request, context -> Response in
            let locale = context.parameters.get("locale") ?? ""
            let workbench = try await read()
            guard let kind = MailKind(rawValue: context.parameters.get("kind") ?? ""),
                let sample = workbench.sample(kind, locale: locale)
            else {
                return Self.html(.notFound, TemplatePages.notFound(request.uri.path))
            }
            return Self.html(.ok, TemplatePages.mail(sample, in: workbench))
        }
        let logger = self.logger
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "herald-templates"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("serving the templates", metadata: ["directory": "\(directory)", "port": "\(port)"])
                await onListening(port)
            },
            logger: logger)
    }

    static func html(_ status: HTTPResponse.Status, _ page: String) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .contentSecurityPolicy: contentSecurityPolicy,
                .cacheControl: "no-store", .xContentTypeOptions: "nosniff",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }
}

/// Answers 421 to a request whose Host is not a loopback name: a web page the author visits
/// cannot read the preview through a DNS name rebound to 127.0.0.1.
struct LoopbackHostMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let authority = request.head.authority ?? ""
        guard TemplatesServeAddress.isLoopbackAuthority(authority) else {
            return Response(
                status: .misdirectedRequest, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(
                    byteBuffer: ByteBuffer(string: "herald templates serve answers only to 127.0.0.1, localhost and [::1]\n")))
        }
        return try await next(request, context)
    }
}

/// The addresses `herald templates serve` accepts: loopback only.
enum TemplatesServeAddress {
    /// Whether `host` (`--host`) is a loopback address: `127.x.y.z`, `::1` or `localhost`.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// The host to bind for `host`: `localhost` is 127.0.0.1.
    static func bindHost(_ host: String) -> String { host == "localhost" ? "127.0.0.1" : host }

    /// The URL printed for a bound host and port.
    static func url(host: String, port: Int) -> String {
        host.contains(":") ? "http://[\(host)]:\(port)/" : "http://\(host):\(port)/"
    }

    /// Whether a request's Host (`127.0.0.1:8025`, `localhost`, `[::1]:8025`) names this machine.
    static func isLoopbackAuthority(_ authority: String) -> Bool {
        var host = Substring(authority.lowercased())
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            host = host[host.index(after: host.startIndex)..<end]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        return isLoopback(String(host))
    }
}
