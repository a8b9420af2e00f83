// API errors in OpenAI's shape, each with its HTTP status.
import HTTP

public struct APIError: Error, Equatable, Sendable {
    public var status: Int
    public var message: String
    public var type: String?
    public var param: String?
    public var code: String?
    public var headers: [(String, String)] = []

    public init(_ status: Int, _ message: String, type: String? = nil, param: String? = nil, code: String? = nil,
                headers: [(String, String)] = []) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
        self.headers = headers
    }

    public static func invalid(_ param: String, _ message: String) -> APIError {
        APIError(400, message, param: param, code: "invalid_value")
    }

    public var response: HTTPResponse {
        .error(status, message, type: type, param: param, code: code, headers: HTTPHeaders(headers))
    }

    /// The error as one SSE `data:` payload (errors after the first token of a stream).
    public var json: String { String(decoding: response.body, as: UTF8.self) }

    public static func == (a: APIError, b: APIError) -> Bool {
        a.status == b.status && a.message == b.message && a.param == b.param && a.code == b.code
    }
}
