// Test routes on an ephemeral loopback port.
import Foundation
import TestSupport
@testable import HTTP

/// A started server on an ephemeral loopback port with test routes.
func startServer(limits: HTTPLimits = HTTPLimits(), hosts: [String] = ["127.0.0.1"], cors: CORSPolicy? = nil,
                 extra: (inout HTTPRouter) -> Void = { _ in }) throws -> HTTPServer {
    var r = HTTPRouter()
    r.add("GET", "/health") { _, w in w.respond(.json(200, "{\"status\":\"ok\"}")) }
    r.add("POST", "/echo") { req, w in w.respond(HTTPResponse(status: 200, body: req.body)) }
    r.add("GET", "/big") { _, w in w.respond(HTTPResponse(status: 200, body: Array(String(repeating: "zebra ", count: 2000).utf8))) }
    r.add("GET", "/slow") { _, w in
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { w.respond(.json(200, "{\"slow\":true}")) }
    }
    r.add("GET", "/events") { _, w in
        w.startEventStream()
        DispatchQueue.global().async {
            for i in 0..<3 { w.sendEvent("{\"i\":\(i)}"); usleep(20_000) }
            w.sendComment("ping")
            w.sendEvent("[DONE]")
            w.finish()
        }
    }
    extra(&r)
    let s = HTTPServer(config: HTTPServerConfig(hosts: hosts, port: 0, limits: limits, shutdownTimeout: 5, cors: cors), handler: r.handler)
    try s.start()
    return s
}
