import Logging
import Testing

@testable import HeraldKafka

#if canImport(Glibc)
    import Glibc
#endif

/// The embedded broker's connections behave like a real broker's: Nagle's algorithm off.
@Suite("Embedded broker sockets", .timeLimit(.minutes(2)))
struct EmbeddedBrokerTests {
    @Test("a connection the embedded broker accepts has TCP_NODELAY set, as a real broker's does")
    func acceptedConnectionsDisableNagle() async throws {
        let broker = try EmbeddedBroker(brokers: 1, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let port = try #require(broker.bootstrapServers.split(separator: ":").last.flatMap { UInt16($0) })

        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(client >= 0)
        defer { close(client) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        var clientAddress = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &clientAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &length) }
        }

        // The broker's side of this connection: the socket in this process whose local port is
        // the broker's and whose peer is the client. The mock accepts on its own thread: poll.
        var serverSide: Int32?
        while serverSide == nil {
            serverSide = Self.acceptedSocket(localPort: port, peerPort: UInt16(bigEndian: clientAddress.sin_port))
            if serverSide == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        var noDelay: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(serverSide!, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, &size) == 0)
        #expect(noDelay != 0, "the broker's side of the connection still uses Nagle's algorithm")
        withExtendedLifetime(broker) {}
    }

    /// The descriptor of the TCP socket from `localPort` to the peer port `peerPort`, if any.
    static func acceptedSocket(localPort: UInt16, peerPort: UInt16) -> Int32? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name) else { continue }
            var local = sockaddr_in()
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let peered = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
            }
            if named == 0, peered == 0, local.sin_family == sa_family_t(AF_INET), UInt16(bigEndian: local.sin_port) == localPort,
                UInt16(bigEndian: peer.sin_port) == peerPort
            {
                return fd
            }
        }
        return nil
    }
}
