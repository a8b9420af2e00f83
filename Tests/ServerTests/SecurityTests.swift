// API keys (several, from files), the access policy over every route, CORS through the API, request ids
// on responses and in log lines, and no prompt text in the log.
import Foundation
import HTTP
import Logging
import Testing
import TestSupport
@testable import Server

@Test func keyFilesSkipBlanksAndCommentsAndTrim() throws {
    #expect(APIKeys.parse("# rotated 2026-12\n\n  key-one  \r\n\tkey-two\n   # old: key-zero\nkey three\n") == ["key-one", "key-two", "key three"])
    let path = ScratchFiles.path("keys")
    try "# only a comment\n\n   \n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(throws: APIKeys.KeyFileError.noKeys(path)) { try APIKeys.load(path: path) }
    try "k1\nk2\n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(try APIKeys.load(path: path) == ["k1", "k2"])
    #expect { try APIKeys.load(path: path + "-missing") } throws: { e in
        guard case .unreadable(let p, _) = e as? APIKeys.KeyFileError else { return false }
        return p == path + "-missing"
    }
}

@Test func everyKeyIsAcceptedAndNothingElse() {
    let keys = APIKeys(["key-one", "key-two"])
    for ok in ["Bearer key-one", "Bearer key-two", "bearer key-two", "BEARER key-one"] { #expect(keys.accepts(authorization: ok), "\(ok)") }
    for bad in [nil, "", "Bearer", "Bearer ", "Bearer key", "Bearer key-one-more", "Bearer key-on", "Basic key-one", "key-one",
                "Bearer  key-one", "Bearer key-onf"] {
        #expect(!keys.accepts(authorization: bad), "\(bad ?? "nil")")
    }
    #expect(!APIKeys([]).accepts(authorization: "Bearer "))
    #expect(APIKeys.equal([1, 2, 3], [1, 2, 3]) == 1 && APIKeys.equal([1, 2, 3], [1, 2, 4]) == 0 && APIKeys.equal([1, 2], [1, 2, 0]) == 0)
}

/// Log lines kept in memory (the server's logger, as a test sees it).
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var lines: [String] { lock.withLock { stored } }
    func append(_ s: String) { lock.withLock { stored.append(s) } }
    var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }
    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let md = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.level) \(event.message)" + md.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined())
        }
    }
}

@Suite(.serialized) struct SecurityTests {
    /// With keys set, every route the router has needs one (so a route added later is covered without
    /// a change here), unknown paths and other methods too; /health and /metrics stay open; each key works.
    @Test func everyRouteButProbesNeedsAKey() throws {
        let s = try startAPI(apiKeys: ["key-one", "key-two"]); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let endpoints = s.api.router.endpoints
        #expect(endpoints.contains { $0 == ("POST", "/apply-template") } && endpoints.contains { $0 == ("GET", "/v1/models") })
        let bodies = ["/tokenize": #"{"content":"the"}"#, "/detokenize": #"{"tokens":[5]}"#,
                      "/apply-template": #"{"messages":[{"role":"user","content":"x"}]}"#, "/v1/responses": #"{"input":"x","max_output_tokens":1}"#,
                      "/v1/completions": #"{"prompt":"x","max_tokens":1}"#, "/v1/chat/completions": #"{"messages":[{"role":"user","content":"x"}],"max_tokens":1}"#]
        for (method, path) in endpoints {
            let body = method == "POST" ? bodies[path] ?? "{}" : nil
            if ZebraServer.publicPaths.contains(path) {
                #expect(c.request(method, path)?.status == 200, "\(path) is public")
                continue
            }
            for auth in [[], ["Authorization: Bearer wrong"], ["Authorization: Bearer key-one-and-more"], ["Authorization: Basic a2V5LW9uZQ=="]] {
                let r = c.request(method, path, json: body, headers: auth + ["X-Request-Id: denied-1"])
                let err = object(r)["error"] as? [String: Any] ?? [:]
                #expect(r?.status == 401 && err["type"] as? String == "authentication_error" && err["code"] as? String == "invalid_api_key", "\(method) \(path) \(auth)")
                #expect(r?.headers["www-authenticate"] == "Bearer" && r?.headers["x-request-id"] == "denied-1")
            }
            for key in ["key-one", "key-two"] {
                let r = c.request(method, path, json: body, headers: ["Authorization: Bearer \(key)"])
                #expect(r?.status == 200, "\(method) \(path) with \(key): \(r?.text ?? "")")
            }
        }
        #expect(c.request("GET", "/v1/nothing")?.status == 401 && c.request("DELETE", "/v1/models")?.status == 401)
        #expect(c.request("OPTIONS", "/v1/completions")?.status == 401)
        #expect(c.request("GET", "/v1/nothing", headers: ["Authorization: Bearer key-two"])?.status == 404)
        #expect(c.request("OPTIONS", "/v1/completions", headers: ["Authorization: Bearer key-two"])?.status == 405)
        #expect(c.request("HEAD", "/health")?.status == 200)
    }

    /// Without CORS, OPTIONS is routed like any other method: 405 naming the allowed ones, 404 elsewhere.
    @Test func optionsWithoutCORSIsRoutedAsBefore() throws {
        let s = try startAPI(loaded: false); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let r = c.request("OPTIONS", "/v1/chat/completions", headers: ["Origin: https://app.example.com", "Access-Control-Request-Method: POST"])
        #expect(r?.status == 405 && r?.headers["allow"] == "POST" && r?.headers["access-control-allow-origin"] == nil)
        #expect(c.request("OPTIONS", "/nope")?.status == 404)
    }

    /// A browser page from an allowed origin: its preflight needs no key, its requests (and their
    /// errors, and streams) carry the CORS headers and the request id it may read.
    @Test func corsThroughTheAPI() throws {
        let s = try startAPI(apiKeys: ["key-one"], cors: CORSPolicy(origins: ["https://app.example.com"])); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let origin = "Origin: https://app.example.com"
        let pre = c.request("OPTIONS", "/v1/chat/completions", headers: [origin, "Access-Control-Request-Method: POST",
                                                                         "Access-Control-Request-Headers: authorization, content-type"])
        #expect(pre?.status == 204 && pre?.headers["access-control-allow-origin"] == "https://app.example.com")
        #expect(pre?.headers["access-control-allow-headers"] == "authorization, content-type")
        let denied = c.request("POST", "/v1/chat/completions", json: "{}", headers: [origin])
        #expect(denied?.status == 401 && denied?.headers["access-control-allow-origin"] == "https://app.example.com")
        let msgs = #""messages":[{"role":"user","content":"the a"}],"max_tokens":3,"ignore_eos":true"#
        let sse = c.request("POST", "/v1/chat/completions", json: "{\(msgs),\"stream\":true}",
                            headers: [origin, "Authorization: Bearer key-one", "X-Request-Id: page-7"])
        #expect(sse?.status == 200 && sse?.headers["content-type"] == "text/event-stream" && events(sse).last == "[DONE]")
        #expect(sse?.headers["access-control-allow-origin"] == "https://app.example.com" && sse?.headers["x-request-id"] == "page-7")
        #expect(sse?.headers["access-control-expose-headers"]?.contains("X-Request-Id") == true)
        let other = c.request("POST", "/v1/chat/completions", json: "{\(msgs)}", headers: ["Origin: https://evil.example.com", "Authorization: Bearer key-one"])
        #expect(other?.status == 200 && other?.headers["access-control-allow-origin"] == nil)
    }

    /// Every response names its request id, errors and overload too; the log line for a request names it;
    /// no log line holds the prompt, the messages or the completion.
    @Test func requestIDsInResponsesAndLogsButNoPromptText() throws {
        let log = LogCapture()
        let s = try startAPI(logger: log.logger); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let secret = "zebra-confidential-7731"
        func id(_ r: TestClient.Response?) -> String { r?.headers["x-request-id"] ?? "<none>" }
        let plain = c.request("POST", "/v1/completions", json: #"{"prompt":"\#(secret) the","max_tokens":4,"temperature":0,"ignore_eos":true}"#,
                              headers: ["X-Request-Id: trace-plain"])
        let completion = (object(plain)["choices"] as? [[String: Any]])?.first?["text"] as? String ?? ""
        #expect(plain?.status == 200 && id(plain) == "trace-plain" && completion.count >= 4)
        let stream = c.request("POST", "/v1/chat/completions",
                               json: #"{"messages":[{"role":"system","content":"\#(secret)"},{"role":"user","content":"\#(secret) a"}],"max_tokens":4,"ignore_eos":true,"stream":true}"#,
                               headers: ["X-Request-Id: trace-stream"])
        #expect(stream?.status == 200 && id(stream) == "trace-stream")
        let badTemplate = c.request("POST", "/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"\#(secret)"},{"role":"user","content":"\#(secret)"}]}"#)
        #expect(badTemplate?.status == 400)
        let badField = c.request("POST", "/v1/completions", json: #"{"prompt":"\#(secret)","temperature":"\#(secret)"}"#)
        #expect(badField?.status == 400)
        let tok = c.request("POST", "/tokenize", json: #"{"content":"\#(secret)"}"#)
        #expect(tok?.status == 200)
        #expect(c.request("POST", "/apply-template", json: #"{"messages":[{"role":"user","content":"\#(secret)"}]}"#)?.status == 200)
        let full = try startAPI(logger: log.logger) { $0.maxQueue = 0 }
        defer { full.stop() }
        let overloaded = try TestClient(port: full.port).request("POST", "/v1/completions", json: #"{"prompt":"\#(secret)"}"#, headers: ["X-Request-Id: trace-429"])
        #expect(overloaded?.status == 429 && id(overloaded) == "trace-429")
        // A request's line is written just after its last bytes went out (a stream's when it ends): wait
        // for every one of them (a loaded machine can be slow to schedule the writer).
        var lines: [String] = []
        let responses = [plain, stream, badTemplate, badField, tok, overloaded]
        for _ in 0..<1000 {
            lines = log.lines
            if responses.allSatisfy({ r in lines.contains { $0.contains("request_id=\(id(r))") } }) { break }
            usleep(10_000)
        }
        for r in responses {
            let rid = id(r)
            #expect(lines.contains { $0.contains("request_id=\(rid)") && $0.contains("status=\(r?.status ?? 0)") }, "no log line for \(rid)")
        }
        #expect(lines.count >= 7 && lines.allSatisfy { $0.contains("request_id=") })
        for l in lines {
            #expect(!l.contains(secret) && !l.contains(completion), "prompt or completion text in the log: \(l)")
        }
    }
}
