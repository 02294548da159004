#pragma once
// TLS settings shared by every connection of a process (OpenSSL SSL_CTX). Server side: the
// certificate chain and key, TLS 1.2 and 1.3 only, ALPN http/1.1, stateless session tickets,
// and buffers released while a connection is idle. Client side (the tools' wss://): the same
// versions and buffer modes, ALPN http/1.1, SNI, and certificate verification against the
// system's trust store or a given PEM file. Knows nothing of WebSocket.
#include <memory>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace reactor {

// How a client checks the server's certificate.
struct TlsClientOptions {
  bool insecure = false;  // skip verification (tests, self-signed servers): no chain, no name check
  std::string ca_file;    // trust only the certificates in this PEM file; empty = system defaults
};

class TlsContext {
 public:
  // Loads a PEM certificate chain and its PEM private key and checks that they match. Returns
  // nullptr with `error` set to one line naming the file and OpenSSL's reason on failure.
  static std::unique_ptr<TlsContext> create(const std::string& cert_file, const std::string& key_file,
                                            std::string& error);
  // A client context: TLS 1.2..1.3, ALPN http/1.1 offered, peer verification unless
  // `options.insecure`. Returns nullptr with `error` set to one line when the CA file cannot
  // be loaded.
  static std::unique_ptr<TlsContext> create_client(const TlsClientOptions& options, std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A server-side SSL bound to the non-blocking socket `fd`, in accept state; nullptr when out
  // of memory. The caller frees it with SSL_free.
  SSL* new_connection(int fd) const;
  // A client-side SSL bound to the non-blocking socket `fd`, in connect state, for the server
  // named `host` (a DNS name, or an IPv4/IPv6 literal without brackets): SNI for names (RFC
  // 6066 3 forbids it for addresses) and, when verifying, the name or address the certificate
  // must carry (RFC 6125). nullptr when out of memory. The caller frees it with SSL_free.
  // It offers the session kept by keep_session(), if any, for resumption.
  SSL* new_client_connection(int fd, std::string_view host) const;
  // Client: keeps the session of `ssl` (established, its TLS 1.3 ticket read) for the next
  // connections to offer (RFC 8446 2.2, RFC 5077), replacing the one kept before; ignored when
  // it cannot be resumed.
  void keep_session(SSL* ssl);
  // True when the finished handshake on `ssl` resumed a session instead of a full handshake.
  static bool resumed(const SSL* ssl);
  // The underlying SSL_CTX (for tests and benchmarks that drive handshakes in memory).
  SSL_CTX* native() const { return context_; }

 private:
  // An SSL of this context reading and writing `fd` (reactor/socket_bio), in neither state yet.
  SSL* new_ssl(int fd) const;
  explicit TlsContext(SSL_CTX* context) : context_(context) {}
  SSL_CTX* context_;
  SSL_SESSION* session_ = nullptr;  // client: the session to offer, owned
};

// Why a client handshake on `ssl` failed, as one line: OpenSSL's verify result string
// ("certificate verify failed: self-signed certificate") when the certificate was refused,
// else `fallback`.
std::string describe_client_handshake_failure(const SSL* ssl, const char* fallback);

// OpenSSL's error queue as one line ("reason; reason"), emptied; `fallback` when it is empty.
std::string take_tls_errors(const char* fallback);

}  // namespace reactor
