// TLS handshakes as parleyd's TlsContext runs them (ECDSA P-256 self-signed certificate, the
// server settings of reactor/tls_context.cpp), in memory over a BIO pair: no sockets, so the
// figure is OpenSSL CPU time. Only the server's calls are timed (the client's are paused out);
// items/s is server handshakes per second of one core. Full vs resumed (session ticket), for
// TLS 1.3 and TLS 1.2. Also the idle heap an established server SSL keeps.
#include <benchmark/benchmark.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "reactor/tls_context.h"
#include "tools/self_signed_cert.h"

namespace {

// A certificate pair in a temporary directory and the server context loaded from it.
struct Fixture {
  Fixture() {
    char dir[] = "/tmp/parley-tls-bench-XXXXXX";
    if (mkdtemp(dir) == nullptr) return;
    std::string cert = std::string(dir) + "/cert.pem";
    std::string key = std::string(dir) + "/key.pem";
    std::string error;
    if (tools::write_self_signed_cert(cert, key, error)) server = reactor::TlsContext::create(cert, key, error);
    if (server == nullptr) std::fprintf(stderr, "tls_bench: %s\n", error.c_str());
    unlink(cert.c_str());
    unlink(key.c_str());
    rmdir(dir);
    client = SSL_CTX_new(TLS_client_method());
  }
  ~Fixture() { SSL_CTX_free(client); }
  std::unique_ptr<reactor::TlsContext> server;
  SSL_CTX* client = nullptr;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Pauses the benchmark's clock while the client (not the server under test) works; a no-op
// outside the timed loop.
void pause(benchmark::State* state) {
  if (state != nullptr) state->PauseTiming();
}
void resume_timing(benchmark::State* state) {
  if (state != nullptr) state->ResumeTiming();
}

// One handshake; the server's calls timed (when `state` is given), the client's not. Returns
// the client's session (with the tickets read) when `keep_session`, else nullptr. False in
// `ok` on failure.
SSL_SESSION* handshake(benchmark::State* state, int version, SSL_SESSION* resume, bool keep_session, bool& ok) {
  Fixture& f = fixture();
  pause(state);
  SSL* client = SSL_new(f.client);
  SSL_set_min_proto_version(client, version);
  SSL_set_max_proto_version(client, version);
  if (resume != nullptr) SSL_set_session(client, resume);
  SSL_set_connect_state(client);
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL* server = SSL_new(f.server->native());
  SSL_set_bio(server, server_bio, server_bio);
  SSL_set_accept_state(server);
  bool client_done = false;
  bool server_done = false;
  ok = true;
  for (int round = 0; round < 16 && !(client_done && server_done); ++round) {
    if (!client_done) client_done = SSL_do_handshake(client) == 1;
    resume_timing(state);
    if (!server_done) server_done = SSL_do_handshake(server) == 1;
    pause(state);
  }
  // TLS 1.3 tickets follow the handshake: reading processes them.
  char byte;
  SSL_read(client, &byte, 1);
  if (!client_done || !server_done || (resume != nullptr && !SSL_session_reused(client))) ok = false;
  SSL_SESSION* session = keep_session ? SSL_get1_session(client) : nullptr;
  // An SSL freed without a shutdown marks its session not resumable.
  SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(client);
  SSL_free(server);
  resume_timing(state);
  return session;
}

void BM_TlsHandshake(benchmark::State& state) {
  const int version = state.range(0) == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  const bool resumed = state.range(1) != 0;
  if (fixture().server == nullptr) {
    state.SkipWithError("no TLS context");
    return;
  }
  bool ok = true;
  SSL_SESSION* session = resumed ? handshake(nullptr, version, nullptr, true, ok) : nullptr;
  for (auto _ : state) {
    handshake(&state, version, session, false, ok);
    if (!ok) {
      state.SkipWithError(resumed ? "not resumed" : "handshake failed");
      break;
    }
  }
  SSL_SESSION_free(session);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(std::string(version == TLS1_3_VERSION ? "TLS1.3" : "TLS1.2") + (resumed ? " resumed" : " full"));
}
BENCHMARK(BM_TlsHandshake)->ArgsProduct({{13, 12}, {0, 1}})->Unit(benchmark::kMicrosecond);

}  // namespace
