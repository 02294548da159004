#include "reactor/tls_context.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

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

// What server and client contexts share: TLS 1.2 and 1.3 only, no renegotiation, and the
// buffer modes TlsStream relies on.
void configure_common(SSL_CTX* context, uint64_t extra_options) {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION);
  // Renegotiation (TLS 1.2) would let a peer make reads need writes at any time and costs a
  // full handshake each: refused.
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | extra_options);
  // RELEASE_BUFFERS: an idle connection keeps no 16 KiB read/write buffers (DESIGN.md "State
  // per connection"). PARTIAL_WRITE: SSL_write returns after each record, so a full socket
  // leaves at most one record pending inside OpenSSL. MOVING_WRITE_BUFFER: a write retried
  // after WANT_WRITE comes from the write queue's copy, not the original buffer.
  SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read-ahead fills the record buffer with one read() instead of a header read and a body
  // read per record.
  SSL_CTX_set_read_ahead(context, 1);
}

// A fresh SSL_CTX, or nullptr with `error` set.
SSL_CTX* new_context(const SSL_METHOD* method, std::string& error) {
  ERR_clear_error();
  SSL_CTX* context = SSL_CTX_new(method);
  if (context == nullptr) error = "cannot create a TLS context: " + take_tls_errors("out of memory");
  return context;
}

bool is_ip_literal(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
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
  SSL_CTX* context = new_context(TLS_server_method(), error);
  if (context == nullptr) return nullptr;
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
  configure_common(context, SSL_OP_CIPHER_SERVER_PREFERENCE);
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

TlsContext::~TlsContext() {
  if (session_ != nullptr) SSL_SESSION_free(session_);
  SSL_CTX_free(context_);
}

void TlsContext::keep_session(SSL* ssl) {
  SSL_SESSION* session = SSL_get1_session(ssl);
  if (session == nullptr) return;
  if (SSL_SESSION_is_resumable(session) != 1) {
    SSL_SESSION_free(session);
    return;
  }
  if (session_ != nullptr) SSL_SESSION_free(session_);
  session_ = session;
}

bool TlsContext::resumed(const SSL* ssl) { return SSL_session_reused(ssl) == 1; }

SSL* TlsContext::new_ssl(int fd) const {
  SSL* ssl = SSL_new(context_);
  if (ssl == nullptr) return nullptr;
  BIO* bio = new_socket_bio(fd);  // MSG_NOSIGNAL: no SIGPIPE for the embedding process
  if (bio == nullptr) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_bio(ssl, bio, bio);
  return ssl;
}

SSL* TlsContext::new_connection(int fd) const {
  SSL* ssl = new_ssl(fd);
  if (ssl != nullptr) SSL_set_accept_state(ssl);
  return ssl;
}

std::unique_ptr<TlsContext> TlsContext::create_client(const TlsClientOptions& options, std::string& error) {
  if (!options.ca_file.empty() && access(options.ca_file.c_str(), R_OK) != 0) {
    error = "cannot read CA file '" + options.ca_file + "': " + std::strerror(errno);
    return nullptr;
  }
  SSL_CTX* context = new_context(TLS_client_method(), error);
  if (context == nullptr) return nullptr;
  std::unique_ptr<TlsContext> result(new TlsContext(context));
  // A server that ends TCP without close_notify is no truncation risk for WebSocket, whose
  // close frame (RFC 6455 5.5.1) says where the stream ends: report it as a plain end of stream.
  configure_common(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // RFC 7301 3.1: offer http/1.1, the only protocol a WebSocket upgrade rides on (RFC 6455 4.1).
  if (SSL_CTX_set_alpn_protos(context, kAlpnHttp11, sizeof kAlpnHttp11) != 0) {
    error = "cannot set ALPN: " + take_tls_errors("out of memory");
    return nullptr;
  }
  if (options.insecure) {
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
    return result;
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(context, options.ca_file.c_str(), nullptr) != 1) {
      error = "cannot load CA file '" + options.ca_file + "': " + take_tls_errors("no certificate in it");
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(context) != 1) {
    error = "cannot load the system's trusted certificates: " + take_tls_errors("unknown error");
    return nullptr;
  }
  return result;
}

SSL* TlsContext::new_client_connection(int fd, std::string_view host_view) const {
  SSL* ssl = new_ssl(fd);
  if (ssl == nullptr) return nullptr;
  const std::string host(host_view);
  const bool ip = is_ip_literal(host);
  bool ok = true;
  // RFC 6066 3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
  if (!ip && !host.empty()) ok = SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
  if (ok && SSL_CTX_get_verify_mode(context_) != SSL_VERIFY_NONE) {
    ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1
            : SSL_set1_host(ssl, host.c_str()) == 1;
  }
  // A kept session for another name would be refused by the server anyway; all connections of
  // one context go to one host.
  if (ok && session_ != nullptr) ok = SSL_set_session(ssl, session_) == 1;
  if (!ok) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

std::string describe_client_handshake_failure(const SSL* ssl, const char* fallback) {
  if (ssl != nullptr) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    }
  }
  return fallback;
}

}  // namespace reactor
