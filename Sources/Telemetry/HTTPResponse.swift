/// A complete HTTP/1.1 response from the Prometheus endpoint; every response closes the
/// connection.
struct HTTPResponse {
    var status: Int
    var reason: String
    var contentType: String
    var body: [UInt8]
    var extraHeaders = ""
    /// For `HEAD`: send the headers (with the real `Content-Length`) but no body.
    var omitBody = false

    static let badRequest = HTTPResponse.plain(status: 400, reason: "Bad Request", body: "bad request\n")

    static func plain(status: Int, reason: String, body: String, extraHeaders: String = "") -> HTTPResponse {
        HTTPResponse(status: status, reason: reason, contentType: "text/plain; charset=utf-8",
                     body: Array(body.utf8), extraHeaders: extraHeaders)
    }

    /// Status line, headers and body, ready to send.
    var bytes: [UInt8] {
        let head = "HTTP/1.1 \(status) \(reason)\r\n"
            + "Content-Type: \(contentType)\r\n"
            + "Content-Length: \(body.count)\r\n"
            + extraHeaders
            + "Connection: close\r\n\r\n"
        return Array(head.utf8) + (omitBody ? [] : body)
    }
}
