import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `herald templates serve` as a process over a copy of Templates/: its pages over HTTP,
/// an edit and a fault showing on the next request, loopback only; then in a real headless
/// Chromium (`chromium-headless-shell`, installed by `scripts/deps.sh test`): the DOM after
/// rendering and screenshots.
@Suite("herald templates serve", .timeLimit(.minutes(10)))
struct TemplatesServeTests {
    /// A running `herald templates serve --port 0` over its own copy of Templates/.
    final class Server {
        let directory: String
        let templates: String
        let pid: pid_t
        let stdout: String
        let stderr: String
        private(set) var url = ""
        private var exited: Int32?

        init(_ label: String) async throws {
            directory = try TestPorts.temporaryDirectory("templates-serve-\(label)")
            templates = directory + "/Templates"
            try FileManager.default.copyItem(atPath: HeraldBinary.templates, toPath: templates)
            stdout = directory + "/serve.out"
            stderr = directory + "/serve.err"
            pid = try TestProcess.spawn(
                [HeraldBinary.path, "templates", "serve", "--port", "0", "--dir", templates], stdout: stdout, stderr: stderr,
                environment: ["PATH": "/usr/bin:/bin", "HOME": directory], inheritEnvironment: false)
            // The URL is the first line of standard output, once the server listens.
            let deadline = ContinuousClock.now + .seconds(120)
            while true {
                let out = (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? ""
                if let newline = out.firstIndex(of: "\n") {
                    url = String(out[..<newline])
                    break
                }
                if let status = reap() {
                    throw TestHarnessFailure(description: "herald templates serve exited \(status): \(log)")
                }
                guard ContinuousClock.now < deadline else {
                    throw TestHarnessFailure(description: "herald templates serve printed no URL: \(log)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        deinit {
            if exited == nil {
                kill(pid, SIGKILL)
                _ = waitpid(pid, nil, 0)
            }
            try? FileManager.default.removeItem(atPath: directory)
        }

        var log: String {
            ((try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "") + ((try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "")
        }

        func write(_ relative: String, _ text: String) throws {
            try text.write(toFile: templates + "/" + relative, atomically: true, encoding: .utf8)
        }

        /// The exit status once it has exited.
        private func reap() -> Int32? {
            if let exited { return exited }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
            exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return exited
        }

        /// Sends `signal` and waits (bounded) for the exit status.
        func stop(_ signal: Int32) async throws -> Int32 {
            kill(pid, signal)
            let deadline = ContinuousClock.now + .seconds(60)
            while true {
                if let status = reap() { return status }
                guard ContinuousClock.now < deadline else {
                    throw TestHarnessFailure(description: "herald templates serve did not stop: \(log)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        struct Response {
            let status: Int
            let headers: [String: String]
            let body: String
        }

        /// GET `path` with curl: status, headers (names lowercased) and body. curl runs through
        /// `TestProcess.run` (posix_spawn, then polling): never a blocking wait on a thread of
        /// the cooperative pool, never Foundation.Process's exit socket (see `ChildProcess`).
        func get(_ path: String, host: String? = nil) async throws -> Response {
            var arguments = ["/usr/bin/curl", "-s", "-i", "-m", "60"]
            if let host { arguments += ["-H", "Host: \(host)"] }
            let log = "\(directory)/curl-\(UUID().uuidString).out"
            let exit = try await TestProcess.run(arguments + [url + path.dropFirst()], log: log, timeout: .seconds(90))
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard exit == 0 else { return Response(status: 0, headers: [:], body: output) }
            guard let split = output.range(of: "\r\n\r\n") else { return Response(status: 0, headers: [:], body: output) }
            let head = output[..<split.lowerBound].components(separatedBy: "\r\n")
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return Response(status: status, headers: headers, body: String(output[split.upperBound...]))
        }
    }

    static let kinds = [
        "welcome", "verify_email", "password_reset", "password_changed", "email_change_confirm", "email_change_requested",
        "email_changed",
    ]

    @Test(
        "over HTTP: the index lists every kind × locale, a mail's page shows its parts and sample data; an edit and a fault show on the next request; SIGTERM stops it"
    )
    func pages() async throws {
        let server = try await Server("http")
        #expect(server.url.range(of: #"^http://127\.0\.0\.1:[0-9]+/$"#, options: .regularExpression) != nil, "\(server.url)")

        let index = try await server.get("/")
        #expect(index.status == 200, "\(server.log)")
        #expect(index.headers["content-type"] == "text/html; charset=utf-8")
        #expect(index.headers["content-security-policy"]?.hasPrefix("default-src 'none'") == true)
        for kind in Self.kinds {
            for locale in ["en", "pt"] {
                #expect(index.body.contains("<a href=\"/mail/\(locale)/\(kind)\">"), "\(kind) \(locale)")
            }
        }
        #expect(index.body.contains("<a href=\"/mail/en/welcome\">Welcome to Herald</a>"), "\(index.body)")
        #expect(index.body.contains("herald templates check</code> passes"))

        var mail = try await server.get("/mail/en/password_reset")
        #expect(mail.status == 200)
        #expect(mail.body.contains("<strong id=\"subject\">Reset your Herald password</strong>"), "\(mail.body)")
        #expect(mail.body.contains("<pre id=\"text\">Hi alex,"))
        #expect(mail.body.contains("<iframe id=\"html\" title=\"HTML part\" sandbox srcdoc=\"&lt;!DOCTYPE html&gt;"))
        #expect(mail.body.contains("<tr><th scope=\"row\"><code>linkExpiresInWords</code></th><td>15 minutes</td></tr>"))

        // An edit shows on the next request, without a restart.
        try server.write("en/password_reset.subject.mustache", "Edited: reset your {{productName}} password now\n")
        mail = try await server.get("/mail/en/password_reset")
        #expect(mail.body.contains("<strong id=\"subject\">Edited: reset your Herald password now</strong>"), "\(mail.body)")
        #expect(try await server.get("/").body.contains(">Edited: reset your Herald password now</a>"))

        // A fault: the page says which file and line, with 200; the index marks that mail only.
        try server.write("en/welcome.html.mustache", "<p>Hi {{recipientName}}</p>\n<p>{{#oldEmail}}x{{/newEmail}}</p>\n")
        let file = server.templates + "/en/welcome.html.mustache"
        let broken = try await server.get("/mail/en/welcome")
        #expect(broken.status == 200)
        #expect(
            broken.body.contains("<code class=\"where\">\(file):2</code> <span class=\"reason\">parse error at line 2, column"),
            "\(broken.body)")
        #expect(broken.body.contains("<code>recipientName</code>"))
        let marked = try await server.get("/")
        #expect(
            marked.body.contains(
                "<td class=\"failed\"><a href=\"/mail/en/welcome\">✗ 1 problem</a><br><code class=\"where\">\(file):2</code>"))
        #expect(marked.body.contains("herald templates check</code> fails"))
        #expect(try await server.get("/mail/pt/welcome").body.contains("<iframe id=\"html\""))
        // An unknown variable points at its line too.
        try server.write("pt/password_changed.txt.mustache", "Olá {{{recipientName}}},\n\n{{{prodName}}}\n")
        #expect(
            try await server.get("/mail/pt/password_changed").body.contains(
                "<code class=\"where\">\(server.templates)/pt/password_changed.txt.mustache:3</code> <span class=\"reason\">unknown variable {{prodName}}"
            ))

        #expect(try await server.get("/mail/en/newsletter").status == 404)
        #expect(try await server.get("/mail/fr/welcome").status == 404)
        // Another name for this address (a rebound DNS name) gets nothing.
        #expect(try await server.get("/", host: "attacker.example:80").status == 421)
        #expect(try await server.get("/", host: "localhost").status == 200)

        #expect(try await server.stop(SIGTERM) == 0, "\(server.log)")
    }

    @Test("a host other than loopback is refused with exit 64 before anything listens")
    func loopbackOnly() async throws {
        let dir = try HeraldBinary.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for host in ["0.0.0.0", "192.168.1.10", "example.com", "::"] {
            let out = try await HeraldBinary.run(
                ["templates", "serve", "--port", "0", "--host", host, "--dir", HeraldBinary.templates], dir: dir,
                inheritEnvironment: false)
            #expect(out.status == 64, "\(host): \(out.stdout)\(out.stderr)")
            #expect(out.stderr.contains("not a loopback address"), "\(host): \(out.stderr)")
            #expect(out.stdout.isEmpty)
        }
    }

    // MARK: - In a browser

    /// The headless Chromium: on PATH or where Debian installs it.
    static func browser() throws -> String {
        let names = ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"]
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        let candidates =
            names.flatMap { name in path.map { "\($0)/\(name)" } }
            + ["/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestHarnessFailure(
                description:
                    "no headless Chromium found (looked for \(names.joined(separator: ", ")) on PATH and in /usr/lib/chromium): "
                    + "install it with `scripts/deps.sh test` (Debian package chromium-headless-shell)")
        }
        return found
    }

    /// Runs the browser on `url` with `arguments` and returns its standard output.
    static func browse(_ browser: String, _ arguments: [String], _ url: String, in directory: String) async throws -> String {
        let log = "\(directory)/browser-\(UUID().uuidString).out"
        let status = try await TestProcess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--user-data-dir=\(directory)/profile-\(UUID().uuidString)",
            ] + arguments + [url], log: log, timeout: .seconds(240))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: log + ".err", encoding: .utf8)) ?? ""
            throw TestHarnessFailure(description: "\(browser) \(arguments) \(url) exited \(status): \(errors.suffix(3000))")
        }
        return output
    }

    /// A PNG's width and height, from its IHDR chunk.
    static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data)
        guard bytes.count > 24, bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
            bytes[12..<16].elementsEqual("IHDR".utf8)
        else { return nil }
        let integer = { (at: Int) in bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (integer(16), integer(20))
    }

    @Test(
        "in headless Chromium: the rendered index and a mail show kinds, subject and the framed HTML; no template script runs; screenshots")
    func browser() async throws {
        let browser = try Self.browser()
        let server = try await Server("browser")
        // A script in a template must not run: the HTML part is in a frame without allow-scripts.
        let welcome = server.templates + "/en/welcome.html.mustache"
        try server.write(
            "en/welcome.html.mustache",
            try String(contentsOfFile: welcome, encoding: .utf8)
                + "<script>parent.document.body.setAttribute('data-pwned', 'yes'); document.body.setAttribute('data-ran', 'yes')</script>\n"
        )
        let shots = server.directory + "/screenshots"
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)

        let index = try await Self.browse(browser, ["--dump-dom"], server.url, in: server.directory)
        for kind in Self.kinds { #expect(index.contains(">\(kind)</th>"), "\(kind): \(index)") }
        #expect(index.contains("<th>en</th><th>pt</th>"))
        #expect(index.contains("<a href=\"/mail/en/welcome\">Welcome to Herald</a>"), "\(index)")

        let page = try await Self.browse(browser, ["--dump-dom"], server.url + "mail/en/welcome", in: server.directory)
        #expect(page.contains("<strong id=\"subject\">Welcome to Herald</strong>"), "\(page)")
        #expect(page.contains("<pre id=\"text\">Hi alex,"))
        #expect(page.contains("<iframe id=\"html\" title=\"HTML part\" sandbox=\"\" srcdoc=\""), "\(page)")
        // The HTML part's markup is the frame's srcdoc attribute, not part of the page (Chromium
        // serialises < in attributes as &lt; since version 138, as itself before).
        #expect(
            page.contains("&lt;h1 style=&quot;margin") || page.contains("<h1 style=&quot;margin"),
            "the HTML part's markup, as the srcdoc attribute: \(page)")
        #expect(page.contains("<body>"), "a template's script ran in the page (it set an attribute on the page's body)")
        #expect(!page.contains("data-pwned=\"yes\""), "a template's script ran in the page")

        for (name, url) in [("index", server.url), ("mail", server.url + "mail/en/welcome")] {
            let file = "\(shots)/\(name).png"
            _ = try await Self.browse(
                browser, ["--screenshot=\(file)", "--window-size=1280,900", "--hide-scrollbars"], url, in: server.directory)
            let data = try #require(FileManager.default.contents(atPath: file), "\(name): no screenshot")
            let size = try #require(Self.pngSize(data), "\(name): not a PNG")
            #expect(size.width == 1280 && size.height == 900, "\(name): \(size)")
            // A flat page of one colour compresses to a few kilobytes; text and tables do not.
            #expect(data.count > 20_000, "\(name): \(data.count) bytes, a blank page?")
        }
        let index1 = try Data(contentsOf: URL(fileURLWithPath: "\(shots)/index.png"))
        let mail1 = try Data(contentsOf: URL(fileURLWithPath: "\(shots)/mail.png"))
        #expect(index1 != mail1)
        #expect(try await server.stop(SIGINT) == 0, "\(server.log)")
    }
}
