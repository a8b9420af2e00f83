// CORS: off by default, allowed origins only, preflights answered before routing.
import Foundation
import TestSupport
import Testing
@testable import HTTP

@Test func corsOriginsAndPreflightsAsPureRules() {
    for ok in ["*", "https://app.example.com", "http://localhost:3000", "http://[::1]:8080", "chrome-extension://abcdef"] {
        #expect(CORSPolicy.isValidOrigin(ok), "\(ok)")
    }
    for bad in ["", "null", "app.example.com", "https://", "https://app.example.com/", "https://a.com/path", "https://a.com,https://b.com",
                "https://a .com", "://a.com", "1http://a.com"] {
        #expect(!CORSPolicy.isValidOrigin(bad), "\(bad)")
    }
    let p = CORSPolicy(origins: ["https://App.example.com"])
    #expect(p.allowOrigin("https://app.example.com") == "https://app.example.com")
    #expect(p.allowOrigin("https://evil.example.com") == nil && p.allowOrigin(nil) == nil)
    #expect(CORSPolicy(origins: ["*"]).allowOrigin("https://anything.example") == "*")
    func req(_ method: String, _ headers: [(String, String)]) -> HTTPRequest {
        HTTPRequest(method: method, target: "/v1/completions", path: "/v1/completions", query: nil, minorVersion: 1,
                    headers: HTTPHeaders(headers), body: [], trailers: HTTPHeaders())
    }
    let origin = ("Origin", "https://app.example.com")
    let pre = p.preflight(req("OPTIONS", [origin, ("Access-Control-Request-Method", "POST"),
                                          ("Access-Control-Request-Headers", "authorization, content-type, x-stainless-os")]))
    #expect(pre?.status == 204 && pre?.body.isEmpty == true)
    #expect(pre?.headers["access-control-allow-methods"] == "GET, POST, OPTIONS")
    #expect(pre?.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os")
    #expect(pre?.headers["access-control-max-age"] == "600")
    let malformed = p.preflight(req("OPTIONS", [origin, ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "x(y)")]))
    #expect(malformed?.headers["access-control-allow-headers"] == "Authorization, Content-Type, X-Request-Id")
    // Not preflights: no Access-Control-Request-Method, another method, another origin.
    #expect(p.preflight(req("OPTIONS", [origin])) == nil && p.preflight(req("POST", [origin, ("Access-Control-Request-Method", "POST")])) == nil)
    #expect(p.preflight(req("OPTIONS", [("Origin", "https://evil.example.com"), ("Access-Control-Request-Method", "POST")])) == nil)
    #expect(p.responseHeaders(req("GET", [("Origin", "https://evil.example.com")])).map(\.0) == ["Vary"])
}

@Suite(.serialized) struct CORSTests {
    /// Off by default: no CORS headers, and OPTIONS is routed like any other method (405, 404).
    @Test func corsOffByDefault() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        let r = c.request("GET", "/health", headers: ["Origin: https://app.example.com"])
        #expect(r?.status == 200 && !(r?.headers.fields.contains { $0.0.lowercased().hasPrefix("access-control-") } ?? true))
        #expect(values(r, "vary").isEmpty)
        let pre = c.request("OPTIONS", "/health", headers: ["Origin: https://app.example.com", "Access-Control-Request-Method: GET"])
        #expect(pre?.status == 405 && pre?.headers["allow"] == "GET, HEAD" && pre?.headers["access-control-allow-origin"] == nil)
        #expect(c.request("OPTIONS", "/nope", headers: ["Origin: https://app.example.com", "Access-Control-Request-Method: GET"])?.status == 404)
    }

    /// On: an allowed origin gets Allow-Origin (its own, or `*`), Vary and Expose-Headers on every response,
    /// streams too; a preflight is 204 without reaching a route, and the connection stays usable; another
    /// origin gets no CORS headers.
    @Test func corsForAllowedOriginsOnly() throws {
        let s = try startServer(cors: CORSPolicy(origins: ["https://app.example.com", "http://localhost:3000"]))
        defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        for origin in ["https://app.example.com", "http://localhost:3000"] {
            let r = c.request("GET", "/health", headers: ["Origin: \(origin)"])
            #expect(r?.status == 200 && r?.headers["access-control-allow-origin"] == origin)
            #expect(values(r, "vary").contains("Origin") && r?.headers["access-control-expose-headers"]?.contains("X-Request-Id") == true)
        }
        let sse = c.request("GET", "/events", headers: ["Origin: https://app.example.com"])
        #expect(sse?.headers["content-type"] == "text/event-stream" && sse?.headers["access-control-allow-origin"] == "https://app.example.com")
        let nf = c.request("GET", "/nope", headers: ["Origin: https://app.example.com"])
        #expect(nf?.status == 404 && nf?.headers["access-control-allow-origin"] == "https://app.example.com")
        let pre = c.request("OPTIONS", "/echo", headers: ["Origin: https://app.example.com", "Access-Control-Request-Method: POST",
                                                          "Access-Control-Request-Headers: authorization,content-type,x-request-id",
                                                          "X-Request-Id: pre-1"])
        #expect(pre?.status == 204 && pre?.body.isEmpty == true && pre?.headers["content-length"] == nil)
        #expect(pre?.headers["access-control-allow-origin"] == "https://app.example.com")
        #expect(pre?.headers["access-control-allow-methods"] == "GET, POST, OPTIONS")
        #expect(pre?.headers["access-control-allow-headers"] == "authorization, content-type, x-request-id")
        #expect(pre?.headers["access-control-max-age"] == "600" && pre?.headers["x-request-id"] == "pre-1")
        #expect(c.request("POST", "/echo", json: "after", headers: ["Origin: https://app.example.com"])?.text == "after")
        // Another origin: nothing that lets a browser show the response; its preflight is routed (405).
        let evil = c.request("GET", "/health", headers: ["Origin: https://evil.example.com"])
        #expect(evil?.status == 200 && !(evil?.headers.fields.contains { $0.0.lowercased().hasPrefix("access-control-") } ?? true))
        let evilPre = c.request("OPTIONS", "/echo", headers: ["Origin: https://evil.example.com", "Access-Control-Request-Method: POST"])
        #expect(evilPre?.status == 405 && evilPre?.headers["access-control-allow-origin"] == nil)
        let any = try startServer(cors: CORSPolicy(origins: ["*"]))
        defer { any.shutdown(timeout: 1); any.wait() }
        #expect(try TestClient(port: any.port).request("GET", "/health", headers: ["Origin: https://x.example"])?.headers["access-control-allow-origin"] == "*")
    }
}
