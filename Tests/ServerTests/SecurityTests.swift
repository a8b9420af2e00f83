// API keys (several, from files) and the access policy over every route.
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
}
