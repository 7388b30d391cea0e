import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Why a test harness could not start or run a program.
struct TestHarnessFailure: Error, CustomStringConvertible {
    let description: String
}

enum TestPorts {
    /// A port the kernel considers free right now (bind to port 0 and read it back).
    static func free() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw TestHarnessFailure(description: "socket failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
            }
        }
        guard bound else { throw TestHarnessFailure(description: "cannot bind a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func temporaryDirectory(_ kind: String) throws -> String {
        var template = Array("/tmp/herald-\(kind)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw TestHarnessFailure(description: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}

enum TestProcess {
    /// `posix_spawn_file_actions_addclosefrom_np`, when the C library has it.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(
            symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// posix_spawn with stdin from /dev/null, stdout appended to `stdout`, stderr to `stderr`
    /// (or to the same file), and `environment` added to this process's environment (or, with
    /// `inheritEnvironment` false, as the whole environment).
    ///
    /// The child inherits the spawning thread's signal mask and ignored signals (the test
    /// runner blocks and ignores some for its own handling): both are reset, or a server would
    /// not react to the signal that stops it, nor its own children to theirs.
    static func spawn(
        _ command: [String], stdout: String, stderr: String? = nil, environment: [String: String] = [:],
        inheritEnvironment: Bool = true
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else of the test process is inherited: among its descriptors are the sockets
        // through which Foundation.Process learns that a child exited, and a long-lived child
        // holding one (a server, a browser) keeps another test's `waitUntilExit` from
        // returning until it exits (swiftlang/swift-corelibs-foundation#4795): a blocked
        // thread of the cooperative pool, and on two cores a stalled test run.
        // (glibc ≥ 2.34; Swift's Glibc module does not export it, hence dlsym.)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        for signal in [SIGTERM, SIGINT, SIGQUIT, SIGPIPE, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD] { sigaddset(&signals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var variables = inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
        variables.merge(environment) { $1 }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw TestHarnessFailure(description: "cannot run \(command[0]): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Runs a program to completion (killed after `timeout`) and returns its exit status.
    static func run(_ arguments: [String], log: String, timeout: Duration = .seconds(180)) async throws -> Int32 {
        let pid = try spawn(arguments, stdout: log, stderr: log + ".err")
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                _ = waitpid(pid, nil, 0)
                throw TestHarnessFailure(description: "\(arguments[0]) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
