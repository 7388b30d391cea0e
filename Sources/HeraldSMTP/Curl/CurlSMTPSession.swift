import CCurl
import CCurlShims
import HeraldCore

/// One libcurl easy handle set up for `SMTPSettings`, and so one SMTP connection that libcurl
/// keeps open between messages (it is reused when the next message is sent within libcurl's
/// idle limit, and reopened transparently when the server has closed it).
///
/// `send` blocks in `curl_easy_perform` (connect, TLS, the whole SMTP dialogue) for up to the
/// transfer timeout, so a session lives on, and is only used from, one thread of the
/// mailer's `BlockingThreadPool`; it is deliberately not `Sendable`.
final class CurlSMTPSession {
    private let handle: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let transfer = Transfer()

    /// Creates the handle and sets every option that does not change per message. With
    /// `inspectTLS` (`herald mail test`), libcurl also gathers the server's certificate chain
    /// (CURLOPT_CERTINFO) and its informational notes are read for the protocol and cipher
    /// it negotiated (`tlsDetails()`).
    init(settings: SMTPSettings, inspectTLS: Bool = false) throws(MailError) {
        guard case .smtp(let url, let security) = settings.transport else {
            preconditionFailure("CurlSMTPSession needs an smtp:// or smtps:// transport")
        }
        guard herald_curl_global_init_once() == CURLE_OK else {
            throw MailError.make(.failed, "curl_global_init failed")
        }
        guard let handle = curl_easy_init() else { throw MailError.make(.failed, "curl_easy_init failed") }
        self.handle = handle
        let size = herald_curl_error_size()
        errorBuffer = .allocate(capacity: size)
        errorBuffer.initialize(repeating: 0, count: size)

        // The URL's path is the name libcurl sends with EHLO.
        var options = Options(handle: handle)
        options.set(CURLOPT_URL, url + "/" + (settings.heloName ?? ""))
        switch security {
        case .startTLSRequired, .implicitTLS: options.set(CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
        case .plaintext: options.set(CURLOPT_USE_SSL, Int(CURLUSESSL_NONE.rawValue))
        }
        options.set(CURLOPT_SSL_VERIFYPEER, settings.verifyCertificate ? 1 : 0)
        options.set(CURLOPT_SSL_VERIFYHOST, settings.verifyCertificate ? 2 : 0)
        if let caFile = settings.caFile { options.set(CURLOPT_CAINFO, caFile) }
        switch settings.authentication {
        case .anonymous:
            break
        case .password:
            if let username = settings.username { options.set(CURLOPT_USERNAME, username) }
            if let password = settings.password { options.set(CURLOPT_PASSWORD, password) }
        case .xoauth2:
            // XOAUTH2 only (not OAUTHBEARER, PLAIN or LOGIN, which libcurl might otherwise pick):
            // the user here, the token with each send (CURLOPT_XOAUTH2_BEARER).
            if let username = settings.username { options.set(CURLOPT_USERNAME, username) }
            options.set(CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2")
        }
        options.set(CURLOPT_CONNECTTIMEOUT_MS, Int(max(1, settings.connectTimeout.wholeMilliseconds)))
        options.set(CURLOPT_TIMEOUT_MS, Int(max(1, settings.transferTimeout.wholeMilliseconds)))
        // No SIGALRM for DNS timeouts: signals and several threads do not mix.
        options.set(CURLOPT_NOSIGNAL, 1)
        if !settings.reuseConnections { options.set(CURLOPT_FORBID_REUSE, 1) }
        options.set(CURLOPT_UPLOAD, 1)
        options.set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        options.set(CURLOPT_READFUNCTION, callback: Transfer.read)
        options.set(CURLOPT_READDATA, pointer: context)
        // libcurl passes every SMTP reply line to the header callback: that is how the
        // server's text (a 550's reason, a 250's queue id) is read.
        options.set(CURLOPT_HEADERFUNCTION, callback: Transfer.replyLine)
        options.set(CURLOPT_HEADERDATA, pointer: context)
        if inspectTLS {
            options.set(CURLOPT_CERTINFO, 1)
            // The notes reach the debug callback only in verbose mode; the callback keeps the
            // TLS one and drops everything else (the dialogue, AUTH included, and the message).
            options.set(CURLOPT_VERBOSE, 1)
            options.set(CURLOPT_DEBUGFUNCTION, debugCallback: Transfer.note)
            options.set(CURLOPT_DEBUGDATA, pointer: context)
        }
        if let failure = options.failure {
            curl_easy_cleanup(handle)
            errorBuffer.deallocate()
            throw MailError.make(.failed, "libcurl refused an option: \(String(cString: curl_easy_strerror(failure)))")
        }
    }

    deinit {
        // Sends QUIT on a live connection and closes it (bounded by the transfer timeout).
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Sends `message` (already rendered) from `from` to `to`; returns the server's reply to
    /// the message. `bearer` is the XOAUTH2 token: libcurl reuses the open connection only
    /// when it was authenticated with the same token, and otherwise opens a new one and
    /// authenticates with this one.
    func send(from: String, to: String, message: [UInt8], bearer: String? = nil) -> Result<String?, MailError> {
        var options = Options(handle: handle)
        if let bearer { options.set(CURLOPT_XOAUTH2_BEARER, bearer) }
        options.set(CURLOPT_MAIL_FROM, "<\(from)>")
        guard let recipients = curl_slist_append(nil, "<\(to)>") else {
            return .failure(.make(.failed, "curl_slist_append failed"))
        }
        defer { curl_slist_free_all(recipients) }
        options.set(CURLOPT_MAIL_RCPT, list: recipients)
        if let failure = options.failure {
            return .failure(.make(.failed, "libcurl refused an option: \(String(cString: curl_easy_strerror(failure)))"))
        }
        transfer.start(message)
        errorBuffer[0] = 0
        // Blocking: connect (or reuse), TLS, EHLO, AUTH, MAIL, RCPT, DATA, up to CURLOPT_TIMEOUT_MS.
        let result = curl_easy_perform(handle)
        transfer.finish()
        var code = 0
        _ = herald_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        let reply = transfer.reply(code: code)
        if result == CURLE_OK { return .success(reply) }
        let text = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(result))
        return .failure(Self.classify(result, smtpCode: code, reply: reply, text: text))
    }

    /// How the last transfer's connection was secured, as libcurl reports it (with
    /// `inspectTLS`): its note on the handshake (`TLSv1.3 / TLS_AES_256_GCM_SHA384` from
    /// OpenSSL) and the server's certificate chain, each certificate as its `name:content`
    /// lines (CURLINFO_CERTINFO). Empty when no TLS handshake took place.
    func tlsDetails() -> (handshake: String?, certificates: [[String]]) {
        var chain: [[String]] = []
        var info: UnsafeMutablePointer<curl_certinfo>?
        if herald_curl_getinfo_certinfo(handle, &info) == CURLE_OK, let info, let lists = info.pointee.certinfo {
            for index in 0..<Int(max(0, info.pointee.num_of_certs)) {
                var lines: [String] = []
                var node = lists[index]
                while let item = node {
                    // The PEM ("Cert:") is long and says nothing a reader needs here.
                    if let data = item.pointee.data, lines.count < 64 {
                        let line = String(cString: data)
                        if !line.hasPrefix("Cert:") { lines.append(String(line.prefix(1024))) }
                    }
                    node = item.pointee.next
                }
                chain.append(lines)
            }
        }
        return (transfer.handshake, chain)
    }

    /// Maps a failed `curl_easy_perform` to a `MailError` (the classification is documented
    /// on `MailError`).
    static func classify(_ result: CURLcode, smtpCode: Int, reply: String?, text: String) -> MailError {
        let code = smtpCode > 0 ? smtpCode : nil
        let reply = code == nil ? nil : reply
        if result == CURLE_LOGIN_DENIED || [530, 534, 535, 538].contains(smtpCode) {
            return .make(.authenticationFailed, text, smtpCode: code, serverReply: reply)
        }
        switch smtpCode {
        case 400..<500: return .make(.deferred, text, smtpCode: code, serverReply: reply)
        case 500..<600: return .make(.rejected, text, smtpCode: code, serverReply: reply)
        default: break
        }
        switch result {
        case CURLE_OPERATION_TIMEDOUT where code == nil:
            // No reply at all in this transfer (connecting, TLS, or waiting for the greeting of
            // a server that accepted TCP and says nothing): the server is unreachable, not
            // this message at fault.
            return .make(.connectionFailed, text)
        case CURLE_OPERATION_TIMEDOUT:
            return .make(.timeout, text, smtpCode: code, serverReply: reply)
        case CURLE_PEER_FAILED_VERIFICATION:
            return .make(.certificateRejected, text, smtpCode: code, serverReply: reply)
        case CURLE_SSL_CONNECT_ERROR, CURLE_USE_SSL_FAILED, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_CIPHER:
            return .make(.tlsFailed, text, smtpCode: code, serverReply: reply)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR,
            CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_WEIRD_SERVER_REPLY:
            return .make(.connectionFailed, text, smtpCode: code, serverReply: reply)
        default:
            return .make(.failed, text, smtpCode: code, serverReply: reply)
        }
    }
}

extension CurlSMTPSession {
    /// The bytes being uploaded and the server's reply lines, reached from libcurl's callbacks
    /// through an unretained pointer (the session keeps it alive). Used on the session's
    /// thread only.
    fileprivate final class Transfer {
        private var bytes: [UInt8] = []
        private var offset = 0
        /// The replies of this transfer (at most a few: EHLO, AUTH, MAIL, RCPT, DATA, QUIT),
        /// each as its lines.
        private var replies: [[String]] = []
        private var replyComplete = true
        /// libcurl's note on this transfer's TLS handshake, when the debug callback is on.
        private(set) var handshake: String?

        func start(_ message: [UInt8]) {
            bytes = message
            offset = 0
            replies.removeAll(keepingCapacity: true)
            replyComplete = true
            handshake = nil
        }

        func finish() {
            bytes = []
        }

        /// The last reply with reply code `code` (the one that decided the outcome: after a
        /// refusal libcurl still reads the answer to QUIT), else the last reply; its lines
        /// joined by newlines.
        func reply(code: Int) -> String? {
            let prefix = String(code)
            let chosen = replies.last { $0.first?.hasPrefix(prefix) == true } ?? replies.last
            return chosen.map { $0.joined(separator: "\n") }
        }

        /// CURLOPT_READFUNCTION: copies the next bytes of the message.
        static let read: herald_curl_data_callback = { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let length = min(size * count, transfer.bytes.count - transfer.offset)
            guard length > 0 else { return 0 }
            transfer.bytes.withUnsafeBytes { source in
                UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + transfer.offset, byteCount: length)
            }
            transfer.offset += length
            return length
        }

        /// CURLOPT_HEADERFUNCTION: one reply line (`250-…` continues, `250 …` ends a reply).
        static let replyLine: herald_curl_data_callback = { buffer, size, count, context in
            let length = size * count
            guard let buffer, let context else { return length }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            var line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self)
            // `last.isNewline`, not `hasSuffix("\n")`: "\r\n" is a single Character.
            while let last = line.last, last.isNewline { line.removeLast() }
            if transfer.replyComplete {
                if transfer.replies.count >= 16 { transfer.replies.removeFirst() }
                transfer.replies.append([])
            }
            if transfer.replies[transfer.replies.count - 1].count < 32 {
                transfer.replies[transfer.replies.count - 1].append(String(line.prefix(512)))
            }
            let utf8 = Array(line.utf8.prefix(4))
            transfer.replyComplete = utf8.count < 4 || utf8[3] != UInt8(ascii: "-")
            return length
        }

        /// What libcurl's OpenSSL backend says once a handshake completes:
        /// `SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384`.
        static let handshakeNote = "SSL connection using "

        /// CURLOPT_DEBUGFUNCTION: keeps the handshake note from libcurl's informational text
        /// (CURLINFO_TEXT); ignores everything else, which includes the SMTP dialogue (AUTH
        /// with its credentials) and the message.
        static let note: herald_curl_debug_callback = { _, type, data, size, context in
            guard type == CURLINFO_TEXT, let data, let context else { return 0 }
            var text = String(decoding: UnsafeRawBufferPointer(start: data, count: min(size, 512)), as: UTF8.self)
            guard text.hasPrefix(Transfer.handshakeNote) else { return 0 }
            while let last = text.last, last.isNewline || last == " " { text.removeLast() }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            transfer.handshake = String(text.dropFirst(Transfer.handshakeNote.count))
            return 0
        }
    }

    /// Sets options and remembers the first failure.
    fileprivate struct Options {
        let handle: UnsafeMutableRawPointer
        var failure: CURLcode?

        init(handle: UnsafeMutableRawPointer) {
            self.handle = handle
        }

        mutating func set(_ option: CURLoption, _ value: Int) {
            record(herald_curl_setopt_long(handle, option, value))
        }

        mutating func set(_ option: CURLoption, _ value: String) {
            // libcurl copies string options.
            record(herald_curl_setopt_string(handle, option, value))
        }

        mutating func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer) {
            record(herald_curl_setopt_pointer(handle, option, pointer))
        }

        mutating func set(_ option: CURLoption, list: UnsafeMutablePointer<curl_slist>) {
            record(herald_curl_setopt_slist(handle, option, list))
        }

        mutating func set(_ option: CURLoption, callback: herald_curl_data_callback) {
            record(herald_curl_setopt_callback(handle, option, callback))
        }

        mutating func set(_ option: CURLoption, debugCallback: herald_curl_debug_callback) {
            record(herald_curl_setopt_debug_callback(handle, option, debugCallback))
        }

        private mutating func record(_ result: CURLcode) {
            if result != CURLE_OK && failure == nil { failure = result }
        }
    }
}
