import CCurl
import CCurlShims
import HeraldCore

/// One libcurl easy handle that asks an OAuth2 token endpoint for an access token with the
/// client-credentials grant (RFC 6749 §4.4): `POST` of a form with `grant_type`, `client_id`,
/// `client_secret` and `scope`. libcurl keeps the connection to the endpoint open between
/// requests.
///
/// `fetch` blocks in `curl_easy_perform` for up to the timeout, so a request lives on, and is
/// only used from, one dedicated thread (the `OAuth2TokenCache`'s); it is deliberately not
/// `Sendable`. No redirect is followed (the secret would go with it), only http and https
/// are spoken, and the server's certificate is checked against the system's authorities.
final class CurlTokenRequest {
    private let handle: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let headers: UnsafeMutablePointer<curl_slist>
    private let body = Body()

    init(client: OAuth2ClientCredentials, connectTimeout: Duration, timeout: Duration) throws(MailError) {
        guard herald_curl_global_init_once() == CURLE_OK else {
            throw MailError.make(.tokenUnavailable, "curl_global_init failed")
        }
        guard let handle = curl_easy_init() else { throw MailError.make(.tokenUnavailable, "curl_easy_init failed") }
        guard let headers = curl_slist_append(nil, "Accept: application/json") else {
            curl_easy_cleanup(handle)
            throw MailError.make(.tokenUnavailable, "curl_slist_append failed")
        }
        self.handle = handle
        self.headers = headers
        let size = herald_curl_error_size()
        errorBuffer = .allocate(capacity: size)
        errorBuffer.initialize(repeating: 0, count: size)

        var form = [("grant_type", "client_credentials"), ("client_id", client.clientID), ("client_secret", client.clientSecret.value)]
        if let scope = client.scope { form.append(("scope", scope)) }
        let fields = form.map { "\(Self.formEncoded($0.0))=\(Self.formEncoded($0.1))" }.joined(separator: "&")

        var failure: CURLcode?
        func record(_ result: CURLcode) {
            if result != CURLE_OK && failure == nil { failure = result }
        }
        record(herald_curl_setopt_string(handle, CURLOPT_URL, client.tokenURL))
        record(herald_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        record(herald_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        // libcurl copies the form (CURLOPT_COPYPOSTFIELDS), which makes the request a POST.
        record(herald_curl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, fields))
        record(herald_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers))
        record(herald_curl_setopt_string(handle, CURLOPT_USERAGENT, "herald"))
        record(herald_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(max(1, connectTimeout.wholeMilliseconds))))
        record(herald_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(max(1, timeout.wholeMilliseconds))))
        // No SIGALRM for DNS timeouts: signals and several threads do not mix.
        record(herald_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        record(herald_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer)))
        record(herald_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, Body.write))
        record(herald_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(body).toOpaque()))
        if let failure {
            curl_easy_cleanup(handle)
            curl_slist_free_all(headers)
            errorBuffer.deallocate()
            throw MailError.make(.tokenUnavailable, "libcurl refused an option: \(String(cString: curl_easy_strerror(failure)))")
        }
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headers)
        errorBuffer.deallocate()
    }

    /// Asks for a token. Blocking: connect (or reuse), TLS, the request and the answer, up to
    /// the timeout.
    func fetch() -> Result<OAuth2Token, MailError> {
        body.bytes.removeAll(keepingCapacity: true)
        body.overflowed = false
        errorBuffer[0] = 0
        let result = curl_easy_perform(handle)
        guard result == CURLE_OK else {
            let text = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(result))
            let reason = body.overflowed ? "its answer is too long" : text
            return .failure(.make(.tokenUnavailable, "the token endpoint cannot be reached: \(reason)"))
        }
        var status = 0
        _ = herald_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return OAuth2TokenResponse.token(status: status, body: body.bytes)
    }

    /// `application/x-www-form-urlencoded`: everything but the unreserved characters
    /// percent-encoded (a space as `%20`, which every server decodes alike).
    static func formEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The answer's body, reached from libcurl's write callback through an unretained pointer
    /// (the request keeps it alive).
    private final class Body {
        var bytes: [UInt8] = []
        var overflowed = false

        /// CURLOPT_WRITEFUNCTION: appends, up to `OAuth2TokenResponse.maxBodyBytes` (a short
        /// count beyond makes libcurl stop with CURLE_WRITE_ERROR).
        static let write: herald_curl_data_callback = { buffer, size, count, context in
            let length = size * count
            guard let buffer, let context else { return 0 }
            let body = Unmanaged<Body>.fromOpaque(context).takeUnretainedValue()
            guard body.bytes.count + length <= OAuth2TokenResponse.maxBodyBytes else {
                body.overflowed = true
                return 0
            }
            body.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
            return length
        }
    }
}
