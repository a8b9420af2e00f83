// `zebra serve`'s security flags on the real executable: a key file that cannot be used, an empty key
// or a malformed CORS origin stops it before it listens; keys from the flag and from a key file named in
// the environment work side by side, and ZEBRA_CORS_ORIGINS takes a comma-separated list.
import Foundation
import Testing
import TestSupport

@Test func unusableSecuritySettingsStopTheServerBeforeItListens() throws {
    let missing = ScratchFiles.path("no-such-keys")
    let empty = ScratchFiles.path("empty-keys")
    try "# keys go here\n\n".write(toFile: empty, atomically: true, encoding: .utf8)
    let cases: [([String], [String: String], String)] = [
        (["--api-key-file", missing], [:], "cannot read the API key file '\(missing)'"),
        ([], ["ZEBRA_API_KEY_FILE": missing], "cannot read the API key file '\(missing)'"),
        (["--api-key-file", empty], [:], "the API key file '\(empty)' holds no key"),
        (["--api-key-file", empty, "--api-key", "fine"], [:], "holds no key"),
        (["--api-key", ""], [:], "--api-key is empty"),
        (["--cors-origin", "https://app.example.com/"], [:], "--cors-origin 'https://app.example.com/'"),
        ([], ["ZEBRA_CORS_ORIGINS": "https://app.example.com, app.example.com"], "--cors-origin 'app.example.com'"),
    ]
    for (args, env, message) in cases {
        let (p, err) = try zebraServe(args, env: env)
        // A server that started anyway is stopped, so the regression fails rather than hangs.
        for _ in 0..<300 where p.isRunning { usleep(50_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let out = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 1 && out.contains(message), "\(args) \(env): \(out)")
        #expect(!out.contains("listening"), "\(args) \(env)")
    }
}

@Test func keysFromFlagAndFileAndOriginsFromTheEnvironment() throws {
    let keyFile = ScratchFiles.path("keys")
    try "# rotation: the new key first, the old one until clients moved\nkey-new\n  key-old  \n".write(toFile: keyFile, atomically: true, encoding: .utf8)
    let (p, err) = try zebraServe(["--api-key", "key-flag"],
                                  env: ["ZEBRA_API_KEY_FILE": keyFile, "ZEBRA_CORS_ORIGINS": "https://app.example.com, http://localhost:3000,"])
    defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
    let (port, log) = try listeningPort(err)
    #expect(log.contains("auth=3 key(s)") && log.contains("cors=http://localhost:3000,https://app.example.com"), "\(log)")
    #expect(!log.contains("key-new") && !log.contains("key-old") && !log.contains("key-flag"), "keys in the log: \(log)")
    let c = try TestClient(port: port)
    // /health needs no key; once it says the model is loaded, every configured key is let in.
    var health = c.request("GET", "/health")?.status
    for _ in 0..<200 where health == 503 {
        usleep(50_000)
        health = c.request("GET", "/health")?.status
    }
    #expect(health == 200, "/health: \(String(describing: health))")
    for key in ["key-flag", "key-new", "key-old"] {
        #expect(c.request("GET", "/v1/models", headers: ["Authorization: Bearer \(key)"])?.status == 200, "\(key)")
    }
    for bad in [[], ["Authorization: Bearer key-"], ["Authorization: Bearer # rotation: the new key first, the old one until clients moved"]] {
        #expect(c.request("GET", "/v1/models", headers: bad)?.status == 401, "\(bad)")
    }
    let pre = c.request("OPTIONS", "/v1/models", headers: ["Origin: http://localhost:3000", "Access-Control-Request-Method: GET"])
    #expect(pre?.status == 204 && pre?.headers["access-control-allow-origin"] == "http://localhost:3000")
}
