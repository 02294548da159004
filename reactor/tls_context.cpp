#include "reactor/tls_context.h"

#include <errno.h>
#include <openssl/err.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include <cstring>

#include "reactor/socket_bio.h"

namespace reactor {

namespace {

// ALPN protocol list in wire format (RFC 7301 3.1): WebSocket and the plain pages both ride on
// HTTP/1.1 (RFC 6455 4.1; RFC 8441 WebSocket over h2 is not offered).
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
                unsigned int offered_length, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kAlpnHttp11, sizeof kAlpnHttp11, offered, offered_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    // No overlap (a client offering only h2): carry on without ALPN rather than fail; the
    // request line then tells what the client speaks.
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string take_tls_errors(const char* fallback) {
  std::string out;
  char line[256];
  while (unsigned long code = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(code);
    if (reason == nullptr) {
      ERR_error_string_n(code, line, sizeof line);
      reason = line;
    }
    if (out.find(reason) != std::string::npos) continue;  // OpenSSL repeats a reason per layer
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out.empty() ? fallback : out;
}

std::unique_ptr<TlsContext> TlsContext::create(const std::string& cert_file, const std::string& key_file,
                                               std::string& error) {
  // The usual mistakes (a wrong path, no permission) get the system's words, not OpenSSL's.
  for (const std::string* file : {&cert_file, &key_file}) {
    if (access(file->c_str(), R_OK) != 0) {
      error = std::string("cannot read TLS ") + (file == &cert_file ? "certificate" : "key") + " '" + *file +
              "': " + std::strerror(errno);
      return nullptr;
    }
  }
  ERR_clear_error();
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (context == nullptr) {
    error = "cannot create a TLS context: " + take_tls_errors("out of memory");
    return nullptr;
  }
  std::unique_ptr<TlsContext> result(new TlsContext(context));
  if (SSL_CTX_use_certificate_chain_file(context, cert_file.c_str()) != 1) {
    error = "cannot load TLS certificate '" + cert_file + "': " + take_tls_errors("unknown error");
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(context, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load TLS key '" + key_file + "': " + take_tls_errors("unknown error");
    return nullptr;
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    error = "TLS key '" + key_file + "' does not match certificate '" + cert_file + "'";
    ERR_clear_error();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION);
  // Renegotiation (TLS 1.2) would let a peer make reads need writes at any time and costs a
  // full handshake each: refused.
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // RELEASE_BUFFERS: an idle connection keeps no 16 KiB read/write buffers (DESIGN.md "State
  // per connection"). PARTIAL_WRITE: SSL_write returns after each record, so a full socket
  // leaves at most one record pending inside OpenSSL. MOVING_WRITE_BUFFER: a write retried
  // after WANT_WRITE comes from the write queue's copy, not the original buffer.
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read-ahead fills the record buffer with one read() instead of a header read and a body
  // read per record.
  SSL_CTX_set_read_ahead(context, 1);
  // Resumption through stateless tickets only (TLS 1.2 RFC 5077, TLS 1.3 PSK): a server-side
  // session cache would hold memory per client. The ticket keys are made at SSL_CTX_new, so
  // workers forked after this share them and resume each other's sessions.
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
  // TLS 1.3 sends tickets after every handshake (OpenSSL's default is 2). One suffices for a
  // client that reconnects (each resumed handshake brings a fresh one, RFC 8446 4.6.1) and
  // saves the second ticket's encryption on every handshake (bench/tls_bench.cpp).
  SSL_CTX_set_num_tickets(context, 1);
  SSL_CTX_set_alpn_select_cb(context, select_alpn, nullptr);
  return result;
}

TlsContext::~TlsContext() { SSL_CTX_free(context_); }

SSL* TlsContext::new_connection(int fd) const {
  SSL* ssl = SSL_new(context_);
  if (ssl == nullptr) return nullptr;
  BIO* bio = new_socket_bio(fd);  // MSG_NOSIGNAL: no SIGPIPE for the embedding process
  if (bio == nullptr) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_bio(ssl, bio, bio);
  SSL_set_accept_state(ssl);
  return ssl;
}

}  // namespace reactor
